#!/usr/bin/env bash
# One-time (idempotent) set-up of infp-lab on a fresh Debian machine:
# Debian packages, a .venv with the pinned CPU stack of requirements.txt, and the package
# itself in editable mode. Re-running is cheap: it only reinstalls when the requirements
# or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the runtime libraries OpenCV (pulled in by MediaPipe) links against.
APT_PACKAGES=(libgl1 libglib2.0-0)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup: please install these Debian packages (needs root): ${missing[*]}" >&2
    fi
fi

PYTHON=${PYTHON:-python3}
stamp=.venv/.infp-lab-installed
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
echo "setup: installing the pinned stack into .venv (a few minutes the first time)"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
.venv/bin/python -m pip install -q --no-deps -e .
.venv/bin/python -m pip check
echo "$want" > "$stamp"
echo "setup: done"
