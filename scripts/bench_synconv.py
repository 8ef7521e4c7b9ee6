"""Benchmark SynConv: generation time (parameters + audio), speech synthesis and rendering speed on one core.

    python scripts/bench_synconv.py [--conversations 10] [--seconds 20] [--workers 2] [--json OUT]

Generation runs `--workers` processes; speech synthesis (sentences in every language, random
voices) and rendering run in this process with OpenCV and BLAS limited to one thread, rendering
over the frames of a generated clip.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--frames", type=int, default=500, help="frames rendered per size")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    import cv2

    import numpy as np

    from infp_lab.data.clip import list_clips, load_clip
    from infp_lab.data.synconv import generate_dataset
    from infp_lab.data.synconv.speech import LANGUAGES, make_sentence, sample_voice, synthesize

    cv2.setNumThreads(1)
    out = tempfile.mkdtemp(prefix="bench-synconv-")
    generate_dataset(out, conversations=1, seconds=4, seed=999)  # warm-up: imports, espeak start
    start = time.perf_counter()
    generate_dataset(out, conversations=args.conversations, seconds=args.seconds, seed=0, workers=args.workers)
    synth_wall = time.perf_counter() - start

    clips = [load_clip(p) for p in list_clips(out)]
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
               "synth": {"conversations": args.conversations, "seconds": args.seconds, "workers": args.workers,
                         "wall_s": round(synth_wall, 2),
                         "x_real_time": round(args.conversations * args.seconds / synth_wall, 1)},
               "render_fps_one_core": {}}
    rng = np.random.default_rng(0)
    jobs = [(make_sentence(rng, lang), sample_voice(rng, lang)) for lang in list(LANGUAGES) * 3]
    audio, start = 0.0, time.perf_counter()
    for text, voice in jobs:
        audio += synthesize(text, voice).duration
    results["speech_x_real_time_one_core"] = round(audio / (time.perf_counter() - start), 1)
    for size in (128, 256):
        clips[0].frames(size, 0, 10)  # warm the per-appearance caches
        done, start = 0, time.perf_counter()
        for clip in clips:
            take = min(clip.num_frames, args.frames - done)
            clip.frames(size, 0, take)
            done += take
            if done >= args.frames:
                break
        results["render_fps_one_core"][str(size)] = round(done / (time.perf_counter() - start), 1)
    print(json.dumps(results, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
