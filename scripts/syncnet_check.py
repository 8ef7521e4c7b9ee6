"""Does SyncNet-SynConv separate synced from unsynced talking heads? (design.md section 8)

On ground-truth SynConv test clips (frames rendered at --size, landmarks scaled to it) it
scores LSE-D / LSE-C / offset for the avatar's own voice as recorded (aligned), delayed by
--shift frames, and replaced by another conversation's voice. A working expert gives the
aligned audio a low LSE-D, a high LSE-C and offset ~0; the delayed audio offset ~+shift and
a high distance at offset 0; another clip's audio a high LSE-D and a low LSE-C.

    .venv/bin/python scripts/syncnet_check.py --weights runs/syncnet_try/syncnet.safetensors \
        --data data/s1test --clips 6
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from infp_lab.data.clip import list_clips, load_clip
from infp_lab.syncnet import SyncNet, sync_scores

SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    return np.pad(audio, (0, max(0, length - len(audio))))[:length]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=Path("runs/syncnet_try/syncnet.safetensors"))
    parser.add_argument("--data", type=Path, default=Path("data/s1test"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--size", type=int, default=128, help="frame size the clips are rendered at")
    parser.add_argument("--shift", type=int, default=10, help="audio delay in frames for the shifted case")
    parser.add_argument("--max-offset", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None, help="optional JSON report")
    args = parser.parse_args()

    model = SyncNet.from_pretrained(args.weights)
    paths = list_clips(args.data, args.split)[: args.clips]
    clips = [load_clip(p) for p in paths]
    rows = []
    for i, clip in enumerate(clips):
        frames, landmarks, audio = clip.frames(args.size), clip.landmarks(args.size), clip.self_audio
        delay = args.shift * SAMPLES_PER_FRAME
        other = next(c for c in clips[i + 1:] + clips[:i] if c.meta["conversation"] != clip.meta["conversation"])
        cases = {
            "aligned": audio,
            f"shifted_{args.shift}": np.concatenate([np.zeros(delay, np.float32), audio[:-delay]]),
            "other_clip": _fit(other.self_audio, len(audio)),
        }
        for case, track in cases.items():
            s = sync_scores(model, frames, landmarks, track, max_offset=args.max_offset)
            rows.append({"clip": clip.name, "species": clip.meta.get("species", "?"), "case": case,
                         "lse_d": s.lse_d, "lse_c": s.lse_c, "offset": s.offset, "dist_at_0": s.distance_at(0)})
            print(f"{clip.name:12s} {rows[-1]['species']:8s} {case:12s} LSE-D {s.lse_d:.3f}  LSE-C {s.lse_c:.3f}  "
                  f"offset {s.offset:+3d}  dist@0 {s.distance_at(0):.3f}")
    print("\nmean over clips (SyncNet-SynConv):")
    summary = {}
    for case in dict.fromkeys(r["case"] for r in rows):
        sel = [r for r in rows if r["case"] == case]
        summary[case] = {k: float(np.mean([r[k] for r in sel])) for k in ("lse_d", "lse_c", "dist_at_0")}
        summary[case]["offsets"] = [r["offset"] for r in sel]
        print(f"  {case:12s} LSE-D {summary[case]['lse_d']:.3f}  LSE-C {summary[case]['lse_c']:.3f}  "
              f"dist@0 {summary[case]['dist_at_0']:.3f}  offsets {summary[case]['offsets']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"weights": str(args.weights), "rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
