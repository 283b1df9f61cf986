"""Run by test_completion_engine.py in a subprocess with TRITON_INTERPRET=1 (Triton's CPU emulator):
the fused Triton step against the PyTorch step, printed as JSON."""

from __future__ import annotations

import json
import os

assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"

import torch  # noqa: E402

from lib import completion  # noqa: E402

F64 = torch.float64
out = {"cases": []}
cases = [  # d, r, p, depth, method, gamma, lr: compressed (3 and 1 inner factors), narrow (none)
    (24, 2, 0.4, 3, "compressed", 0.01, 30.0),
    (26, 3, 0.5, 1, "compressed", 0.0, 50.0),
    (30, 2, 0.3, 2, "narrow", 0.0, 50.0),
]
for d, r, p, depth, method, gamma, lr in cases:
    P = completion.make_problem(d, r, p, generator=torch.Generator().manual_seed(1), dtype=F64)
    kw = dict(depth=depth, scale=0.2, max_steps=40, record_every=20, gamma=gamma, lr=lr)
    ref = completion.fit(P, method, step_mode="eager", evaluation="observed", layout="padded", **kw)
    fused = completion.fit(P, method, step_mode="fused", **kw)
    e2e = ref.end_to_end
    out["cases"].append(
        {
            "case": [d, depth, method],
            "mode": fused.step_mode,
            "layout": fused.layout,
            "steps": [ref.steps, fused.steps],
            "rel": float((fused.end_to_end - e2e).norm() / e2e.norm()),
            "weights_rel": max(
                float((a - b).norm() / a.norm()) for a, b in zip(ref.weights, fused.weights)
            ),
            "moved": min(  # every factor trained (but γ = 0's outer ones)
                float((a - a0).norm() / a0.norm())
                for a, a0 in zip(
                    ref.weights[1:-1] or ref.weights, ref.weights0[1:-1] or ref.weights0
                )
            ),
            "loss": [ref.train_loss, fused.train_loss],
        }
    )
# the stopping gate: a tolerance crossed at a known step
P = completion.make_problem(20, 2, 0.5, generator=torch.Generator().manual_seed(0), dtype=F64)
kw = dict(scale=0.3, lr=30.0, record_every=1)
trace = completion.fit(P, "compressed", max_steps=30, **kw).train_loss
t = next(i for i in range(10, 30) if trace[i] < min(trace[:i]))  # a new low at step t
tol = 0.5 * (min(trace[:t]) + trace[t])
kw = dict(kw, max_steps=30, tol=tol, record_every=7)
ref = completion.fit(P, "compressed", step_mode="eager", evaluation="observed", **kw)
fused = completion.fit(P, "compressed", step_mode="fused", **kw)
out["gate"] = {"expected": t, "steps": [ref.steps, fused.steps], "converged": fused.converged}
print(json.dumps(out))
