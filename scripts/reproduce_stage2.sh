#!/usr/bin/env bash
# Reproduce the shipped stage-2 weights (about 15 min of training on 1 CPU core and 6 min of
# evaluation on 2), SyncNet-SynConv, the stage-2 report, the ablations and the CFG sweeps,
# after scripts/reproduce_stage1.sh (same data, the shipped stage-1 weights).
set -euo pipefail
cd "$(dirname "$0")/.."
IL=".venv/bin/infp-lab"
PY=".venv/bin/python"
STEPS="${STAGE2_STEPS:-4000}"

# The lip-sync expert for LSE-C / LSE-D, trained on SynConv training clips only.
$IL train syncnet --data data/s1train --out runs/syncnet --steps 2000 --batch-size 64
cp runs/syncnet/syncnet.safetensors weights/syncnet_synconv.safetensors

$IL train stage2 --data data/s1train --stage1 weights/stage1_tiny.safetensors --out runs/stage2_tiny \
    --preset tiny --steps "$STEPS" --batch-size 32 --one-sided-steps $((STEPS / 4)) --seed 0
$IL export --checkpoint runs/stage2_tiny/checkpoint.pt --out weights/stage2_tiny.safetensors
# The default audio guidance scale (stage2.config.AUDIO_SCALE = 6) is the "chosen_scale" of this validation sweep:
$PY scripts/stage2_experiments.py cfg-sweep --stage2 weights/stage2_tiny.safetensors \
    --stage1 weights/stage1_tiny.safetensors --syncnet weights/syncnet_synconv.safetensors \
    --data data/s1train --split val --train-data data/s1train --out runs/stage2_cfg_val --clips 4 --scales 2 3 4 5 6
cp runs/stage2_cfg_val/cfg-sweep.json weights/stage2_cfg_sweep_val.json
$IL eval stage2 --ckpt weights/stage2_tiny.safetensors --stage1 weights/stage1_tiny.safetensors \
    --syncnet weights/syncnet_synconv.safetensors --data data/s1test --train-data data/s1train \
    --out weights/stage2_tiny.report.json

$PY scripts/stage2_experiments.py cfg-sweep --stage2 weights/stage2_tiny.safetensors \
    --stage1 weights/stage1_tiny.safetensors --syncnet weights/syncnet_synconv.safetensors \
    --data data/s1test --train-data data/s1train --out runs/stage2_cfg --clips 3
cp runs/stage2_cfg/cfg-sweep.json weights/stage2_cfg_sweep.json
$PY scripts/stage2_experiments.py ablation --stage1 weights/stage1_tiny.safetensors \
    --syncnet weights/syncnet_synconv.safetensors --data data/s1train --test data/s1test \
    --out runs/stage2_ablation --steps 1000 --clips 3 --cache runs/stage2_tiny/latent_cache
cp runs/stage2_ablation/ablation.json weights/stage2_ablation.json
