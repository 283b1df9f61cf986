"""Benchmark: the original deep matrix-completion network (dense, as published) vs the compressed one.

The paper's setting — d = 1000, r = 5, 20 % observed, L = 3, ε = 1e-3, step size 5e3, train to
loss 1e-9 (``lib.completion``'s loss: ½·mean over all d² entries of the masked residual):

* the *original* network — L dense d × d layers, the loss through the dense end-to-end matrix, as
  the public JAX code computes it (``lib.completion.fit(..., "original")``);
* the *compressed* network — width 2r̂ built from the first gradient, outer factors at γη
  (γ = 0.01), loss and gradient only at the observed entries stored as padded rows and columns
  (``layout="padded"``: gathers and row sums, no atomics) — in every step mode: ``eager``
  (one kernel launch per op), ``graph`` (CUDA graphs of 50 steps), ``compile``
  (``torch.compile``), ``compile+graph``, ``fused`` (three Triton kernels per step, replayed as
  CUDA graphs: ``lib.completion._triton``); then the ablations of the fastest mode: thin products
  by BLAS instead of fusible broadcast sums, and the scatter-add layout (one list of entries,
  atomics); and once more through the dense path;
* the compressed network at d = 10,000 in the faster of ``fused`` and ``compile+graph`` (run
  right after those two, before the other modes, so that it fits the time budget).

Prints seconds (training loop, device-synchronised, set-up excluded as the public code excludes
its compilation), steps, time per step, final test loss, and time relative to the original, side
by side in one table.

    python bench/completion.py --quick            # < 1 minute on a 2-core CPU (fixed step counts)
    python bench/completion.py --device cuda      # the paper's sizes on a GPU (< 2 minutes, H100)
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path

# On a small shared CPU, OpenMP's default spin-waiting makes every multi-threaded op cost
# milliseconds when another process holds a core; passive waiting avoids it (set before torch).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from lib import completion, results  # noqa: E402
from lib.runtime import resolve_device  # noqa: E402


def _gen(seed: int, device: torch.device) -> torch.Generator:
    # Large problems are sampled on the accelerator (a CPU randperm of d² entries is slow).
    return torch.Generator(device=device).manual_seed(seed)


def _row(
    label: str,
    res: completion.FitResult | None,
    base: completion.FitResult | None,
    note: str = "",
    fixed_steps: bool = False,
) -> dict:
    """Print one line of the table (and return it as a dict); ``base`` is the original's run."""
    if res is None:
        print(f"{label:<42}{note}")
        return {"label": label, "skipped": note}
    ms = 1e3 * res.seconds / max(res.steps, 1)
    if not (fixed_steps or res.converged or "time limit" in note):
        note += "  [max_steps: tolerance not reached]"
    step_ratio = time_ratio = None
    if base is not None:
        step_ratio = ms / (1e3 * base.seconds / max(base.steps, 1))
        time_ratio = None if fixed_steps else res.seconds / base.seconds
    cols = "".join(f"{v:>9.3f}" if v is not None else f"{'':>9}" for v in (step_ratio, time_ratio))
    print(
        f"{label:<42}{res.n_params:>11,}{res.steps:>8}{res.seconds:>10.3f}{ms:>10.4f}"
        f"{res.test_loss[-1]:>11.2e}{cols}{res.setup_seconds:>8.1f}{note}"
    )
    return {
        "label": label,
        "step_mode": res.step_mode,
        "evaluation": res.evaluation,
        "params": res.n_params,
        "steps": res.steps,
        "seconds": res.seconds,
        "ms_per_step": ms,
        "test_loss": res.test_loss[-1],
        "train_loss": res.train_loss[-1],
        "converged": res.converged,
        "setup_seconds": res.setup_seconds,
        "step_time_vs_original": step_ratio,
        "time_vs_original": time_ratio,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: auto)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="fixed step counts (5 original, 100 compressed): time per step in under a minute on a 2-core CPU",
    )
    p.add_argument("--d", type=int, default=None, help="side of the target (default 1000)")
    p.add_argument("--rank", type=int, default=5, help="r (default 5)")
    p.add_argument("--fraction", type=float, default=0.2, help="observed fraction (default 0.2)")
    p.add_argument("--depth", type=int, default=3, help="L (default 3)")
    p.add_argument("--scale", type=float, default=1e-3, help="ε (default 1e-3)")
    p.add_argument("--lr", type=float, default=5e3, help="η (default 5e3, the paper's)")
    p.add_argument("--gamma", type=float, default=0.01, help="γ (default 0.01)")
    p.add_argument("--tol", type=float, default=1e-9, help="stop at this train loss (default 1e-9)")
    p.add_argument("--max-steps", type=int, default=60_000, help="cap on GD steps (default 60000)")
    p.add_argument(
        "--large-d",
        type=int,
        default=None,
        help="d of the last, compressed-only run (default 10000; 0 skips it; quick: skipped)",
    )
    p.add_argument(
        "--modes",
        default=None,
        help="comma-separated step modes of the compressed network "
        "(default on CUDA: fused,compile+graph,graph,eager,compile; elsewhere: eager)",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=100.0,
        help="skip the runs still to come once this many seconds have passed (default 100)",
    )
    p.add_argument(
        "--large-seconds",
        type=float,
        default=40.0,
        help="training-time limit of the large run (default 40; the goal is <= 30 s)",
    )
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: torch's)"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    p.add_argument(
        "--no-record", dest="record", action="store_false",
        help="do not write the record lib/results/records/completion-<machine>.json",
    )  # fmt: skip
    args = p.parse_args(argv)

    t_start = time.perf_counter()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype)
    d = args.d or 1000
    large_d = 0 if args.quick and args.large_d is None else (args.large_d or 0)
    if args.large_d is None and not args.quick:
        large_d = 10_000
    if args.modes is not None:
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    else:
        modes = (
            ["fused", "compile+graph", "graph", "eager", "compile"]
            if device.type == "cuda"
            else ["eager"]
        )
    # quick: fixed step counts (no tolerance): time per step, not time to converge
    tol = 0.0 if args.quick else args.tol
    steps_orig = 5 if args.quick else args.max_steps
    steps_comp = 100 if args.quick else args.max_steps
    record = 100 if args.quick else 500

    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    print(
        f"Deep matrix completion: d={d}, r={args.rank}, {100 * args.fraction:g}% observed, "
        f"L={args.depth}, ε={args.scale:g}, η={args.lr:g}, γ={args.gamma:g}, "
        f"{'fixed steps' if args.quick else f'train to loss {tol:g}'}, {args.dtype}, "
        f"device={device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} CPU "
        f"threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    )
    t0 = time.perf_counter()
    problem = completion.make_problem(
        d, args.rank, args.fraction, generator=_gen(0, device), dtype=dtype, device=device
    )
    print(f"problem: {time.perf_counter() - t0:.1f} s to sample, |Ω| = {problem.n_observed:,}")
    header = (
        f"{'network':<42}{'params':>11}{'steps':>8}{'seconds':>10}{'ms/step':>10}"
        f"{'test loss':>11}{'x step':>9}{'x time':>9}{'setup s':>8}"
    )
    print(header)
    print("-" * len(header))
    common = dict(depth=args.depth, scale=args.scale, lr=args.lr, tol=tol, record_every=record)
    rows = []
    row = functools.partial(_row, fixed_steps=args.quick)

    def over_budget() -> bool:
        return time.perf_counter() - t_start > args.budget

    edge_lr = completion.default_lr(problem, args.depth)
    orig = completion.fit(problem, "original", max_steps=steps_orig, **common)
    base = orig
    rows.append(row(f"original (dense, as published; {orig.step_mode})", orig, base))

    def run_mode(mode: str, layout: str = "padded", blas: bool | None = None) -> None:
        what = f"{layout}; {mode}" + ("" if blas is None else "; BLAS products" * blas)
        label = f"compressed (observed, {what})"
        if over_budget():
            rows.append(row(label, None, None, "skipped: time budget"))
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            res = completion.fit(
                problem, "compressed", max_steps=steps_comp, gamma=args.gamma,
                evaluation="observed", step_mode=mode, layout=layout,
                broadcast=None if blas is None else not blas, **common,
            )  # fmt: skip
        fell = res.step_mode != mode and caught
        rows.append(row(label, res, base, f"  [fell back: {caught[-1].message}]" if fell else ""))
        if layout == "padded" and blas is None:
            per_step[mode] = res.seconds / max(res.steps, 1) if res.step_mode == mode else math.inf

    def run_large(mode: str) -> completion.FitResult | None:
        label = f"compressed at d={large_d:,} (observed, padded; {mode})"
        if over_budget():
            rows.append(row(label, None, None, "skipped: time budget"))
            return None
        t0 = time.perf_counter()
        big = completion.make_problem(
            large_d, args.rank, args.fraction, generator=_gen(0, device), dtype=dtype,
            device=device,
        )  # fmt: skip
        sample_s = time.perf_counter() - t0
        left = args.budget - (time.perf_counter() - t_start)
        res = completion.fit(
            big, "compressed", max_steps=args.max_steps, gamma=args.gamma,
            evaluation="observed", step_mode=mode,
            time_limit=max(5.0, min(args.large_seconds, left - 15.0)),  # ~15 s of set-up
            # the same fraction of the edge of stability as η at d (η ∝ d^{4/3} for L = 3)
            **dict(common, lr=args.lr * completion.default_lr(big, args.depth) / edge_lr),
        )  # fmt: skip
        stopped = "" if res.converged else ", stopped by the time limit"
        rows.append(row(label, res, None, f"  (sampling {sample_s:.1f} s{stopped})"))
        del big
        return res

    # The two fused modes first, then the large problem in the faster of them, then the other
    # modes while the budget lasts (eager alone takes seconds at d = 1000: one launch per op).
    per_step: dict[str, float] = {}
    first = [m for m in ("fused", "compile+graph", "graph") if m in modes][:2] or modes[:1]
    for mode in first:
        run_mode(mode)
    fast = min(per_step, key=per_step.get) if per_step else "auto"
    large = run_large(fast) if large_d else None
    for mode in [m for m in modes if m not in first]:
        run_mode(mode)
    # ablations of the fastest PyTorch step (the fused Triton step has one form only)
    torch_modes = {m: v for m, v in per_step.items() if m != "fused"}
    best_mode = min(torch_modes, key=torch_modes.get) if torch_modes else "eager"
    if "compile" in best_mode:  # the thin products as BLAS calls instead of broadcast sums
        run_mode(best_mode, blas=True)
    run_mode(best_mode, layout="scatter")  # scatter-add (atomics) instead of padding
    if not over_budget():
        res = completion.fit(
            problem, "compressed", max_steps=steps_comp, gamma=args.gamma,
            evaluation="dense", step_mode=best_mode, **common,
        )  # fmt: skip
        rows.append(row(f"compressed (dense; {res.step_mode})", res, base))
    print(
        "x step: time per step / the original's; x time: seconds / the original's; "
        "seconds exclude the set-up (init, compression, compilation, graph capture: 'setup s')"
    )

    comp = [r for r in rows if r["label"].startswith("compressed (") and "seconds" in r]
    if comp:
        key = "ms_per_step" if args.quick else "seconds"
        fastest = min(comp, key=lambda r: r[key])
        base_value = 1e3 * base.seconds / max(base.steps, 1) if args.quick else base.seconds
        unit = "ms per step" if args.quick else "s"
        print(
            f"fastest compressed: {fastest['label']}: {fastest[key]:.3f} {unit} = "
            f"{fastest[key] / base_value:.3f} x the original's {base_value:.3f} {unit} "
            f"({orig.n_params / fastest['params']:.0f}x fewer parameters)"
        )
    if not args.quick:
        goals = []
        if comp:
            goals.append(f"d={d}: compressed {fastest['seconds']:.2f} s (goal <= 1.0 s), "
                         f"ratio {fastest['seconds'] / base.seconds:.3f} (goal <= 0.25)")  # fmt: skip
        if large is not None:
            done = (
                "" if large.converged else f", not converged: train loss {large.train_loss[-1]:.2g}"
            )
            goals.append(f"d={large_d:,}: {large.seconds:.1f} s (goal <= 30 s{done})")
        if goals:
            print("goals: " + "; ".join(goals))
    print(f"total wall time {time.perf_counter() - t_start:.0f} s")
    ok = all(math.isfinite(r.get("test_loss", 0.0)) for r in rows)
    out = {
        "device": str(device),
        "device_name": name,
        "torch": torch.__version__,
        "dtype": args.dtype,
        "d": d,
        "rank": args.rank,
        "fraction": args.fraction,
        "depth": args.depth,
        "scale": args.scale,
        "lr": args.lr,
        "gamma": args.gamma,
        "tol": tol,
        "rows": rows,
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
    if args.record:
        out["quick"] = args.quick
        out["total_seconds"] = time.perf_counter() - t_start
        argv_ = sys.argv if argv is None else ["bench/completion.py", *argv]
        results.write("completion", out, str(device), argv=argv_)
    if not ok:
        raise SystemExit("a run diverged")
    return out


if __name__ == "__main__":
    main()
