"""Benchmark: dense NC1 (p x p matrices, float64 pinv) against lib.metrics' exact low-rank NC1.

    python bench/metrics.py            # the issue's sizes; a few minutes on a 2-core CPU
    python bench/metrics.py --quick    # small sizes, < 1 minute on a 2-core CPU
    python bench/metrics.py --device cuda

Rows with ``dense`` time the textbook formula tr(Σ_W pinv(Σ_B)) in float64 (Σ_W built from the
residuals, ``torch.linalg.pinv`` with its default cutoff) and ``lib.metrics.nc1`` + ``trace_ratio``
on the same float64 features; "rel. diff" is |ours - dense| / |dense| for NC1 and for D. The last
row of each size set runs ours alone at a width where the dense p x p matrices cannot be stored
(p = 200,000 is 320 GB in float64); its features are generated batch by batch on the device and
fed to the two-pass ``CollapseAccumulator``, so the whole feature matrix never exists. The time
printed for it excludes generating the features (timed separately, batch by batch).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from functools import partial

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lib import results  # noqa: E402
from lib.metrics import CollapseAccumulator, nc1, trace_ratio  # noqa: E402
from lib.runtime import resolve_device  # noqa: E402

# The sizes. For p = 200,000 the issue fixes no N: 20,000 on a GPU, 5,000 on a CPU (there
# generating 4e9 Gaussian numbers twice would take minutes on its own).
FULL = {"dense": [(20_000, 2048, 100), (50_000, 4096, 100)], "alone": [(20_000, 200_000, 100)]}
FULL_CPU_ALONE = [(5_000, 200_000, 100)]
QUICK = {"dense": [(5_000, 512, 20), (10_000, 1024, 50)], "alone": [(5_000, 20_000, 50)]}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def make_features(N, p, K, device, seed=0):
    """Class centres (K, p) and balanced shuffled labels (N,); features are centres[y] + noise."""
    g = torch.Generator(device=device).manual_seed(seed)
    centres = torch.randn(K, p, generator=g, device=device)  # between ~ within: NC1 ~ K - 1
    y = torch.arange(N, device=device) % K
    y = y[torch.randperm(N, generator=g, device=device)]
    return centres, y


def dense_nc1(H: torch.Tensor, y: torch.Tensor, K: int):
    """The reference formula with p x p matrices, float64 throughout."""
    H = H.double()
    N, p = H.shape
    sums = torch.zeros(K, p, dtype=H.dtype, device=H.device).index_add_(0, y, H)
    means = sums / torch.bincount(y, minlength=K)[:, None]
    C = means - H.mean(0)  # (K, p)
    Sw = torch.zeros(p, p, dtype=H.dtype, device=H.device)
    for start in range(0, N, 8192):
        R = H[start : start + 8192] - means[y[start : start + 8192]]
        Sw += R.T @ R
    Sw /= N
    Sb = C.T @ C / K
    return torch.trace(Sw @ torch.linalg.pinv(Sb)), torch.trace(Sw) / torch.trace(Sb)


def ours(H, y, K):
    return nc1(H, y, K), trace_ratio(H, y, K)


def batches(N, p, K, device, batch):
    """Yield float32 (features, labels) batches generated on the fly, the same in every pass."""
    centres, y = make_features(N, p, K, device, seed=1)
    for i, start in enumerate(range(0, N, batch)):
        g = torch.Generator(device=device).manual_seed(1000 + i)
        yb = y[start : start + batch]
        yield centres[yb] + torch.randn(len(yb), p, generator=g, device=device), yb


def streaming(N, p, K, device, batch):
    """Two passes of the accumulator over generated batches; returns values, compute and generation time."""
    acc = CollapseAccumulator(K)
    t_gen = t_acc = 0.0
    for update in (acc.update_means, acc.update_within):
        data = batches(N, p, K, device, batch)
        while True:
            try:
                (Hb, yb), dt = timed(partial(next, data), device)
            except StopIteration:
                break
            t_gen += dt
            _, dt = timed(partial(update, Hb, yb), device)
            t_acc += dt
    (values), dt = timed(lambda: (acc.nc1(), acc.trace_ratio()), device)
    return values, t_acc + dt, t_gen


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (< 1 min on 2 CPU cores)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of ours (best is shown)")
    parser.add_argument("--skip-alone", action="store_true", help="skip the p=200,000 row")
    parser.add_argument("--skip-dense", action="store_true", help="run only the p=200,000 row")
    parser.add_argument(
        "--no-record", dest="record", action="store_false",
        help="do not write the record lib/results/records/metrics-<machine>.json",
    )  # fmt: skip
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    sizes = QUICK if args.quick else FULL
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu"
    )
    print(
        f"device: {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )

    # Warm-up: library initialisation (cuBLAS/cuSOLVER handles, MKL/OpenBLAS threads) is not timed.
    Hw = torch.randn(256, 64, device=device)
    yw = torch.arange(256, device=device) % 4
    dense_nc1(Hw, yw, 4), ours(Hw, yw, 4)

    header = f"{'N':>7} {'p':>8} {'K':>4} | {'dense [s]':>9} {'ours [s]':>9} {'speed-up':>9} | {'NC1':>10} {'rel.diff NC1':>12} {'rel.diff D':>11}"
    print(header)
    print("-" * len(header))
    rows = []
    for N, p, K in [] if args.skip_dense else sizes["dense"]:
        centres, y = make_features(N, p, K, device)
        g = torch.Generator(device=device).manual_seed(7)
        # float64 features, so that both results are float64 and their difference is not the
        # rounding of ours to the input's dtype (both compute in float64 either way).
        H = (centres[y] + torch.randn(N, p, generator=g, device=device)).double()  # (N, p)
        (dn, dd), t_dense = timed(partial(dense_nc1, H, y, K), device)
        best = float("inf")
        for _ in range(max(1, args.repeat)):
            (on, od), t = timed(partial(ours, H, y, K), device)
            best = min(best, t)
        rn = abs(float(on) - float(dn)) / abs(float(dn))
        rd = abs(float(od) - float(dd)) / abs(float(dd))
        print(
            f"{N:>7} {p:>8} {K:>4} | {t_dense:>9.3f} {best:>9.3f} {t_dense / best:>8.1f}x | {float(on):>10.5g} {rn:>12.1e} {rd:>11.1e}",
            flush=True,
        )
        rows.append(dict(N=N, p=p, K=K, dense_seconds=t_dense, ours_seconds=best, speedup=t_dense / best, nc1=float(on), rel_diff_nc1=rn, rel_diff_trace_ratio=rd))  # fmt: skip
        del H
    if not args.skip_alone:
        alone = FULL_CPU_ALONE if device.type == "cpu" and not args.quick else sizes["alone"]
        for N, p, K in alone:
            batch = max(1, (1 << 26) // p)  # ~256 MiB float32 batches
            (on, od), t, t_gen = streaming(N, p, K, device, batch)
            print(
                f"{N:>7} {p:>8} {K:>4} | {'—':>9} {t:>9.3f} {'—':>9} | {float(on):>10.5g} {'(streamed,':>12} {'2 passes)':>11}",
                flush=True,
            )
            print(
                f"{'':>22}  (generating the {N}x{p} features twice took {t_gen:.3f} s, not included)"
            )
            rows.append(dict(N=N, p=p, K=K, dense_seconds=None, ours_seconds=t, streamed=True, generate_seconds=t_gen, nc1=float(on)))  # fmt: skip
    out = {"device": str(device), "device_name": name, "quick": args.quick, "repeat": args.repeat, "rows": rows}  # fmt: skip
    if args.record:
        argv_ = sys.argv if argv is None else ["bench/metrics.py", *argv]
        results.write("metrics", out, str(device), argv=argv_)
    return out


if __name__ == "__main__":
    main()
