#!/usr/bin/env bash
# Train stage 1 by the current recipe, with its report and the ablation, from nothing. This gives the
# third model of weights/README.md; the shipped second model predates the placement-aware head target.
# About 75 min of training + 15 min of ablation on 2 CPU cores (see weights/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
IL=".venv/bin/infp-lab"

$IL data synth --out data/s1train --conversations 120 --seconds 20 --seed 100
$IL data synth --out data/s1test --conversations 40 --seconds 20 --seed 200   # unseen faces and voices

$IL train stage1 --data data/s1train --out runs/stage1_tiny --preset tiny --steps 3000 --batch-size 16 \
    --checkpoint-every 250 --seed 0
mkdir -p weights
$IL export --checkpoint runs/stage1_tiny/checkpoint.pt --out weights/stage1_tiny.safetensors
$IL eval stage1 --ckpt weights/stage1_tiny.safetensors --data data/s1test --split test \
    --probe-data data/s1train --out weights/stage1_tiny.report.json

.venv/bin/python scripts/stage1_ablation.py --data data/s1train --test data/s1test --out runs/stage1_ablation \
    --steps 400 --batch-size 8
cp runs/stage1_ablation/ablation.json weights/stage1_ablation.json
