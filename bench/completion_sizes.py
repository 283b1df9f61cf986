"""Benchmark: original vs compressed completion network against d — the appendix's speed-up figure.

For each d of ``--sizes`` the same problem family (rank r, a fraction p observed, L layers,
ε-orthogonal start, η a multiple of ``completion.default_lr``) is solved by

* the *original* network (L dense d × d layers): its time per step from a few fixed steps at every
  d (``--orig-steps``), and its time to the tolerance only up to ``--orig-max-d`` (on a CPU the
  dense network at large d takes minutes to converge; what was skipped, and why, is recorded);
* the *compressed* network (width 2r̂, loss and gradient at the observed entries only, padded
  layout, the default step mode of the device): trained to the tolerance, its time per step being
  seconds / steps of that run.

Both sides run in one process, one d after the other, so their ratio is measured under the same
load; the load average before each d is recorded. Writes the record
``lib/results/records/completion_sizes-<machine>.json`` (:mod:`lib.results`), which the appendix
``book/05_making_it_fast.ipynb`` plots.

    python bench/completion_sizes.py                          # ~5 minutes on a 2-core CPU
    python bench/completion_sizes.py --device cuda --sizes 1000,2000,5000,10000,20000 --orig-max-d 5000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/completion.py

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from lib import completion, results  # noqa: E402
from lib.runtime import resolve_device  # noqa: E402


def _summary(res: completion.FitResult, to_tolerance: bool) -> dict:
    return {
        "steps": res.steps,
        "seconds": res.seconds,
        "ms_per_step": 1e3 * res.seconds / max(res.steps, 1),
        "converged": res.converged,
        "seconds_to_tol": res.seconds if (to_tolerance and res.converged) else None,
        "train_loss": res.train_loss[-1],
        "test_loss": res.test_loss[-1],
        "params": res.n_params,
        "step_mode": res.step_mode,
        "evaluation": res.evaluation,
        "setup_seconds": res.setup_seconds,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--sizes", default="100,200,400,800,1600", help="values of d, comma-separated")
    p.add_argument("--rank", type=int, default=5, help="r (default 5)")
    p.add_argument("--fraction", type=float, default=0.3, help="observed fraction p (default 0.3)")
    p.add_argument("--depth", type=int, default=3, help="L (default 3)")
    p.add_argument("--scale", type=float, default=3e-3, help="ε (default 3e-3, the appendix's)")
    p.add_argument("--lr-scale", type=float, default=1.8, help="η / default_lr (default 1.8)")
    p.add_argument("--gamma", type=float, default=0.01, help="γ (default 0.01)")
    p.add_argument("--tol", type=float, default=1e-8, help="train-loss tolerance (default 1e-8)")
    p.add_argument("--max-steps", type=int, default=20_000, help="cap on steps (default 20000)")
    p.add_argument("--orig-steps", type=int, default=10, help="fixed steps timing the original")
    p.add_argument(
        "--orig-max-d", type=int, default=200, help="largest d at which the original is trained "
        "to the tolerance (default 200 on any device: raise it on a GPU)",
    )  # fmt: skip
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per run (default 60)")
    p.add_argument("--budget", type=float, default=420.0, help="skip the sizes left after this")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument(
        "--no-record", dest="record", action="store_false",
        help="do not write lib/results/records/completion_sizes-<machine>.json",
    )  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype)
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    t_start = time.perf_counter()
    common = dict(depth=args.depth, scale=args.scale, record_every=50)
    print(
        f"completion against d: r={args.rank}, p={args.fraction:g}, L={args.depth}, "
        f"ε={args.scale:g}, η={args.lr_scale:g}·default_lr, tol={args.tol:g}, {args.dtype}, "
        f"device={device}, {torch.get_num_threads()} threads"
    )
    header = f"{'d':>7} {'network':<11}{'steps':>7}{'ms/step':>10}{'s to tol':>10}  note"
    print(header + "\n" + "-" * len(header))
    rows = []
    for d in sizes:
        row = {"d": d, "load_average": [round(x, 2) for x in os.getloadavg()]}
        if time.perf_counter() - t_start > args.budget:
            row["skipped"] = f"time budget of {args.budget:g} s spent"
            rows.append(row)
            print(f"{d:>7} skipped: {row['skipped']}")
            continue
        gen = torch.Generator(device=device).manual_seed(0)
        problem = completion.make_problem(
            d, args.rank, args.fraction, generator=gen, dtype=dtype, device=device
        )
        lr = args.lr_scale * completion.default_lr(problem, args.depth)
        row["n_observed"], row["lr"] = problem.n_observed, lr
        fit = dict(common, lr=lr, time_limit=args.time_limit)
        comp = completion.fit(
            problem, "compressed", gamma=args.gamma, max_steps=args.max_steps, tol=args.tol,
            evaluation="observed", layout="padded", **fit,
        )  # fmt: skip
        row["compressed"] = _summary(comp, True)
        if d <= args.orig_max_d:
            orig = completion.fit(
                problem, "original", max_steps=args.max_steps, tol=args.tol, **fit
            )
            row["original"] = _summary(orig, True)
        else:
            orig = completion.fit(
                problem, "original", max_steps=args.orig_steps, tol=0.0, **dict(fit, record_every=args.orig_steps)
            )  # fmt: skip
            row["original"] = _summary(orig, False)
            row["original"]["skipped_to_tol"] = (
                f"d > --orig-max-d={args.orig_max_d}: time per step from {args.orig_steps} "
                "fixed steps only (training to the tolerance would take too long here)"
            )
        for name in ("original", "compressed"):
            s = row[name]
            note = "" if s["converged"] or s.get("skipped_to_tol") else "time limit / max steps"
            if s.get("skipped_to_tol"):
                note = f"{args.orig_steps} fixed steps"
            tol_s = f"{s['seconds_to_tol']:.3f}" if s["seconds_to_tol"] is not None else "—"
            print(f"{d:>7} {name:<11}{s['steps']:>7}{s['ms_per_step']:>10.3f}{tol_s:>10}  {note}")
        row["step_ratio"] = row["compressed"]["ms_per_step"] / row["original"]["ms_per_step"]
        rows.append(row)
        del problem
    total = time.perf_counter() - t_start
    print(f"total wall time {total:.0f} s")
    settings = {k: v for k, v in vars(args).items() if k not in ("record", "device")}
    out = {"device": str(device), "settings": settings, "rows": rows, "total_seconds": total}
    if args.record:
        argv_ = sys.argv if argv is None else ["bench/completion_sizes.py", *argv]
        results.write("completion_sizes", out, str(device), argv=argv_)
    return out


if __name__ == "__main__":
    main()
