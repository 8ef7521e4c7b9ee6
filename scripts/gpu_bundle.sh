#!/usr/bin/env bash
# Makes .gpu/ (git-ignored), what a bare GPU machine of the device tool lacks for scripts/gpu_check.py:
#   .gpu/wheels: the Python packages its image does not have (diffusers, librosa, soundfile, soxr and theirs),
#                for its Python (3.12; PY_VERSION=3.11 gives them for this machine, to try the call here);
#   .gpu/data:   a small SynConv set (8 conversations of 10 s: 16 clips with train/val/test splits).
# 21 MB (8 MB of wheels, 13 MB of clips). The whole GPU check is then one call of the device tool,
# with carry [".gpu"] and the command
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/wheels/*.whl &&
#   PYTHONPATH=/tmp/site:. python3 scripts/gpu_check.py --data .gpu/data --out $OUT
# (see scripts/gpu_check.py for what it measures; it has not run on a GPU yet, so its time there is unknown).
set -euo pipefail
cd "$(dirname "$0")/.."
PY_VERSION=${PY_VERSION:-3.12}
rm -rf .gpu
mkdir -p .gpu/wheels
# The versions of requirements.txt, and of the packages they need that the image lacks.
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpu/wheels \
    diffusers==0.42.1 librosa==0.11.0 soundfile==0.14.0 soxr==1.1.0 audioread==3.1.0 pooch==1.9.0 \
    decorator==5.3.2 platformdirs==4.14.9 importlib_metadata==10.2.0 cffi==2.1.1 pycparser==3.12
.venv/bin/infp-lab data synth --out .gpu/data --conversations 8 --seconds 10 --seed 500
du -sh .gpu/wheels .gpu/data
