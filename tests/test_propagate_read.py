"""The loss's forward pass (``propagate_read``: constant seed columns mapped once, only the read
columns activated at the last hidden layer) against the full stacks of ``propagate``, and the
runtime helpers the generated code calls (``horner_step``, ``tanh``)."""

from __future__ import annotations

import pytest
import torch

import pdec
from pdec.runtime import horner_step, tanh
from conftest import ROOT, SHIPPED_SPECS

SPECS = sorted(SHIPPED_SPECS) + sorted((ROOT / "tests" / "specs").glob("*.py"))


@pytest.mark.parametrize("hidden", [(6,), (5, 4)], ids=["one-hidden", "two-hidden"])
@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_read_columns_and_gradients_equal_the_full_stacks(path, hidden):
    model = pdec.compile(pdec.load_spec(path), hidden=hidden, write=False, seed=0).model
    gen = torch.Generator().manual_seed(3)
    params = list(model.parameters())
    for term in model.term_names:
        X = torch.rand(9, model.n_in + model.observed.get(term, 0), generator=gen, dtype=torch.float64)
        full = model.propagate(term, X, keep=False).outputs[-1]           # (N, S, m)
        got = model.propagate_read(term, X)
        read = list(model.residual_columns[term])
        assert got.shape == full.shape
        torch.testing.assert_close(got[:, read], full[:, read], rtol=1e-12, atol=1e-12)
        unread = [c for c in range(full.shape[1]) if c not in read]
        assert not got[:, unread].any()
        r_read = model.residual(term, X)
        r_full = model.residual(term, X, model.propagate(term, X))
        torch.testing.assert_close(r_read, r_full, rtol=1e-12, atol=1e-12)
        w = torch.rand(r_full.shape, generator=gen, dtype=torch.float64)
        g_read = torch.autograd.grad((w * r_read).sum(), params, allow_unused=True, materialize_grads=True)
        g_full = torch.autograd.grad((w * r_full).sum(), params, allow_unused=True, materialize_grads=True)
        for a, b in zip(g_read, g_full):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_point_dependent_seeds_are_mapped_per_point():
    """variable_coeff's first-order coefficients b(x) make its seed columns differ per point."""
    model = pdec.compile(pdec.load_spec(ROOT / "tests" / "specs" / "variable_coeff.py"), hidden=(6,),
                         write=False, seed=0).model
    assert model.point_seeds == ("interior",)
    X = torch.rand(5, model.n_in, dtype=torch.float64)
    seed = model.seed_interior(X)[:, 1:]
    assert not torch.equal(seed, seed[:1].expand_as(seed))


def test_horner_step_writes_in_place_only_without_autograd():
    acc, s, c = torch.rand(4, 3), torch.rand(4, 3), torch.rand(1, 3)
    want = acc * s + c
    with torch.no_grad():
        a = acc.clone()
        out = horner_step(a, s, c)
        assert out.data_ptr() == a.data_ptr()
        torch.testing.assert_close(out, want)
        b = acc.clone()
        assert horner_step(b, s).data_ptr() == b.data_ptr()
        torch.testing.assert_close(b, acc * s)
    leaf = s.clone().requires_grad_()
    a = acc.clone()
    out = horner_step(a, leaf, c)
    assert out.data_ptr() != a.data_ptr()
    torch.testing.assert_close(out.detach(), want)
    (g,) = torch.autograd.grad(out.sum(), leaf)
    torch.testing.assert_close(g, acc)


def test_tanh_without_autograd_is_within_its_bound_of_torch_tanh():
    z = torch.cat([torch.linspace(-40, 40, 20001, dtype=torch.float64),
                   torch.tensor([0.0, -0.0, 1e-300, -1e-300, 1e-8, 710.0, -710.0, 1e308, -1e308])])
    with torch.no_grad():
        got = tanh(z)
    assert float((got - torch.tanh(z)).abs().max()) <= 4.5e-16
    special = torch.tensor([float("inf"), float("-inf"), float("nan")], dtype=torch.float64)
    with torch.no_grad():
        out = tanh(special)
    assert out[0] == 1 and out[1] == -1 and torch.isnan(out[2])


def test_tanh_with_autograd_or_float32_is_torch_tanh():
    z = torch.linspace(-3, 3, 101, dtype=torch.float64, requires_grad=True)
    y = tanh(z)
    assert torch.equal(y, torch.tanh(z))
    (g,) = torch.autograd.grad(y.sum(), z)
    torch.testing.assert_close(g, 1 - torch.tanh(z.detach()) ** 2, rtol=1e-14, atol=1e-15)
    z32 = torch.linspace(-3, 3, 101)
    with torch.no_grad():
        assert torch.equal(tanh(z32), torch.tanh(z32))
