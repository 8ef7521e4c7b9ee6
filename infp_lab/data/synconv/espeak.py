"""A thin ctypes binding to the espeak-ng C API (design.md section 3.1, SynConv audio).

SynConv speech comes from espeak-ng through its C API, because only the API reports phoneme
events with their sample positions. The library and its data come from the
``espeakng-loader`` wheel, found at run time. The engine runs in synchronous mode: one call to
``espeak_Synth`` returns after the callback has received all samples and events, so no
thread is involved. espeak-ng keeps global state, so the engine is initialised lazily once
per process and every synthesis runs under a lock; a forked child gets a fresh lock.
"""

from __future__ import annotations

import ctypes
import os
import struct
import tempfile
import threading
import zlib
from typing import NamedTuple

import numpy as np

# espeak_AUDIO_OUTPUT, espeak_Initialize options, espeak_Synth flags (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002
_INIT_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_BUFFER_MS = 500
# espeak_PARAMETER
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
# espeak_EVENT_TYPE
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_SENTENCE = 2
EVENT_END = 5
EVENT_MSG_TERMINATED = 6
EVENT_PHONEME = 7
EVENT_SAMPLERATE = 8


class _EventId(ctypes.Union):
    """The ``id`` union of ``espeak_EVENT``."""

    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` as laid out by the C compiler."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class RawEvent(NamedTuple):
    """One espeak-ng event: its type, sample position, text position and value."""

    type: int
    sample: int
    text_position: int
    value: str | int  # IPA phoneme name for EVENT_PHONEME ("" is a pause), else a number


class _Engine:
    """The process's espeak-ng instance: the loaded library, its rate and the callback."""

    def __init__(self) -> None:
        import espeakng_loader

        library_path = espeakng_loader.get_library_path()
        self.lib = ctypes.CDLL(library_path)
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        self._seed = getattr(self.lib, "espeak_ng_SetRandSeed", None)  # espeak-ng >= 1.51
        if self._seed is not None:
            self._seed.argtypes = [ctypes.c_long]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        data_path = _short_path(espeakng_loader.get_data_path())
        options = _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA | _INIT_DONT_EXIT
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data_path.encode(),
                                          options)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (returned {rate}) with data at {data_path!r}")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []
        self._events: list[RawEvent] = []
        self._callback = _SynthCallback(self._on_audio)  # kept alive as long as the engine
        self.lib.espeak_SetSynthCallback(self._callback)
        self._initial_state = _SavedState(self.lib, library_path, _CARRIED_STATE)

    def _on_audio(self, wav, n_samples, events) -> int:
        if n_samples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, (n_samples,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == EVENT_PHONEME:
                value: str | int = bytes(event.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
            else:
                value = event.id.number
            self._events.append(RawEvent(event.type, event.sample, event.text_position, value))
            i += 1
        return 0  # continue synthesis

    def synth(self, text: str, voice_name: str, rate: int, pitch: int, pitch_range: int):
        """Synthesise UTF-8 text; return (int16 samples at ``sample_rate``, events)."""
        if self.lib.espeak_SetVoiceByName(voice_name.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice_name!r}")
        for parameter, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch),
                                 (_PARAM_RANGE, pitch_range), (_PARAM_VOLUME, 100)):
            self.lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks, self._events = [], []
        encoded = text.encode("utf-8")
        # espeak-ng jitters pitch and timing with its own generator (seeded from the clock at
        # start-up); a seed derived from the request makes the output reproducible.
        if self._seed is not None:
            self._seed(zlib.crc32(encoded + voice_name.encode()) & 0x7FFFFFFF)
        # Some wave generator state runs on across utterances; rewinding it to its value at
        # start-up makes each utterance independent of the ones before it.
        self._initial_state.restore()
        buffer = ctypes.create_string_buffer(encoded)  # NUL-terminated
        status = self.lib.espeak_Synth(buffer, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                       None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)  # (N,) int16
        events, self._chunks, self._events = self._events, [], []
        return samples, events


# Wave generator statics that run on from one utterance to the next (pitch-flutter phase,
# amplitude smoothing, glottal-cycle count, echo ring buffer). They are plain data.
_CARRIED_STATE = ("Flutter_ix", "amplitude2", "cycle_count", "agc", "h_switch_sign", "maxh", "maxh2",
                  "echo_buf", "echo_head", "echo_tail")


class _SavedState:
    """A snapshot of named static variables of the loaded library, restorable before each utterance."""

    # Symbols come from the ELF symbol table of the library file; where there is none (another
    # platform, a stripped build) the snapshot is empty and restoring does nothing.

    def __init__(self, lib: ctypes.CDLL, path: str, names: tuple[str, ...]) -> None:
        self.blocks: list[tuple[int, bytes]] = []
        symbols = _elf_symbols(path)
        anchor = symbols.get("espeak_Synth")
        if anchor is None:
            return
        load_base = ctypes.cast(lib.espeak_Synth, ctypes.c_void_p).value - anchor[0]
        for name, (value, size) in symbols.items():
            if name.split(".")[0] in names and size > 0:
                self.blocks.append((load_base + value, ctypes.string_at(load_base + value, size)))

    def restore(self) -> None:
        for address, saved in self.blocks:
            ctypes.memmove(address, saved, len(saved))


def _elf_symbols(path: str) -> dict[str, tuple[int, int]]:
    """name -> (value, size) of the object symbols of a 64-bit little-endian ELF file."""
    try:
        with open(os.path.realpath(path), "rb") as f:
            elf = f.read()
    except OSError:
        return {}
    if elf[:6] != b"\x7fELF\x02\x01":
        return {}
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
    sections = [struct.unpack_from("<IIQQQQII", elf, shoff + i * shentsize) for i in range(shnum)]
    symtab = next((sec for sec in sections if sec[1] == 2), None)  # SHT_SYMTAB
    if symtab is None:
        return {}
    strtab = sections[symtab[6]]
    names = elf[strtab[4]: strtab[4] + strtab[5]]
    symbols = {}
    for offset in range(symtab[4], symtab[4] + symtab[5], 24):  # Elf64_Sym entries
        name_at, info, _, _, value, size = struct.unpack_from("<IBBHQQ", elf, offset)
        if info & 0xF in (1, 2):  # STT_OBJECT, STT_FUNC
            symbols[names[name_at: names.index(b"\0", name_at)].decode("ascii", "replace")] = (value, size)
    return symbols


def _short_path(path: str) -> str:
    """espeak-ng copies its data path into a fixed 160-byte buffer; link long paths to a short one."""
    if len(path.encode()) < 100:
        return path
    link = os.path.join(tempfile.mkdtemp(prefix="espeak"), "d")
    os.symlink(path, link)
    return link


_ENGINE: _Engine | None = None
_LOCK = threading.Lock()


def _reset_lock_in_child() -> None:
    global _LOCK
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_in_child)


def native_sample_rate() -> int:
    """espeak-ng's output rate (22050 Hz for the bundled voices)."""
    with _LOCK:
        return _engine().sample_rate


def _engine() -> _Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def synth(text: str, voice_name: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50):
    """Speak ``text`` with espeak voice ``voice_name`` (e.g. ``"en+f3"``).

    Args:
        text: UTF-8 text in the voice's language and script.
        voice_name: an espeak-ng voice name, optionally with ``+variant``.
        rate: words per minute (80-450). pitch, pitch_range: 0-100 (espeak's 50 is neutral).

    Returns:
        (samples, events, sample_rate): int16 samples ``(N,)``, the list of :class:`RawEvent`
        in time order (sample positions from the start of ``samples``), and the rate in Hz.
    """
    with _LOCK:
        engine = _engine()
        samples, events = engine.synth(text, voice_name, rate, pitch, pitch_range)
        return samples, events, engine.sample_rate
