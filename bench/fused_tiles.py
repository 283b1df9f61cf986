"""Tile sizes of the fused Triton step (``lib.completion._triton``): time per step, side by side.

Times one gradient step of the compressed network (k = 10, three inner factors) on the paper's
problem (r = 5, 20 % observed) at d = 1000 and d = 10,000, for each number of rows per program
and tile size (``BR · BM · KP`` elements), each replayed as one CUDA graph of many steps. The
defaults of ``FusedStep`` come from this table; the measured table, with its machine and versions,
is the record ``lib/results/records/fused_tiles-<gpu>.json`` that this script writes
(``lib.results.load("fused_tiles", machine="gpu")``).

    python bench/fused_tiles.py            # needs a CUDA GPU and Triton (< 2 minutes)
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from lib import completion, results  # noqa: E402
from lib.completion._steps import _padded  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cuda")
    p.add_argument("--sizes", default="1000,10000", help="values of d (default 1000,10000)")
    p.add_argument("--rows", default="2,4,8,16", help="rows per program to try")
    p.add_argument("--tiles", default="4096,8192", help="tile sizes to try")
    p.add_argument(
        "--no-record", dest="record", action="store_false",
        help="do not write the record lib/results/records/fused_tiles-<gpu>.json",
    )  # fmt: skip
    args = p.parse_args(argv)
    if not torch.device(args.device).type == "cuda" or not torch.cuda.is_available():
        raise SystemExit("bench/fused_tiles.py needs a CUDA GPU (the fused step is Triton)")
    from lib.completion import _triton as fused  # Triton: imported only once CUDA is known

    dev = torch.device(args.device)
    print(f"{torch.cuda.get_device_name(dev)}, torch {torch.__version__}")
    rows = []
    for d in (int(x) for x in args.sizes.split(",")):
        P = completion.make_problem(
            d, 5, 0.2, generator=torch.Generator(device=dev).manual_seed(0), device=dev
        )
        pad = _padded(P)
        k = 10
        g = torch.Generator(device=dev).manual_seed(1)
        U = 1e-2 * torch.randn(d, k, device=dev, generator=g)
        V1 = torch.zeros(d + 1, k, device=dev)
        V1[:d] = 1e-2 * torch.randn(d, k, device=dev, generator=g)
        A1 = torch.zeros(d + 1, k, device=dev)
        inner = 1e-3 * torch.eye(k, device=dev).repeat(3, 1, 1)
        flags = torch.tensor([0.0, 1.0], device=dev)
        n = 200 if d <= 2000 else 50
        for br, tile in itertools.product(
            (int(x) for x in args.rows.split(",")), (int(x) for x in args.tiles.split(","))
        ):
            # zero learning rates: the state stays put, every replay does the same work
            step = fused.FusedStep(
                U, inner, A1, V1, pad, flags, 0.0, 0.0, 0.0, rows_per_program=br, tile=tile
            )
            for _ in range(3):
                step()
            torch.cuda.synchronize(dev)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                for _ in range(n):
                    step()
            graph.replay()
            torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            graph.replay()
            graph.replay()
            torch.cuda.synchronize(dev)
            us = 1e6 * (time.perf_counter() - t0) / (2 * n)
            print(
                f"d={d:>6}  rows/program={br:>3}  tile={tile:>5}  BM={step.bm:>4}  {us:8.1f} µs/step"
            )
            rows.append({"d": d, "rows_per_program": br, "tile": tile, "bm": step.bm, "us_per_step": us})  # fmt: skip
    out = {"device": str(dev), "device_name": torch.cuda.get_device_name(dev), "rows": rows}
    if args.record:
        argv_ = sys.argv if argv is None else ["bench/fused_tiles.py", *argv]
        results.write("fused_tiles", out, str(dev), argv=argv_)
    return out


if __name__ == "__main__":
    main()
