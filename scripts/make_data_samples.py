"""Write data_samples/synconv: a few SynConv conversations that show every kind of content.

    python scripts/make_data_samples.py [--out data_samples/synconv] [--seed 0]

Generates 3 conversations of 10 s in English, Spanish and Japanese. Starting at --seed, it
takes the first seed whose conversations hold a sung segment, a non-human identity and a
side-face identity (the search is deterministic, so the output is too), and records that
seed in dataset.json (generate_dataset writes it there).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from infp_lab.data.clip import list_clips, load_clip
from infp_lab.data.synconv import generate_dataset

SIDE_YAW = 20.0  # degrees of base yaw that count as a side face


def covers_everything(root: Path) -> dict[str, bool]:
    metas = [load_clip(p, load_audio_tracks=False).meta for p in list_clips(root)]
    return {
        "singing": any(s["kind"] == "singing" for m in metas for s in m["segments"]),
        "non-human": any(m["species"] != "human" for m in metas),
        "side-face": any(abs(m["base_yaw"]) >= SIDE_YAW for m in metas),
        "3 languages": len({m["language"] for m in metas}) >= 3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data_samples/synconv", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tries", type=int, default=50)
    args = parser.parse_args()

    for seed in range(args.seed, args.seed + args.tries):
        tmp = Path(tempfile.mkdtemp(prefix="synconv-samples-"))
        generate_dataset(tmp, conversations=3, seconds=10.0, seed=seed, languages=["en", "es", "ja"])
        coverage = covers_everything(tmp)
        if all(coverage.values()):
            if args.out.exists():
                shutil.rmtree(args.out)
            shutil.move(str(tmp), args.out)
            args.out.chmod(0o755)
            print(f"seed {seed} covers {', '.join(coverage)}; wrote {args.out}")
            return
        shutil.rmtree(tmp)
        print(f"seed {seed} lacks {', '.join(k for k, v in coverage.items() if not v)}")
    raise SystemExit(f"no seed in [{args.seed}, {args.seed + args.tries}) covers everything")


if __name__ == "__main__":
    main()
