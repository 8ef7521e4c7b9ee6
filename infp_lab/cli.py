"""The `infp-lab` command line: one sub-command per job (design.md section 7).

Library errors (bad input, missing files) are printed as one clear line, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="make, prepare and render data").add_subparsers(dest="data_command", required=True)

    synth = data.add_parser("synth", help="generate SynConv conversations (two clips each) and a split file")
    synth.add_argument("--out", required=True, type=Path, help="output folder")
    synth.add_argument("--conversations", type=int, default=10, help="number of conversations")
    synth.add_argument("--seconds", type=float, default=20.0, help="length of each conversation")
    synth.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    synth.add_argument("--languages", default=None,
                       help="comma-separated language codes (default: all supported)")
    synth.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    synth.set_defaults(func=_data_synth)

    render = data.add_parser("render", help="write a clip's ground-truth video with both voices mixed in")
    render.add_argument("--clip", required=True, type=Path, help="clip folder")
    render.add_argument("--out", required=True, type=Path, help="output .mp4")
    render.add_argument("--size", type=int, default=256, help="frame size in pixels")
    render.set_defaults(func=_data_render)


def _data_synth(args: argparse.Namespace) -> None:
    from infp_lab.data.synconv import generate_dataset

    languages = args.languages.split(",") if args.languages else None
    summary = generate_dataset(args.out, conversations=args.conversations, seconds=args.seconds,
                               seed=args.seed, languages=languages, workers=args.workers, progress=True)
    print(f"wrote {summary['clips']} clips ({summary['conversations']} conversations) to {args.out} "
          f"in {summary['wall_seconds']:.1f} s; splits: "
          + ", ".join(f"{k} {len(v)}" for k, v in summary["splits"].items()))


def _data_render(args: argparse.Namespace) -> None:
    from infp_lab.data.synconv.preview import render_clip_video

    path = render_clip_video(args.clip, args.out, size=args.size)
    print(f"wrote {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="infp-lab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as error:
        print(f"infp-lab: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("infp-lab: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
