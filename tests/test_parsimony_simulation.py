"""lib.parsimony.simulation: conditioned inputs, simulate (batched == one run at a time; the
configuration and generator route == the keyword and seed route), and the sweep presets."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lib import parsimony, spectra

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------


def test_conditioned_inputs_condition_energy_and_whitened_case():
    kappas = [1.0, 2.0, 10.0]
    X = parsimony.conditioned_inputs(40, 6, kappas, generator=_gen(0), dtype=F64)
    assert X.shape == (3, 40, 6)
    for x, k in zip(X, kappas):
        S = torch.linalg.svdvals(x)
        assert (S[0] / S[-1]).item() == pytest.approx(k, rel=1e-12)
        assert x.square().sum().item() == pytest.approx(6.0, rel=1e-12)  # ‖X‖_F² = d
    assert torch.allclose(X[0].T @ X[0], torch.eye(6, dtype=F64), atol=1e-13)
    # the runs share Q and R: the Gram matrices commute (same eigenvectors)
    G1, G2 = X[1].T @ X[1], X[2].T @ X[2]
    assert torch.allclose(G1 @ G2, G2 @ G1, atol=1e-12)
    single = parsimony.conditioned_inputs(40, 6, 2.0, generator=_gen(0), dtype=F64)
    assert torch.allclose(single, X[1], atol=1e-14)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(condition=0.5), "condition must be finite numbers >= 1"),
        (dict(condition=[1.0, float("inf")]), "condition must be finite numbers >= 1"),
        (dict(condition=2.0, d=1), "d must be an integer >= 2"),
    ],
)
def test_conditioned_inputs_errors(kwargs, match):
    args = dict(n_samples=10, d=4) | kwargs
    with pytest.raises(ValueError, match=match):
        parsimony.conditioned_inputs(**args)


# ------------------------------------------------------------------------------------------
# simulate
# ------------------------------------------------------------------------------------------


def test_simulate_batched_equals_single_runs():
    kw = dict(depth=3, width=8, rank=2, n_samples=12, steps=100, seed=5, record_every=50)
    scales, lrs, mus, kappas = [0.05, 0.3], [4.0, 1.0], [0.0, 0.75], [1.0, 2.0]
    batched = parsimony.simulate(scales, lr=lrs, momentum=mus, condition=kappas, **kw)
    assert batched.X.shape == (2, 12, 8) and batched.history.loss.shape == (3, 2)
    for b in range(2):
        one = parsimony.simulate(scales[b], lr=lrs[b], momentum=mus[b], condition=kappas[b], **kw)
        assert torch.allclose(one.X, batched.X[b], atol=1e-14)
        assert torch.equal(one.Y, batched.Y)
        for Ws_b, Ws_1 in zip(batched.history.weights, one.history.weights):
            for W_b, W_1 in zip(Ws_b, Ws_1):
                assert torch.allclose(W_b[b], W_1, atol=1e-12)
    # the init is ε times the same orthogonal matrices in every run
    W0 = [Ws[0] for Ws in batched.history.weights[:1]][0]
    assert torch.allclose(W0[0] / scales[0], W0[1] / scales[1], atol=1e-14)


def test_simulate_setting_and_errors():
    run = parsimony.simulate(0.2, width=6, rank=1, n_samples=9, steps=10)
    I6 = torch.eye(6, dtype=F64)
    assert torch.allclose(run.X.T @ run.X, I6, atol=1e-13)  # whitened by default
    assert int(spectra.numerical_rank(run.Y, rtol=1e-10)) == 1
    W0 = run.history.weights[0][0]
    assert torch.allclose(W0.T @ W0, 0.04 * I6, atol=1e-14)  # ε-orthogonal
    with pytest.raises(ValueError, match="same length"):
        parsimony.simulate([0.1, 0.2], lr=[1.0, 2.0, 3.0], width=6, rank=1, n_samples=6)


def test_simulate_config_and_generator_give_the_same_run():
    """RunConfig + generator is the same computation as the keywords + seed (bit for bit)."""
    kw = dict(depth=2, width=6, rank=1, n_samples=9, steps=30, record_every=10)
    old = parsimony.simulate([0.1, 0.3], lr=[2.0, 1.0], momentum=0.5, seed=4, **kw)
    cfg = parsimony.RunConfig(scale=(0.1, 0.3), lr=(2.0, 1.0), momentum=0.5, **kw)
    new = parsimony.simulate(config=cfg, generator=_gen(4))
    for a, b in zip((old.X, old.Y, old.history.loss), (new.X, new.Y, new.history.loss)):
        assert torch.equal(a, b)
    for Ws_a, Ws_b in zip(old.history.weights, new.history.weights):
        assert all(torch.equal(a, b) for a, b in zip(Ws_a, Ws_b))
    # arguments override the configuration; a sweep is dataclasses.replace
    over = parsimony.simulate(0.2, config=cfg, lr=2.0, momentum=0.0, seed=4)
    ref = parsimony.simulate(0.2, lr=2.0, seed=4, **kw)
    assert torch.equal(over.history.loss, ref.history.loss)
    deeper = parsimony.simulate(config=dataclasses.replace(cfg, depth=3), seed=4)
    assert len(deeper.history.weights[0]) == 3 and cfg.depth == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.depth = 4
    with pytest.raises(ValueError, match="either seed or generator"):
        parsimony.simulate(config=cfg, seed=1, generator=_gen(1))


def test_run_config_defaults_are_the_former_signature():
    """simulate() without arguments is the former default call: seed 0 and these values."""
    assert parsimony.RunConfig() == parsimony.RunConfig(
        scale=1e-2,
        depth=3,
        width=30,
        rank=3,
        n_samples=60,
        lr=5.0,
        steps=3000,
        weight_decay=0.0,
        momentum=0.0,
        condition=1.0,
        record_every=10,
        dtype=F64,
        device=None,
    )
    small = dict(width=6, rank=1, n_samples=6, steps=5)
    a = parsimony.simulate(**small)
    b = parsimony.simulate(**small, generator=_gen(0))
    assert torch.equal(a.history.loss, b.history.loss)


def test_sweep_presets():
    assert set(parsimony.SWEEPS) == {"book", "paper"}
    book, paper = parsimony.SWEEPS["book"], parsimony.SWEEPS["paper"]
    assert min(paper.scales) == pytest.approx(1e-4) and max(paper.scales) == pytest.approx(1.0)
    assert len(paper.scales) > len(book.scales) and paper.steps > book.steps
    # steps scale with 1/ε_min: the paper sweep gives its smallest ε at least as long
    assert paper.steps * min(paper.scales) >= 0.5 * book.steps * min(book.scales)
