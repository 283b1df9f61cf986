"""Benchmark: deep matrix completion at large d, on the observed entries only (issue 17, item 4).

No d × d array is ever built (``lib.completion.large``): the target is held as rank-r factors, the
observed entries as sorted int64 lists, the test error is measured on a held-out sample of
unobserved entries, and the compressed network (width 2r̂, built from the sparse first gradient
of the original network started at W_l(0) = εI) is trained by gradient descent on the observed
entries, inner factors at η = lr_scale · default_lr, outer factors at γη. γ is set from the
target's top singular value σ₁ so that the outer factors' share of the step's curvature is
``--outer`` (γ = outer / (2 lr_scale) · L / σ₁^{2/3}; the paper's fixed γ = 0.01 sits at
about this value at d = 100,000, and above the edge of stability at d ≤ 20,000).

Two runs, one table, one record (``lib/results/records/completion_large-<machine>.json``):

* the path check at ``--d`` (default 20,000, r = 5, 0.5 % observed: twice the d·r·log d entries
  completion needs): at most ``--max-steps`` steps (default 300 on a CPU) towards a relative test
  error of ``--tol``: time per step, peak memory, test error history;
* one larger problem to the tolerance, ``--large-d`` (default 50,000 at 0.2 % on a CPU: 5·10⁶
  entries, again twice d·r·log d), stopped at ``--time-limit`` seconds of training.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` per run; on a CPU the peak resident set
size of the process during each run (psutil, sampled every 20 ms; else ``ru_maxrss``, the peak
over the whole process so far). The original network's L d × d weights are reported for
comparison (at d = 100,000: 3·10¹⁰ floats, 120 GB in float32).

    python bench/completion_large.py                  # ~10 minutes on a 2-core CPU
    python bench/completion_large.py --d 2000 --fraction 0.05 --large-d 0 --no-record   # dry run
    python bench/completion_large.py --device cuda --d 100000 --fraction 0.01          # the moonshot

On CUDA the defaults are ``--max-steps 5000 --large-d 0``: the moonshot is one run of d = 100,000,
1 % observed (10⁸ entries), L = 3, to a relative test error of 1e-3 (goal: ≤ 120 s on one GPU).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/completion.py

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from lib import results  # noqa: E402
from lib.completion import large  # noqa: E402
from lib.runtime import resolve_device  # noqa: E402

try:
    import psutil
except ImportError:  # peak memory from ru_maxrss instead
    psutil = None


class _PeakMemory:
    """Peak memory of the block: CUDA allocator peak, or sampled process RSS (bytes)."""

    def __init__(self, device: torch.device):
        self.device, self.peak, self.how = device, 0, ""
        self._stop = threading.Event()

    def _sample(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            self._stop.wait(0.02)

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif psutil is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak, self.how = torch.cuda.max_memory_allocated(self.device), "cuda allocator"
        elif psutil is not None:
            self._stop.set()
            self._thread.join()
            self.how = "process RSS (psutil, sampled every 20 ms)"
        else:
            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            self.how = "ru_maxrss (peak of the whole process so far)"


def _sigma1(P: large.LargeProblem) -> float:
    """σ₁ of the target s·A Bᵀ from the factors: s·σ₁(R_A R_Bᵀ), QR of the thin factors."""
    Ra, Rb = torch.linalg.qr(P.left)[1], torch.linalg.qr(P.right)[1]
    return P.scale * float(torch.linalg.svdvals(Ra @ Rb.T)[0])


def _run(args, device, d: int, fraction: float, max_steps: int, time_limit: float) -> dict:
    dtype = getattr(torch, args.dtype)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    with _PeakMemory(device) as mem:
        t0 = time.perf_counter()
        P = large.make_large_problem(
            d, args.rank, fraction, args.n_test, generator=gen, dtype=dtype, device=device
        )
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        make_seconds = time.perf_counter() - t0
        sigma1, L = _sigma1(P), args.depth
        lr = args.lr_scale * d**2 / (P.observed_fraction * L * sigma1 ** (2 - 2 / L))
        gamma = args.outer / (2 * args.lr_scale) * L / sigma1 ** (2 / 3)
        res = large.fit_large(
            P, L, args.scale, lr=lr, gamma=gamma, max_steps=max_steps, tol=args.tol,
            record_every=args.record_every, layout=args.layout, time_limit=time_limit,
            iterations=args.iterations,
        )  # fmt: skip
    n_obs, n_test = P.n_observed, P.test_rows.numel()
    del P
    return {
        "d": d, "rank": args.rank, "depth": L, "fraction": fraction, "n_observed": n_obs,
        "entries_over_d_r_log_d": n_obs / (d * args.rank * math.log(d)), "n_test": n_test,
        "sigma1": sigma1, "scale": args.scale, "lr": lr, "gamma": gamma,
        "steps": res.steps, "seconds": res.seconds, "ms_per_step": 1e3 * res.seconds / max(res.steps, 1),
        "make_seconds": make_seconds, "setup_seconds": res.setup_seconds,
        "test_error": res.test_error[-1], "converged": res.converged, "tol": args.tol,
        "peak_memory_gb": mem.peak / 2**30, "peak_memory_how": mem.how,
        "original_weights_gb": L * d * d * dtype.itemsize / 2**30, "n_params": res.n_params,
        "step_mode": res.step_mode, "layout": res.layout,
        "record_steps": res.record_steps, "test_error_history": res.test_error,
        "train_loss_history": res.train_loss, "load_average": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto (default cpu)")
    p.add_argument("--d", type=int, default=20_000, help="d of the path check (default 20000)")
    p.add_argument("--fraction", type=float, default=0.005, help="observed fraction (0.005)")
    p.add_argument("--max-steps", type=int, default=None, help="cap (300 on a CPU, 5000 CUDA)")
    p.add_argument("--large-d", type=int, default=None, help="d of the run to tol (0: skip; "
                   "default 50000 on a CPU, 0 on CUDA)")  # fmt: skip
    p.add_argument("--large-fraction", type=float, default=0.002, help="its fraction (0.002)")
    p.add_argument("--large-max-steps", type=int, default=3000, help="its step cap (3000)")
    p.add_argument("--time-limit", type=float, default=600.0, help="training seconds per run")
    p.add_argument("--rank", type=int, default=5, help="r (default 5)")
    p.add_argument("--depth", type=int, default=3, help="L (default 3)")
    p.add_argument("--scale", type=float, default=0.3, help="ε (default 0.3)")
    p.add_argument("--lr-scale", type=float, default=0.6, help="η / default_lr (default 0.6)")
    p.add_argument("--outer", type=float, default=0.6, help="outer factors' curvature share")
    p.add_argument("--tol", type=float, default=1e-3, help="relative test error (default 1e-3)")
    p.add_argument("--n-test", type=int, default=100_000, help="held-out entries (100000)")
    p.add_argument("--record-every", type=int, default=25, help="steps between test errors")
    p.add_argument("--iterations", type=int, default=20, help="subspace-iteration rounds")
    p.add_argument("--layout", default="auto", choices=["auto", "padded", "scatter"])
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--no-record", dest="record", action="store_false", help="write no record")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    on_cuda = device.type == "cuda"
    max_steps = args.max_steps if args.max_steps is not None else (5000 if on_cuda else 300)
    large_d = args.large_d if args.large_d is not None else (0 if on_cuda else 50_000)
    print(
        f"completion at large d on the observed entries only: r={args.rank}, L={args.depth}, "
        f"ε={args.scale:g}, η={args.lr_scale:g}·default_lr, outer share {args.outer:g}, "
        f"tol={args.tol:g} (relative test error), {args.dtype}, device={device}, "
        f"{torch.get_num_threads()} threads"
    )
    runs = [("path check", args.d, args.fraction, max_steps)]
    if large_d:
        runs.append(("to tolerance", large_d, args.large_fraction, args.large_max_steps))
    header = (
        f"{'run':<13}{'d':>8}{'p':>8}{'|Ω|':>11}{'steps':>7}{'ms/step':>9}{'train s':>9}"
        f"{'setup s':>9}{'test err':>10}{'peak GB':>9}{'orig. GB':>10}"
    )
    print(header + "\n" + "-" * len(header))
    rows = []
    for name, d, fraction, steps in runs:
        row = dict(run=name, **_run(args, device, d, fraction, steps, args.time_limit))
        rows.append(row)
        print(
            f"{name:<13}{d:>8}{fraction:>8g}{row['n_observed']:>11}{row['steps']:>7}"
            f"{row['ms_per_step']:>9.1f}{row['seconds']:>9.1f}"
            f"{row['make_seconds'] + row['setup_seconds']:>9.1f}{row['test_error']:>10.2e}"
            f"{row['peak_memory_gb']:>9.2f}{row['original_weights_gb']:>10.1f}"
            + ("" if row["converged"] else "  (tolerance not reached)")
        )
    print("peak memory: " + rows[0]["peak_memory_how"] + "; orig. GB: the original network's L d×d")
    settings = {k: v for k, v in vars(args).items() if k not in ("record", "device")}
    settings.update(max_steps=max_steps, large_d=large_d)
    out = {"device": str(device), "settings": settings, "rows": rows}
    if args.record:
        argv_ = sys.argv if argv is None else ["bench/completion_large.py", *argv]
        results.write("completion_large", out, str(device), argv=argv_)
    return out


if __name__ == "__main__":
    main()
