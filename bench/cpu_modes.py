"""Benchmark: what reproducible CPU results cost — MKL's modes and oneDNN, side by side.

    python bench/cpu_modes.py            # about two minutes on a 2-core CPU
    python bench/cpu_modes.py --quick    # fewer repeats, under a minute

``lib.setup(reproducible=True)`` (the chapters' default) puts MKL in its COMPATIBLE mode and turns
oneDNN off, so that the stored outputs come out the same on Intel and AMD processors. This script
times three settings, each in a fresh process (MKL reads its mode once, at its first routine):

* ``fast`` — ``lib.setup(reproducible=False)``: MKL picks its own path, oneDNN on;
* ``avx2`` — MKL's AVX2 mode, oneDNN off (the book's setting until 2026-12-03, which was not
  enough: MKL's AVX2 mode rounds differently on Intel and AMD processors);
* ``compatible`` — ``lib.setup()``: MKL's COMPATIBLE mode, oneDNN off.

Two workloads: a float32 matrix product (1024 x 1024 times 1024 x 1024, best of the repeats) and
one epoch of chapter 1's source pretraining (the small ResNet on digits 0-4, batch 64; best of
the repeats after an untimed warm-up epoch). The printed ratios are each setting's time over ``fast``'s, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lib import results  # noqa: E402

SETTINGS = {  # name: (MKL_CBWR or None for MKL's choice, reproducible argument of lib.setup)
    "fast": (None, False),
    "avx2": ("AVX2", True),
    "compatible": ("COMPATIBLE", True),
}

_CHILD = """
import json, sys, time
import torch
import lib
from lib import transfer
lib.setup(seed=0, device="cpu", style=False, reproducible=sys.argv[1] == "1")
repeats = int(sys.argv[2])
g = torch.Generator().manual_seed(0)
a, b = torch.randn(1024, 1024, generator=g), torch.randn(1024, 1024, generator=g)
a @ b  # warm-up: MKL initialises here
gemm = []
for _ in range(repeats):
    start = time.perf_counter()
    a @ b
    gemm.append(time.perf_counter() - start)
config = transfer.FitConfig(epochs=1, batch_size=64, lr=0.03, progress=False)
transfer.pretrain_source("small_resnet", snapshots=(1,), config=config)  # warm-up, untimed
epoch = []
for _ in range(max(1, repeats // 5)):
    start = time.perf_counter()
    transfer.pretrain_source("small_resnet", snapshots=(1,), config=config,
                             generator=torch.Generator().manual_seed(0))
    epoch.append(time.perf_counter() - start)
print(json.dumps({"gemm_ms": 1e3 * min(gemm), "epoch_s": min(epoch),
                  "onednn": torch.backends.mkldnn.enabled}))
"""


def run(name: str, repeats: int) -> dict:
    """One setting in a fresh process: ``{"gemm_ms", "epoch_s", "onednn", "mkl_cbwr"}``."""
    mode, reproducible = SETTINGS[name]
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    if mode is not None:
        env["MKL_CBWR"] = mode
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, "1" if reproducible else "0", str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "mkl_cbwr": mode or "(MKL's own)"}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (< 1 min)")
    parser.add_argument(
        "--no-record", dest="record", action="store_false",
        help="do not write the record lib/results/records/cpu_modes-<machine>.json",
    )  # fmt: skip
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else 20
    rows = [{"setting": name, **run(name, repeats)} for name in SETTINGS]
    fast = rows[0]  # "fast"
    print(f"{'setting':<11} {'MKL_CBWR':<12} {'oneDNN':<7} {'GEMM ms':>8} {'x fast':>7} {'epoch s':>8} {'x fast':>7}")  # fmt: skip
    for r in rows:
        r["gemm_ratio"] = r["gemm_ms"] / fast["gemm_ms"]
        r["epoch_ratio"] = r["epoch_s"] / fast["epoch_s"]
        print(
            f"{r['setting']:<11} {r['mkl_cbwr']:<12} {str(r['onednn']):<7} {r['gemm_ms']:>8.2f} "
            f"{r['gemm_ratio']:>7.2f} {r['epoch_s']:>8.2f} {r['epoch_ratio']:>7.2f}"
        )
    out = {"repeats": repeats, "quick": args.quick, "rows": rows}
    if args.record:
        argv_ = sys.argv if argv is None else ["bench/cpu_modes.py", *argv]
        results.write("cpu_modes", out, "cpu", argv=argv_)
    return out


if __name__ == "__main__":
    main()
