"""lib.completion.network: the compressed network built from the first gradient."""

from __future__ import annotations

import torch

from lib import completion, dln

F64 = torch.float64


def _problem(d=20, r=2, p=0.5, seed=0, dtype=F64):
    return completion.make_problem(
        d, r, p, generator=torch.Generator().manual_seed(seed), dtype=dtype
    )


# ------------------------------------------------------------------------------------------
# the compressed network
# ------------------------------------------------------------------------------------------


def test_compress_builds_the_subspace_of_the_first_gradient():
    P = _problem(d=24, r=2, p=0.5, seed=1)
    W0 = completion.init_original(P, depth=3, scale=1e-2)
    Wc = completion.compress(P, W0, rank_hat=3)
    V11, UL1 = Wc[0].T, Wc[-1]
    eye = torch.eye(6, dtype=F64)
    assert len(Wc) == 5 and all(torch.allclose(W, 1e-2 * eye) for W in Wc[1:-1])
    assert torch.allclose(V11.T @ V11, eye, atol=1e-12)
    assert torch.allclose(UL1, dln.end_to_end(W0) @ V11 / 1e-6, atol=1e-9)
    # V11 spans the top-3 right singular vectors of the first gradient and W_1(0)ᵀ U_g / ε
    U, _, Vh = torch.linalg.svd(completion.first_gradient(P, W0))
    for block in (Vh[:3].T, W0[0].T @ U[:, :3] / 1e-2):
        assert torch.allclose(V11 @ (V11.T @ block), block, atol=1e-10)
