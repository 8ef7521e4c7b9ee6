"""Stage-1 ablation of the motion encoder's input, as in the INFP paper (Table 3), on a
shorter schedule: the hybrid representation vs the intact image vs a landmark map, each
trained with the same data, seed and steps by the paper's recipe (self-reenactment only,
no cross-identity pairs), then evaluated on held-out clips.

    python scripts/stage1_ablation.py --data data/s1train --test data/s1test --out runs/stage1_ablation \
        [--steps 600] [--batch-size 8]

Writes OUT/ablation.json and OUT/ablation.md (a table) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from infp_lab.stage1.config import preset
from infp_lab.stage1.evaluate import evaluate_stage1
from infp_lab.stage1.train import Stage1TrainConfig, train_stage1

VARIANTS = ("hybrid", "image", "landmark_map")


def row(report: dict) -> dict:
    probes = report["probes"]
    return {
        "psnr": report["self_reenactment"]["psnr"],
        "ssim": report["self_reenactment"]["ssim"],
        "cross_landmark_error": report["cross_reenactment"]["landmark_error"],
        "params_r2": probes.get("params_from_motion_latent", {}).get("r2_mean", float("nan")),
        "identity_acc_from_motion": probes["identity_from_motion_latent"]["accuracy"],
        "identity_chance": probes["identity_from_motion_latent"]["chance"],
    }


def markdown(rows: dict[str, dict], steps: int, batch: int) -> str:
    lines = [f"Stage-1 ablation: motion-encoder input, {steps} steps x batch {batch}, self-reenactment only.",
             "", "| input | PSNR | SSIM | cross landmark err | params R^2 | identity acc (chance) | train s |",
             "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['cross_landmark_error']:.3f} | "
                     f"{r['params_r2']:.3f} | {r['identity_acc_from_motion']:.3f} ({r['identity_chance']:.3f}) | "
                     f"{r['train_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--test", required=True, type=Path, help="held-out data (its test split is used)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rows = {}
    for variant in VARIANTS:
        run = args.out / variant
        cfg = Stage1TrainConfig(steps=args.steps, batch_size=args.batch_size, checkpoint_every=args.steps,
                                cross_identity=0.0, seed=args.seed)
        start = time.perf_counter()
        train_stage1(args.data, run, preset("tiny").with_motion_input(variant), cfg, resume=(run / "checkpoint.pt").exists())
        seconds = time.perf_counter() - start
        report = evaluate_stage1(run / "stage1.safetensors", args.test, "test", probe_data=args.data)
        (run / "report.json").write_text(json.dumps(report, indent=1))
        rows[variant] = {**row(report), "train_s": seconds}
    (args.out / "ablation.json").write_text(json.dumps({"steps": args.steps, "batch_size": args.batch_size,
                                                        "rows": rows}, indent=1))
    table = markdown(rows, args.steps, args.batch_size)
    (args.out / "ablation.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
