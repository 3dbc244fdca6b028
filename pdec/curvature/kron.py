"""EMA'd Kronecker factors and the KFAC preconditioner (Ã_Ω ⊗ B̃_Ω + Ã_c ⊗ B̃_c)⁻¹ (MATH.md §6).

Convention (see :mod:`.layout`): a layer's gradient Gr = ∂L/∂W̃ is a matrix (h_l, h_{l-1}+1),
vec is column stacking, and (A ⊗ B) vec(X) = vec(B X Aᵀ), A on the input side. Solving
(A₁ ⊗ B₁ + A₂ ⊗ B₂) vec(X) = vec(Gr) is therefore the matrix equation B₁ X A₁ + B₂ X A₂ = Gr.

Inverse of a sum of two Kronecker products (Martens & Grosse 2015, App. I): with P_A such that
P_Aᵀ A₁ P_A = I, P_Aᵀ A₂ P_A = diag(a) (generalised eigenvectors), likewise P_B, diag(b),
substitute X = P_B Y P_Aᵀ and multiply by P_Bᵀ (left) and P_A (right):

    Y + diag(b) Y diag(a) = P_Bᵀ Gr P_A   =>   Y_ij = (P_Bᵀ Gr P_A)_ij / (1 + b_i a_j),
    X = P_B Y P_Aᵀ.

The single-pair case (only the interior term) is the same with a = b = 0: X = B₁⁻¹ Gr A₁⁻¹.

More than two terms: the terms are split into at most two *groups* (default: the interior, and
all conditions), and each group is merged into ONE Kronecker pair with :func:`merge_factors`:

    A = Σ_c w_c A_c,   B = Σ_c B_c,   w_c = tr B_c / Σ_c' tr B_c'.

This is an approximation of Σ_c A_c ⊗ B_c, chosen because (i) it is exact whenever the B_c are
proportional to each other (B_c = β_c B) or the A_c are all equal; (ii) it preserves the trace
Σ_c tr A_c tr B_c of the sum exactly; (iii) with equal N_c and equal tr B_c it is KFAC-expand of
the concatenated condition points (the paper's single "condition" term), rescaled to pdec's
per-term 1/N_τ loss weights. An exact solve with three or more Kronecker products has no closed
form (it would need an iterative solver, e.g. CG preconditioned by this two-pair inverse, at a
multiple of the cost); merging keeps the closed-form O(h_{l-1}³ + h_l³) two-pair inverse. One
group holding every term gives a single Kronecker pair (the cheapest variant).

Damping is applied to each group's merged factors (Ã = Â + λI, B̃ = B̂ + λI), as MATH.md §6
applies it to the interior and condition factors.

Data parallel: the factors are all-reduced before :meth:`KronPreconditioner.update`, so every
rank holds the same factors. Then either every rank inverts every layer ("replicated"), or the
layers are dealt out to the ranks by cost (h_{l-1}³ + h_l³, largest first, to the least loaded
rank) and each rank broadcasts the factored inverses it computed ("spread").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import torch

from ..parallel import LOCAL, Communicator
from ..runtime import GeneratedPINN
from .factors import KronFactors
from .layout import layer_shapes


def congruence(X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised eigendecomposition of a symmetric pair (X SPD, Y symmetric).

    Args:
        X, Y: (k, k).

    Returns:
        (P (k, k), y (k,)) with Pᵀ X P = I and Pᵀ Y P = diag(y).

    Raises:
        ValueError: X is not positive definite (add damping or initialise factors to identity).
    """
    e, V = torch.linalg.eigh(0.5 * (X + X.mT))
    # A factor Σ Z̃ Z̃ᵀ + λI is SPD in exact arithmetic, but with the paper's tiny dampings
    # (λ ~ 1e-12) round-off can push its smallest eigenvalues just below zero. Eigenvalues within
    # the round-off level k·ε·λ_max are floored there; anything more negative is a real error.
    floor = X.shape[-1] * torch.finfo(X.dtype).eps * e.abs().max()
    if not bool(e.max() > 0) or bool(e.min() < -100 * floor):
        raise ValueError(f"Kronecker factor is not positive definite (smallest eigenvalue "
                         f"{e.min().item():.3e}); use damping > 0 or init='identity'")
    e = e.clamp_min(floor)
    W = V * e.rsqrt()  # "i k, k -> i k": Wᵀ X W = I
    C = W.mT @ Y @ W
    y, U = torch.linalg.eigh(0.5 * (C + C.mT))
    return W @ U, y


@dataclass
class KronSumInverse:
    """(A₁ ⊗ B₁ [+ A₂ ⊗ B₂])⁻¹ of one layer, in factored form; apply it with :meth:`apply`.

    Attributes:
        P_A: (i, i) with P_Aᵀ A₁ P_A = I, P_Aᵀ A₂ P_A = diag(a), i = h_{l-1}+1.
        a: (i,), zeros in the single-pair case.
        P_B: (o, o) likewise for B₁, B₂, o = h_l.
        b: (o,).
    """

    P_A: torch.Tensor
    a: torch.Tensor
    P_B: torch.Tensor
    b: torch.Tensor

    @classmethod
    def from_pairs(cls, pairs: Sequence[KronFactors]) -> "KronSumInverse":
        """Factor (Σ_k A_k ⊗ B_k)⁻¹ for one or two SPD pairs (the first pair's factors need to be
        positive definite; if they are not, the second pair's are tried as the reference)."""
        if len(pairs) == 1:
            (p,) = pairs
            P_A, a = congruence(p.A, torch.zeros_like(p.A))
            P_B, b = congruence(p.B, torch.zeros_like(p.B))
            return cls(P_A, a, P_B, b)
        if len(pairs) != 2:
            raise ValueError(f"closed-form inverse needs 1 or 2 Kronecker pairs, got {len(pairs)}; "
                             "merge terms with merge_factors first")
        first, second = pairs
        try:
            P_A, a = congruence(first.A, second.A)
            P_B, b = congruence(first.B, second.B)
        except ValueError:
            P_A, a = congruence(second.A, first.A)
            P_B, b = congruence(second.B, first.B)
        return cls(P_A, a, P_B, b)

    def apply(self, G: torch.Tensor) -> torch.Tensor:
        """X = (Σ_k A_k ⊗ B_k)⁻¹ G, matrix form: G (..., o, i) -> X (..., o, i)."""
        V = self.P_B.mT @ G @ self.P_A
        V = V / (1.0 + self.b[:, None] * self.a[None, :])
        return self.P_B @ V @ self.P_A.mT


def kron_sum_solve(pairs: Sequence[KronFactors], G: torch.Tensor) -> torch.Tensor:
    """(A₁ ⊗ B₁ [+ A₂ ⊗ B₂])⁻¹ vec(G) in matrix form: G (o, i) -> (o, i). One-shot helper."""
    return KronSumInverse.from_pairs(pairs).apply(G)


def merge_factors(factors: Sequence[KronFactors]) -> KronFactors:
    """Merge several terms' pairs into one: A = Σ_c w_c A_c, B = Σ_c B_c, w_c = tr B_c / Σ tr B.

    Exact when the B_c are proportional or the A_c equal; preserves tr(Σ_c A_c ⊗ B_c). If every
    B_c has zero trace (e.g. zero-initialised EMA), the weights are uniform.
    """
    if len(factors) == 1:
        return factors[0]
    traces = torch.stack([f.B.diagonal().sum() for f in factors])
    total = traces.sum()
    w = traces / total if bool(total > 0) else torch.full_like(traces, 1.0 / len(factors))
    A = sum(wc * f.A for wc, f in zip(w, factors))
    B = sum(f.B for f in factors)
    return KronFactors(A, B)


def default_groups(model: GeneratedPINN) -> list[tuple[str, ...]]:
    """[("interior",), (all conditions…)], or just [("interior",)] without conditions."""
    groups = [("interior",)] if "interior" in model.term_names else []
    conditions = tuple(t for t in model.term_names if t != "interior")
    if conditions:
        groups.append(conditions)
    return groups


class KronPreconditioner:
    """Per-term, per-layer EMA'd Kronecker factors and the preconditioner built from them.

    Usage in an optimizer (step counter t)::

        if pre.due(t):
            pre.update(curvature_pass(model, batch).factors)
        direction = [-d for d in pre.apply_inverse(gradient)]   # Δ, MATH.md §6

    Args:
        shapes: per layer (h_l, h_{l-1}+1).
        groups: one or two tuples of term names; each tuple is merged into one Kronecker pair.
        ema: β in Â ← β Â + (1 − β) A (β = 0: no averaging).
        damping: λ added to each group's merged factors.
        init: "identity" or "zero" initial Â, B̂.
        update_period: T; factors are updated (and inverses recomputed, lazily) every T steps.
        dtype, device: of the factors.
        comm, placement: with several ranks, "replicated" (each rank inverts every layer) or
            "spread" (each rank inverts its share of the layers and broadcasts them).
    """

    def __init__(self, shapes: Sequence[tuple[int, int]], groups: Sequence[Sequence[str]],
                 ema: float = 0.95, damping: float = 1e-10,
                 init: Literal["identity", "zero"] = "identity", update_period: int = 1,
                 dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
                 comm: Communicator = LOCAL, placement: Literal["replicated", "spread"] = "replicated"):
        if not 1 <= len(groups) <= 2 or any(not g for g in groups):
            raise ValueError(f"need one or two non-empty groups of terms, got {groups!r}")
        terms = [t for g in groups for t in g]
        if len(set(terms)) != len(terms):
            raise ValueError(f"a term appears in two groups: {groups!r}")
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"ema must lie in [0, 1), got {ema}")
        if damping < 0:
            raise ValueError(f"damping must be >= 0, got {damping}")
        if init not in ("identity", "zero"):
            raise ValueError(f"init must be 'identity' or 'zero', got {init!r}")
        if update_period < 1:
            raise ValueError(f"update_period must be >= 1, got {update_period}")
        if placement not in ("replicated", "spread"):
            raise ValueError(f"placement must be 'replicated' or 'spread', got {placement!r}")
        self.comm, self.placement = comm, placement
        self.shapes = [tuple(s) for s in shapes]
        self.groups = [tuple(g) for g in groups]
        self.ema, self.damping, self.init, self.update_period = ema, damping, init, update_period
        make = (lambda k: torch.eye(k, dtype=dtype, device=device)) if init == "identity" else \
            (lambda k: torch.zeros(k, k, dtype=dtype, device=device))
        self.factors: dict[str, list[KronFactors]] = {
            t: [KronFactors(make(i), make(o)) for o, i in self.shapes] for t in terms}
        self.n_updates = 0
        self._inverses: list[KronSumInverse] | None = None

    @classmethod
    def for_model(cls, model: GeneratedPINN, groups: Sequence[Sequence[str]] | None = None,
                  **kwargs) -> "KronPreconditioner":
        """Preconditioner for a model's layers; ``groups`` defaults to :func:`default_groups`."""
        p = next(model.parameters())
        kwargs.setdefault("dtype", p.dtype)
        kwargs.setdefault("device", p.device)
        return cls(layer_shapes(model), groups or default_groups(model), **kwargs)

    @property
    def terms(self) -> tuple[str, ...]:
        """All terms, group by group."""
        return tuple(self.factors)

    def due(self, step: int) -> bool:
        """Whether the factors should be updated at optimizer step ``step`` (every T steps)."""
        return step % self.update_period == 0

    def update(self, new: Mapping[str, Sequence[KronFactors]]) -> None:
        """EMA step Â ← β Â + (1 − β) A for every term in ``new`` (others keep their state).

        Args:
            new: term -> per-layer factors, e.g. ``curvature_pass(...).factors``.
        """
        for term, layers in new.items():
            if term not in self.factors:
                raise KeyError(f"term {term!r} is in no group; groups: {self.groups}")
            if len(layers) != len(self.shapes):
                raise ValueError(f"term {term!r}: {len(layers)} layers of factors, "
                                 f"expected {len(self.shapes)}")
            for state, f in zip(self.factors[term], layers):
                state.A.mul_(self.ema).add_(f.A, alpha=1.0 - self.ema)
                state.B.mul_(self.ema).add_(f.B, alpha=1.0 - self.ema)
        self.n_updates += 1
        self._inverses = None

    def set_damping(self, damping: float) -> None:
        """Change λ (≥ 0); the inverses are recomputed at their next use."""
        if damping < 0:
            raise ValueError(f"damping must be >= 0, got {damping}")
        if damping != self.damping:
            self.damping = damping
            self._inverses = None

    def damped_pairs(self, layer: int) -> list[KronFactors]:
        """Layer ``layer``'s merged, damped pair per group: [Ã_g, B̃_g] (one or two)."""
        pairs = []
        for group in self.groups:
            merged = merge_factors([self.factors[t][layer] for t in group])
            eye_a = torch.eye(merged.A.shape[0], dtype=merged.A.dtype, device=merged.A.device)
            eye_b = torch.eye(merged.B.shape[0], dtype=merged.B.dtype, device=merged.B.device)
            pairs.append(KronFactors(merged.A + self.damping * eye_a, merged.B + self.damping * eye_b))
        return pairs

    def inverses(self) -> list[KronSumInverse]:
        """Per-layer factored inverses, recomputed only after an :meth:`update`."""
        if self._inverses is None:
            if self.comm.distributed and self.placement == "spread":
                self._inverses = self._spread_inverses()
            else:
                self._inverses = [KronSumInverse.from_pairs(self.damped_pairs(l))
                                  for l in range(len(self.shapes))]
        return self._inverses

    def owners(self) -> list[int]:
        """Rank that inverts each layer under "spread": largest (h_{l-1}³ + h_l³) first, to the
        least loaded rank."""
        load = [0] * self.comm.world_size
        owner = [0] * len(self.shapes)
        for l in sorted(range(len(self.shapes)), key=lambda l: -(self.shapes[l][0] ** 3 + self.shapes[l][1] ** 3)):
            r = min(range(len(load)), key=lambda r: (load[r], r))
            owner[l] = r
            load[r] += self.shapes[l][0] ** 3 + self.shapes[l][1] ** 3
        return owner

    def _spread_inverses(self) -> list[KronSumInverse]:
        """Each rank factors its layers; one broadcast per rank hands them to the others."""
        owner = self.owners()
        first = self.factors[self.terms[0]]
        out: list[KronSumInverse] = []
        error: ValueError | None = None
        for l, (o, i) in enumerate(self.shapes):
            if owner[l] == self.comm.rank and error is None:
                try:
                    out.append(KronSumInverse.from_pairs(self.damped_pairs(l)))
                    continue
                except ValueError as exc:  # raised below on every rank, not only here
                    error = exc
            A = first[l].A  # a slot for the owner's broadcast
            out.append(KronSumInverse(A.new_empty(i, i), A.new_empty(i), A.new_empty(o, o), A.new_empty(o)))
        if self.comm.all_reduce_max([1.0 if error else 0.0])[0]:
            raise error or ValueError("another rank's factor inversion failed (see its message)")
        for r in range(self.comm.world_size):
            mine = [x for l, inv in enumerate(out) if owner[l] == r for x in (inv.P_A, inv.a, inv.P_B, inv.b)]
            self.comm.broadcast_(mine, src=r)
        return out

    def apply_inverse(self, grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """(Σ_g Ã_g ⊗ B̃_g)⁻¹ vec(Gr) per layer (no minus sign): [(h_l, h_{l-1}+1)] -> same shapes."""
        return [inv.apply(G) for inv, G in zip(self.inverses(), grads)]

    def to_dense(self, layer: int) -> torch.Tensor:
        """Σ_g Ã_g ⊗ B̃_g of one layer as a dense (P, P) matrix in the column-stacking vec (tests)."""
        return sum(p.to_dense() for p in self.damped_pairs(layer))
