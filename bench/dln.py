"""Benchmark: a 256-run DLN sweep, batched (``lib.dln.train_batched``) vs one run at a time (autograd).

The lecture's setting — L = 3, d = 30, r = 3, X = I, ε-orthogonal init — with 256 runs that differ
in seed, ε (log-spaced) and target. Both sides do the same full-batch GD ("mean" loss, shared η);
the batched side runs all 256 as one computation (closed-form gradients, ``torch.bmm`` /
``torch.baddbmm``), the baseline loops over runs with ``torch.autograd`` and a hand-written update.
Prints time per step (one step of all runs), throughput (run-steps per second) and their ratio side
by side, and checks that both produce the same weights.

    python bench/dln.py --quick              # < 1 minute on a 2-core CPU
    python bench/dln.py --device cuda        # paper-size timing on a GPU
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

# On a small shared CPU, OpenMP's default spin-waiting makes every multi-threaded op cost
# milliseconds when another process holds a core; passive waiting avoids it (set before torch).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from lib import dln, results  # noqa: E402
from lib.runtime import resolve_device  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def make_sweep(
    n_runs: int, d: int, r: int, L: int, dtype: torch.dtype, device: torch.device, seed: int = 0
):
    """ε log-spaced in [1e-3, 1e-1], one rank-r target per run, X = I shared."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-3, -1, n_runs, dtype=torch.float64).tolist()
    Ws = dln.init_weights_batched(
        n_runs, [d] * (L + 1), scales, generator=g, dtype=dtype, device=device
    )
    Y = torch.stack(
        [
            dln.low_rank_targets(d, d, r, generator=g, dtype=dtype, device=device)
            for _ in range(n_runs)
        ]
    )
    X = torch.eye(d, dtype=dtype, device=device)
    return Ws, X, Y


def time_batched(
    Ws, X, Y, lr: float, steps: int, device: torch.device
) -> tuple[float, list[torch.Tensor]]:
    dln.train_batched(Ws, X, Y, lr, 3, record_every=3)  # warm-up (kernels, allocator)
    _sync(device)
    t0 = time.perf_counter()
    h = dln.train_batched(Ws, X, Y, lr, steps, record_every=steps)
    _sync(device)
    return time.perf_counter() - t0, h.weights[-1]


def autograd_run(Ws, X, Y, lr: float, steps: int) -> list[torch.Tensor]:
    """One run, the naive way: autograd for the gradient, the GD update by hand."""
    Ws = [W.detach().clone().requires_grad_(True) for W in Ws]
    for _ in range(steps):
        H = X
        for W in Ws:
            H = H @ W.T
        loss = 0.5 * ((H - Y) ** 2).mean()
        grads = torch.autograd.grad(loss, Ws)
        with torch.no_grad():
            for W, gW in zip(Ws, grads):
                W.sub_(lr * gW)
    return [W.detach() for W in Ws]


def time_loop(
    Ws, X, Y, lr: float, steps: int, device: torch.device
) -> tuple[float, list[torch.Tensor]]:
    n_runs = Ws[0].shape[0]
    autograd_run([W[0] for W in Ws], X, Y[0], lr, 3)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    finals = [autograd_run([W[b] for W in Ws], X, Y[b], lr, steps) for b in range(n_runs)]
    _sync(device)
    return time.perf_counter() - t0, [torch.stack([f[i] for f in finals]) for i in range(len(Ws))]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: auto)"
    )
    p.add_argument("--quick", action="store_true", help="few steps: under a minute on a 2-core CPU")
    p.add_argument(
        "--runs", type=int, default=256, help="number of independent runs B (default 256)"
    )
    p.add_argument(
        "--steps", type=int, default=None, help="batched GD steps (default 2000, quick 200)"
    )
    p.add_argument(
        "--loop-steps",
        type=int,
        default=None,
        help="steps per run for the loop (default 100, quick 10)",
    )
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--depth", type=int, default=3, help="L (default 3)")
    p.add_argument("--width", type=int, default=30, help="d (default 30)")
    p.add_argument("--rank", type=int, default=3, help="r (default 3)")
    p.add_argument("--lr", type=float, default=2.0, help='η for the "mean" loss (default 2.0)')
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: torch's)"
    )
    p.add_argument(
        "--json", type=Path, default=None, help="also write the numbers to this JSON file"
    )
    p.add_argument(
        "--no-record", dest="record", action="store_false",
        help="do not write the record lib/results/records/dln-<machine>.json",
    )  # fmt: skip
    args = p.parse_args(argv)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype)
    steps = args.steps or (200 if args.quick else 2000)
    loop_steps = args.loop_steps or (10 if args.quick else 100)
    B, L, d, r = args.runs, args.depth, args.width, args.rank

    Ws, X, Y = make_sweep(B, d, r, L, dtype, device)
    t_batched, _ = time_batched(Ws, X, Y, args.lr, steps, device)
    t_loop, W_loop = time_loop(Ws, X, Y, args.lr, loop_steps, device)
    # same runs, same number of steps: the two must agree
    W_check = dln.train_batched(Ws, X, Y, args.lr, loop_steps, record_every=loop_steps).weights[-1]
    rel_err = max((float((a - b).abs().max() / b.abs().max())) for a, b in zip(W_check, W_loop))

    per_step_b = t_batched / steps  # one step of all B runs
    per_step_l = t_loop / loop_steps
    thr_b = B * steps / t_batched  # run-steps per second
    thr_l = B * loop_steps / t_loop
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    res = {
        "device": str(device),
        "device_name": name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "dtype": args.dtype,
        "runs": B,
        "L": L,
        "d": d,
        "r": r,
        "batched": {
            "steps": steps,
            "seconds": t_batched,
            "ms_per_step": 1e3 * per_step_b,
            "run_steps_per_s": thr_b,
        },
        "one_at_a_time_autograd": {
            "steps": loop_steps,
            "seconds": t_loop,
            "ms_per_step": 1e3 * per_step_l,
            "run_steps_per_s": thr_l,
        },
        "throughput_ratio": thr_b / thr_l,
        "max_rel_weight_diff": rel_err,
    }
    print(
        f"DLN sweep: {B} runs, L={L}, d={d}, r={r}, X=I, {args.dtype}, "
        f"device={device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    )
    print(f"{'method':<28}{'steps':>7}{'time/step (all runs)':>24}{'run-steps/s':>16}")
    print(f"{'batched (bmm, no autograd)':<28}{steps:>7}{1e3 * per_step_b:>21.3f} ms{thr_b:>16.4g}")
    print(
        f"{'one at a time (autograd)':<28}{loop_steps:>7}{1e3 * per_step_l:>21.3f} ms{thr_l:>16.4g}"
    )
    print(f"throughput ratio (batched / one at a time): {thr_b / thr_l:.1f}x")
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    status = "ok" if rel_err <= tol and math.isfinite(rel_err) else "MISMATCH"
    print(
        f"same weights after {loop_steps} steps: max relative difference {rel_err:.2e} ({status})"
    )
    res["status"] = status
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
    if args.record:
        results.write(
            "dln", res, str(device), argv=sys.argv if argv is None else ["bench/dln.py", *argv]
        )
    if status != "ok":
        raise SystemExit(1)
    return res


if __name__ == "__main__":
    main()
