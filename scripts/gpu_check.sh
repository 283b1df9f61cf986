#!/usr/bin/env bash
# The one command to run whenever a GPU is at hand: every chapter through papermill with
# DEVICE="cuda" (default parameters otherwise), then every benchmark in bench/ at full size.
# Executed notebooks and benchmark logs go to ${OUT:-_build/gpu}. Sized for <= 8 minutes on one H100.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-_build/gpu}"
mkdir -p "$out"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu-check needs a CUDA GPU')"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
status=0
for nb in book/*.ipynb; do
  name=$(basename "$nb")
  t0=$(date +%s)
  if papermill "$nb" "$out/$name" -p DEVICE cuda -k python3 --cwd book --no-progress-bar > "$out/${name%.ipynb}.log" 2>&1; then
    echo "ok   $name  $(( $(date +%s) - t0 )) s" | tee -a "$out/summary.txt"
  else
    echo "FAIL $name  (see $out/${name%.ipynb}.log)" | tee -a "$out/summary.txt"; status=1
  fi
done
for b in bench/*.py; do
  [ -e "$b" ] || continue
  echo "== $b" | tee -a "$out/bench.txt"
  python "$b" --device cuda 2>&1 | tee -a "$out/bench.txt" || status=1
done
exit $status
