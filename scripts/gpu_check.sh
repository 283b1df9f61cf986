#!/usr/bin/env bash
# The one prepared GPU check (`make gpu-check`): the GPU tests, every benchmark in bench/ (each
# writing its lib.results record) and chapters 2-4 through papermill with DEVICE="cuda". Each step
# has its own time budget (seconds, `timeout`), and after each step everything written so far is
# packed into ${OUT}/gpu-check.tar.gz, so a step that overruns loses nothing before it.
#
#   bash scripts/gpu_check.sh                                  # all steps (~9 min on an H100/H200)
#   GPU_CHECK_STEPS="tests bench" bash scripts/gpu_check.sh    # some steps (fit a 10-minute call)
#   GPU_CHECK_DRY=1 CUDA_VISIBLE_DEVICES="" bash scripts/gpu_check.sh   # dry run on a CPU, tiny sizes
#
# Steps: env tests bench_completion bench_sizes bench_dln bench_metrics bench_tiles nb02 nb03 nb04.
# Budgets: BUDGET_<step>=seconds overrides the default below. Notebook parameters beyond
# DEVICE="cuda" (the paper's sizes, say): GPU_PARAMS_DIR=dir holding <notebook stem>.yaml files.
#
# What the device image lacks (papermill, ipykernel, nbclient, pyzmq, ...) comes from a wheelhouse
# built beforehand on a machine with the registry, for the device's Python version, e.g.
#   pip download -d wheelhouse --only-binary=:all: --python-version 3.11 papermill ipykernel nbclient
# and is installed with --no-index --find-links (WHEELHOUSE, default ./wheelhouse) only when the
# import fails. The records land in ${OUT}/records (LIB_RESULTS_DIR); copy them into
# lib/results/records/ and commit them. On a copy of the work tree without .git, name the commit:
#   LIB_RESULTS_COMMIT=<git rev-parse HEAD, run here> bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-_build/gpu}"
mkdir -p "$out/records"
export LIB_RESULTS_DIR="$out/records" HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
dry="${GPU_CHECK_DRY:-0}"
steps="${GPU_CHECK_STEPS:-env tests bench_completion bench_sizes bench_dln bench_metrics bench_tiles nb02 nb03 nb04}"
dev=cuda
[ "$dry" = 1 ] && dev=cpu
status=0

pack() {  # everything under $out but the archive itself, packed after every step
  local tmp
  tmp=$(mktemp "${TMPDIR:-/tmp}/gpu-check.XXXXXX") || return 0
  tar -czf "$tmp" --exclude=./gpu-check.tar.gz -C "$out" . && mv "$tmp" "$out/gpu-check.tar.gz"
}

step() {  # step NAME DEFAULT_BUDGET COMMAND...: run with a budget, log, summarise, pack
  local name=$1 budget_var="BUDGET_$1" budget=$2 t0 rc
  shift 2
  budget="${!budget_var:-$budget}"
  case " $steps " in *" $name "*) ;; *) return 0 ;; esac
  t0=$(date +%s)
  timeout --kill-after=10 "$budget" "$@" > "$out/$name.log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then verdict=ok; elif [ $rc -ge 124 ]; then verdict="TIMEOUT(${budget}s)"; else verdict="FAIL($rc)"; fi
  [ $rc -eq 0 ] || status=1
  echo "$verdict $name $(( $(date +%s) - t0 )) s" | tee -a "$out/summary.txt"
  pack
}

need() {  # install from the wheelhouse what the image lacks
  python -c "import $1" 2>/dev/null && return 0
  [ -d "${WHEELHOUSE:-wheelhouse}" ] || { echo "missing $1 and no wheelhouse at ${WHEELHOUSE:-wheelhouse}"; return 1; }
  python -m pip install -q --no-index --find-links "${WHEELHOUSE:-wheelhouse}" "$2"
}

if [ "$dry" != 1 ]; then
  python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu-check needs a CUDA GPU')" || exit 2
fi
need papermill papermill && need ipykernel ipykernel || echo "notebook steps will fail: papermill/ipykernel absent" | tee -a "$out/summary.txt"

step env 30 bash -c 'nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true;
  python -c "import torch, platform; print(platform.python_version(), torch.__version__, torch.version.cuda)"'
if [ "$dry" = 1 ]; then  # tiny sizes on the CPU: checks the script, not the numbers
  step tests 120 python -m pytest -m gpu -p no:nbval -o addopts="" -q tests/test_dln.py
  step bench_completion 120 python bench/completion.py --device cpu --quick --d 200
  step bench_sizes 120 python bench/completion_sizes.py --device cpu --sizes 50,100 --orig-max-d 50 --max-steps 300
  step bench_dln 60 python bench/dln.py --device cpu --quick --runs 8
  step bench_metrics 120 python bench/metrics.py --device cpu --quick --skip-alone
  step bench_tiles 30 bash -c 'python bench/fused_tiles.py --device cpu; test $? -ne 0'  # must refuse
  nb_params=(-p DEVICE cpu -p SEED 1)
else
  step tests 90 python -m pytest -m gpu -p no:nbval -o addopts="" -q
  step bench_completion 150 python bench/completion.py --device cuda --budget 120
  step bench_sizes 120 python bench/completion_sizes.py --device cuda --sizes 1000,2000,5000,10000 --orig-max-d 2000 --time-limit 20 --budget 100
  step bench_dln 45 python bench/dln.py --device cuda
  step bench_metrics 90 python bench/metrics.py --device cuda
  step bench_tiles 60 python bench/fused_tiles.py --device cuda
  nb_params=(-p DEVICE cuda)
fi
for n in 02 03 04; do
  nb=$(ls book/${n}_*.ipynb)
  extra=()
  if [ "$dry" = 1 ]; then  # the CI parameter set of the notebook (tests/notebook_params.yaml)
    python -c "import sys, yaml; print(yaml.safe_dump(yaml.safe_load(open('tests/notebook_params.yaml'))[sys.argv[1]]))" \
      "$(basename "$nb")" > "$out/params-$n.yaml"
    extra=(-f "$out/params-$n.yaml")
  elif [ -f "${GPU_PARAMS_DIR:-}/$(basename "$nb" .ipynb).yaml" ]; then  # e.g. paper-scale values
    extra=(-f "$GPU_PARAMS_DIR/$(basename "$nb" .ipynb).yaml")
  fi
  step "nb$n" 200 papermill "$nb" "$out/$(basename "$nb")" "${nb_params[@]}" "${extra[@]}" -k python3 --cwd book --no-progress-bar
done
pack
echo "archive: $out/gpu-check.tar.gz"
exit $status
