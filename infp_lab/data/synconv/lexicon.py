"""SynConv lexicon: everyday words, sentences and listener backchannels per language (design.md section 3.1).

Word lists are written in each language's own script: pinyin with tone digits for Mandarin
(the ``cmn-latn-pinyin`` voice reads the digits as tones; ü is written ``v``), kana for
Japanese (spaced between words so that espeak-ng reports word events), Arabic script,
Devanagari, Cyrillic. Sentences are seeded random word sequences: not grammatical, but with
natural sound inventories, word lengths and clause punctuation, which is what the prosody,
phoneme timing and mouth motion need.
"""

from __future__ import annotations

import numpy as np

# our language code -> espeak-ng voice name
LANGUAGES: dict[str, str] = {
    "en": "en-us", "cmn": "cmn-latn-pinyin", "es": "es", "de": "de", "fr": "fr", "ja": "ja",
    "ar": "ar", "hi": "hi", "it": "it", "pt": "pt-br", "ru": "ru",
}

_WORDS = {
    "en": """time people water house family friend morning evening night day week year city street
        car train book music food coffee tea bread school work office garden dog cat bird tree river
        mountain weather rain sun summer winter good nice big small new old happy quiet really very
        always sometimes today tomorrow yesterday think know want like see go come make take give talk
        walk read write cook play listen remember find I you we they the a and but with about maybe
        little window kitchen dinner""",
    "cmn": """ni3 wo3 ta1 wo3men5 ni3men5 hao3 shi4 bu4 you3 mei2you3 zhe4ge4 na4ge4 shen2me5 jin1tian1
        ming2tian1 zuo2tian1 peng2you5 jia1 gong1zuo4 xue2xiao4 lao3shi1 xue2sheng1 chi1fan4 he1 shui3
        cha2 ka1fei1 mian4bao1 shui3guo3 ping2guo3 dian4ying3 yin1yue4 shu1 kan4 ting1 shuo1 zou3 lai2
        qu4 xiang3 zhi1dao4 xi3huan5 ai4 mai3 mai4 kai1 che1 huo3che1 fei1ji1 cheng2shi4 tian1qi4
        xia4yu3 tai4yang2 yue4liang5 shan1 he2 hai3 gou3 mao1 niao3 hua1 shu4 da4 xiao3 duo1 shao3
        kuai4 man4 gao1xing4 hen3 zhen1de5 ye3 dou1 zai4 dan4shi4 yin1wei4 suo3yi3 xian4zai4 yi3hou4
        mei3tian1 yi1qi3 chang4ge1 nv3hai2 lv4se4""",
    "es": """yo tú nosotros ellos casa familia amigo amiga mañana tarde noche día semana año ciudad calle
        coche tren libro música comida café agua pan escuela trabajo oficina jardín perro gato pájaro
        árbol río montaña tiempo lluvia sol verano invierno bueno bonito grande pequeño nuevo viejo
        feliz tranquilo muy siempre hoy ayer pienso sé quiero veo voy vengo hago tomo doy hablo camino
        leo escribo cocino juego escucho recuerdo el la un una y pero con sobre quizás poco mucho
        también ahora después cocina ventana""",
    "de": """ich du wir sie Haus Familie Freund Freundin Morgen Abend Nacht Tag Woche Jahr Stadt Straße
        Auto Zug Buch Musik Essen Kaffee Wasser Brot Schule Arbeit Büro Garten Hund Katze Vogel Baum
        Fluss Berg Wetter Regen Sonne Sommer Winter gut schön groß klein neu alt glücklich ruhig sehr
        immer manchmal heute gestern denke weiß möchte sehe gehe komme mache nehme gebe spreche laufe
        lese schreibe koche spiele höre der die das ein und aber mit über vielleicht wenig viel auch
        jetzt dann Küche Fenster""",
    "fr": """je tu nous ils maison famille ami amie matin soir nuit jour semaine année ville rue voiture
        train livre musique repas café eau pain école travail bureau jardin chien chat oiseau arbre
        rivière montagne temps pluie soleil été hiver bon beau grand petit nouveau vieux heureux calme
        très toujours parfois aujourd'hui demain hier pense sais veux vois vais viens fais prends donne
        parle marche lis écris cuisine joue écoute le la un une et mais avec sur peut-être peu beaucoup
        aussi maintenant ensuite fenêtre""",
    "ja": """わたし あなた ともだち かぞく いえ がっこう かいしゃ しごと あさ ひる よる きょう あした
        きのう まいにち てんき あめ ゆき そら うみ やま かわ はな いぬ ねこ とり さかな ごはん みず
        おちゃ コーヒー パン くるま でんしゃ えき みち まち ほん おんがく えいが しゃしん たのしい
        おいしい おおきい ちいさい あたらしい ふるい いそがしい しずか げんき すき きれい たべます
        のみます みます ききます はなします いきます きます かえります よみます かきます あるきます
        あそびます わかります おもいます とても すこし もっと いつも ときどき いっしょに そして でも
        から と が を に で も ね よ""",
    "ar": """أنا أنت نحن هم بيت عائلة صديق صباح مساء ليل يوم أسبوع سنة مدينة شارع سيارة قطار كتاب
        موسيقى طعام قهوة ماء خبز مدرسة عمل مكتب حديقة كلب قطة طائر شجرة نهر جبل طقس مطر شمس صيف شتاء
        جيد جميل كبير صغير جديد قديم سعيد هادئ جدا دائما أحيانا اليوم غدا أمس أفكر أعرف أريد أرى أذهب
        آتي أعمل آخذ أعطي أتكلم أمشي أقرأ أكتب أطبخ ألعب أسمع أتذكر لكن مع عن ربما قليلا كثيرا أيضا الآن
        بعد مطبخ نافذة""",
    "hi": """मैं तुम हम वे घर परिवार दोस्त सुबह शाम रात दिन हफ़्ता साल शहर सड़क गाड़ी रेलगाड़ी किताब संगीत
        खाना चाय कॉफ़ी पानी रोटी स्कूल काम दफ़्तर बगीचा कुत्ता बिल्ली चिड़िया पेड़ नदी पहाड़ मौसम बारिश
        सूरज गर्मी सर्दी अच्छा सुंदर बड़ा छोटा नया पुराना खुश शांत बहुत हमेशा आज कल सोचता जानता चाहता
        देखता जाता आता करता लेता देता बोलता चलता पढ़ता लिखता पकाता खेलता सुनता याद और लेकिन साथ
        शायद थोड़ा भी अब फिर है हैं रसोई खिड़की""",
    "it": """io tu noi loro casa famiglia amico amica mattina sera notte giorno settimana anno città strada
        macchina treno libro musica cibo caffè acqua pane scuola lavoro ufficio giardino cane gatto
        uccello albero fiume montagna tempo pioggia sole estate inverno buono bello grande piccolo nuovo
        vecchio felice tranquillo molto sempre oggi domani ieri penso so voglio vedo vado vengo faccio
        prendo parlo cammino leggo scrivo cucino gioco ascolto il la un una e ma con su forse poco anche
        adesso dopo cucina finestra""",
    "pt": """eu você nós eles casa família amigo amiga manhã tarde noite dia semana ano cidade rua carro
        trem livro música comida café água pão escola trabalho escritório jardim cachorro gato pássaro
        árvore rio montanha tempo chuva sol verão inverno bom bonito grande pequeno novo velho feliz
        tranquilo muito sempre hoje amanhã ontem penso sei quero vejo vou venho faço tomo dou falo ando
        leio escrevo cozinho jogo escuto o a um uma e mas com sobre talvez pouco também agora depois
        cozinha janela""",
    "ru": """я ты мы они дом семья друг подруга утро вечер ночь день неделя год город улица машина поезд
        книга музыка еда кофе вода хлеб школа работа офис сад собака кошка птица дерево река гора погода
        дождь солнце лето зима хороший красивый большой маленький новый старый счастливый тихий очень
        всегда иногда сегодня завтра вчера думаю знаю хочу вижу иду делаю беру даю говорю гуляю читаю
        пишу готовлю играю слушаю помню и но с о мало много тоже сейчас потом кухня окно""",
}
WORDS: dict[str, tuple[str, ...]] = {lang: tuple(text.split()) for lang, text in _WORDS.items()}

BACKCHANNELS: dict[str, tuple[str, ...]] = {
    "en": ("mm-hmm", "yeah", "right", "uh-huh", "okay", "I see", "sure", "really?"),
    "cmn": ("dui4", "en4", "shi4 a5", "hao3", "dui4 dui4", "ming2bai5", "zhen1de5?"),
    "es": ("sí", "ajá", "claro", "vale", "ya", "exacto", "eso es"),
    "de": ("ja", "genau", "mhm", "stimmt", "okay", "ach so", "echt?"),
    "fr": ("oui", "ouais", "d'accord", "ah bon", "c'est vrai", "bien sûr"),
    "ja": ("はい", "うん", "そうですね", "なるほど", "ええ", "そうか"),
    "ar": ("نعم", "أيوه", "صحيح", "طيب", "فعلا", "تمام"),
    "hi": ("हाँ", "अच्छा", "ठीक है", "सही", "बिल्कुल", "हाँ जी"),
    "it": ("sì", "certo", "esatto", "già", "vero", "ecco"),
    "pt": ("sim", "pois é", "claro", "tá", "uhum", "entendi"),
    "ru": ("да", "ага", "угу", "конечно", "понятно", "ясно"),
}
# interjections espeak-ng would spell out letter by letter, respelled so that they are hummed
_RESPELL = {("en", "mm-hmm"): "hmm hmm", ("de", "mhm"): "hm hm", ("pt", "uhum"): "hum hum"}
_FULL_STOP = {"ja": "。", "hi": "।"}
_QUESTION = {"ja": "か。", "ar": "؟"}
_COMMA = {"ja": "、", "ar": "،"}
_CASED = ("en", "es", "de", "fr", "it", "pt", "ru")


def check_language(language: str) -> None:
    """Raise ValueError unless ``language`` is one of LANGUAGES."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; supported: {', '.join(LANGUAGES)}")


def make_sentence(rng: np.random.Generator, language: str, n_words: int | None = None) -> str:
    """A random sentence of ``n_words`` words (4-11 when None) with a comma in longer ones."""
    check_language(language)
    words = WORDS[language]
    n = int(rng.integers(4, 12)) if n_words is None else int(n_words)
    if n < 1:
        raise ValueError(f"n_words must be at least 1, got {n}")
    chosen = [str(words[i]) for i in rng.integers(0, len(words), n)]
    if n >= 6 and rng.random() < 0.6:
        at = int(rng.integers(2, n - 2))
        chosen[at] += _COMMA.get(language, ",")
    if language in _CASED:
        chosen[0] = chosen[0][:1].upper() + chosen[0][1:]
    ending = rng.random()
    if ending < 0.2:
        return " ".join(chosen) + _QUESTION.get(language, "?")
    if ending < 0.28 and language not in ("ja", "hi", "ar", "cmn"):
        return " ".join(chosen) + "!"
    return " ".join(chosen) + _FULL_STOP.get(language, ".")


def backchannel_text(rng: np.random.Generator, language: str) -> str:
    """A short listener response ("mm-hmm", "genau", "はい", ...) in ``language``."""
    check_language(language)
    options = BACKCHANNELS[language]
    return str(options[int(rng.integers(0, len(options)))])


def spoken_form(text: str, language: str) -> str:
    """The text as handed to espeak-ng: hummed interjections respelled, the rest unchanged."""
    key = text.strip().lower().rstrip("?.!")
    return _RESPELL.get((language, key), text)
