"""KFAC and KFAC* for PINN losses (MATH.md §5–§6; Dangel, Müller, Zeinhofer 2024).

Both keep per-term, per-layer Kronecker factors A, B (KFAC-expand by default) with an EMA, and
precondition the gradient with the inverse of the damped sum of the interior pair and the merged
condition pair (:class:`pdec.curvature.KronPreconditioner`):

    Δ = −(Ã_Ω ⊗ B̃_Ω + Ã_c ⊗ B̃_c)⁻¹ vec(∂L/∂W̃)

KFAC: momentum δ̂_t = μ δ̂_{t−1} + Δ_t over the unscaled directions (the paper's code), step α* δ̂
with α* from the logarithmic grid line search; no step when no trial lowers the loss.
KFAC*: (α, μ) minimise the quadratic model under the exact damped Gramian, solved in closed form
from the 2 × 2 system of Gramian–vector products (two Jacobian–vector products per term). The
first step has no previous one: α from the 1-d model (default) or a fixed ``first_lr``. With
``trust`` (default) a step that raised the loss is undone and later steps are scaled down (a
trust region on the model's step); ``trust=False`` takes every step, as the paper's code does.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import torch

from ..curvature import (KronPreconditioner, LearnedBlock, add_to_parameters, curvature_pass,
                         linearized_quadratic_forms)
from ..loss import Batch
from ..runtime import GeneratedPINN
from .base import Hyper, PINNOptimizer, StepInfo
from .line_search import grid_line_search, learned_line_search

# Defaults: the paper's best KFAC run on 2d Poisson, D = 257, with the appendix's 7 digits (A.2).
# Its published run used more digits; any rounding changes the path within a few steps (the runs
# are chaotic; tests/test_paper_runs.py uses the published values).
_SHARED = {
    "damping": Hyper(1.544099e-12, "λ added to every Kronecker factor (with adaptive_damping, its start)", lo=0),
    "ema": Hyper(0.4496490, "β of the factor moving average Â ← β Â + (1 − β) A", lo=0, hi=0.999999),
    "init": Hyper("identity", "initial factors", choices=("identity", "zero")),
    "update_period": Hyper(1, "T: refresh factors and inverses every T steps (with adaptive_damping, the "
                           "inverses also after each change of λ)", lo=1),
    "approximation": Hyper("expand", "KFAC-expand (paper) or KFAC-reduce", choices=("expand", "reduce")),
    "merge_conditions": Hyper(True, "one Kronecker pair for all conditions (else interior only)"),
    # spread measured faster in 3 of 3 runs of benchmarks/scaling.py (2 ranks, 5d Poisson,
    # D = 116 865: 4.78 vs 5.04, 5.20 vs 5.49, 4.49 vs 5.31 s per step); no effect in one process
    "inverse_placement": Hyper("spread", "data parallel: each rank inverts some layers' factors and "
                               "broadcasts them (spread), or every rank inverts every layer (replicated)",
                               choices=("spread", "replicated")),
}


def solve_symmetric_2x2(m: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Least-squares solution c of m c = r for a symmetric 2 × 2 m (the KFAC* model), in closed form.

    The same bits in every process: torch.linalg.lstsq (LAPACK gelsy through MKL) returned
    solutions that differed in the last bits between two processes on identical inputs, and
    KFAC*'s runs then parted. Like gelsy with its default rcond (2 ε), m is taken as rank one when
    its eigenvalues differ by more than 1/(2 ε) in magnitude, and the minimum-norm solution along
    the leading eigenvector is returned; a zero m gives c = 0.

    Args:
        m: (2, 2), symmetric (the mean of its off-diagonal entries is used).
        r: (2,).

    Returns:
        c: (2,), same dtype and device as r.
    """
    a, d = float(m[0, 0]), float(m[1, 1])
    b = 0.5 * (float(m[0, 1]) + float(m[1, 0]))
    r0, r1 = float(r[0]), float(r[1])
    half_gap = math.hypot(0.5 * (a - d), b)
    big, small = 0.5 * (a + d) + half_gap, 0.5 * (a + d) - half_gap   # the eigenvalues
    if abs(small) > abs(big):
        big, small = small, big
    if big == 0.0:
        return r.new_zeros(2)
    if abs(small) > 2 * sys.float_info.epsilon * abs(big):
        det = a * d - b * b
        return r.new_tensor([(d * r0 - b * r1) / det, (a * r1 - b * r0) / det])
    # rank one: m ≈ big · v vᵀ with v the unit eigenvector of ``big``
    v = (b, big - a) if abs(big - a) >= abs(big - d) else (big - d, b)
    norm = math.hypot(*v)
    v = (1.0, 0.0) if norm == 0.0 else (v[0] / norm, v[1] / norm)
    t = (v[0] * r0 + v[1] * r1) / big
    return r.new_tensor([t * v[0], t * v[1]])


def _dot(a, b) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b))


class KFAC(PINNOptimizer):
    """KFAC with momentum and a logarithmic grid line search.

    With ``adaptive_damping`` λ follows the line search: a step whose α* is at most 2⁻⁸ (or no
    step: the direction overshoots, the factors are too weakly damped) multiplies λ by 3/2, a step
    with α* ≥ ¼ multiplies it by 2/3, and λ stays in [1e-15, 1e6]. Off by default (the paper's
    fixed λ); it is for problems where the paper's tiny λ stalls. The thresholds were chosen on 2d
    Poisson seed 0, 1+1d heat, Allen–Cahn and the biharmonic spec (README, "When training stalls",
    has the measurements).
    Hessian-free's ``adaptive_damping`` is Levenberg–Marquardt's rule on its quadratic model; KFAC's
    model is the Kronecker one, and its step length is the line search's, so the line search's α*
    is the signal here.

    Learned parameters κ (a spec's ``Learned``) get one more block of the block-diagonal
    curvature: their exact Gramian block, summed over every term (also with merge_conditions off,
    which would otherwise lose a κ only a condition reads) and averaged, initialised and damped as
    the factors are (:mod:`pdec.curvature.learned`). Each step first
    moves κ along −(Ĝ_κ + λI)⁻¹ ∇_κ L with a line search of its own on the network's output as it
    stands (residual functions only), then the layers as above at the new κ. One line search over
    both blocks was tried first: its step, sized for the layers, left κ where it started (heat1d_inverse,
    κ 1 -> 0.86 in 500 steps, against 0.2497 with its own step; README has the runs).
    """

    name = "kfac"
    TRAINS_LEARNED = True
    #: in place of the paper's ema and init when the interior residual is the loss's only term (an
    #: ansatz holds every condition): KFAC*'s average and zero factors. With the paper's values the
    #: hidden layer's side of the one Kronecker pair loses rank within ~20 steps and KFAC stalls
    #: (heat1d_hard, poisson2d_hard, allen_cahn_hard, 2-64-1, 1 000 steps: median relative L2
    #: 1.2e-2 to 9.9e-2); with these 1.9e-6 to 2.6e-5, after a slower start. They lost on some
    #: 16- and 32-wide nets, and with a condition term they did worse than the paper's (README,
    #: "Hard constraints"; docs/performance.md traces a stall).
    ONE_TERM_DEFAULTS = {"ema": 0.9263314, "init": "zero"}
    HYPERPARAMETERS = {**_SHARED,
                       "ema": Hyper(_SHARED["ema"].default, _SHARED["ema"].help + f"; {ONE_TERM_DEFAULTS['ema']} "
                                    "when the interior residual is the loss's only term (an ansatz holds "
                                    "every condition)", lo=0, hi=0.999999),
                       "init": Hyper("identity", f"initial factors; {ONE_TERM_DEFAULTS['init']} when the interior "
                                     "residual is the loss's only term", choices=("identity", "zero")),
                       "momentum": Hyper(0.5117575, "μ in δ̂_t = μ δ̂_{t−1} + Δ_t", lo=0, hi=1),
                       "adaptive_damping": Hyper(False, "adapt λ to the line search: × 3/2 after a step with "
                                                 "α* ≤ 2⁻⁸ or none, × 2/3 after α* ≥ ¼, within [1e-15, 1e6] "
                                                 "(off: the fixed damping, as the paper)")}
    METRICS = ("damping",)
    #: adaptive_damping: the line search's α* at or below which λ grows, at or above which it
    #: shrinks, the factor, and the range λ stays in
    ADAPT_LOW, ADAPT_HIGH, ADAPT_FACTOR, DAMPING_RANGE = 2.0**-8, 0.25, 1.5, (1e-15, 1e6)

    @classmethod
    def defaults_for(cls, model: GeneratedPINN) -> dict[str, Any]:
        """:attr:`ONE_TERM_DEFAULTS` for a model without condition terms, else none."""
        return dict(cls.ONE_TERM_DEFAULTS) if not model.condition_names else {}

    def __init__(self, model, **hyper):
        super().__init__(model, **hyper)
        h = self.hyper
        groups = None
        if not h["merge_conditions"]:
            groups = [("interior",)]
        self.pre = KronPreconditioner.for_model(model, groups, ema=h["ema"], damping=h["damping"],
                                                init=h["init"], update_period=h["update_period"],
                                                comm=self.comm, placement=h["inverse_placement"])
        self.t = 0
        self.previous: list[torch.Tensor] | None = None
        # the learned parameters' Gramian block (None without them)
        self.learned_block = (LearnedBlock(len(model.learned), h["ema"], h["init"], self.params[0].dtype,
                                           self.params[0].device) if len(model.learned) else None)

    def _direction(self, batch: Batch):
        """Loss, per-term losses, gradient and the natural-gradient direction Δ (factors refreshed if
        due); with learned parameters, their direction Δκ (P,) is left in ``self.learned_delta``."""
        terms = {k: v for k, v in batch.items() if k in self.pre.terms}
        cp = curvature_pass(self.model, batch, self.hyper["approximation"], self.comm)
        if self.pre.due(self.t):
            self.pre.update({k: cp.factors[k] for k in terms})
            if self.learned_block is not None:   # every term's, exact: P × P costs nothing to keep whole
                self.learned_block.update(sum(cp.learned_gramians.values()))
        delta = [-d for d in self.pre.apply_inverse(cp.gradient)]
        self.learned_delta = (self.learned_block.direction(cp.learned_gradient, self.pre.damping)
                              if self.learned_block is not None else None)
        if self.learned_delta is not None and self.comm.distributed:   # one κ step, bit for bit, on every rank
            self.comm.broadcast_([self.learned_delta], src=0)
        self.t += 1
        self.last_pass = cp
        return float(cp.loss), {k: float(v) for k, v in cp.losses.items()}, cp.gradient, delta

    def _move_learned(self, batch: Batch, loss: float) -> float:
        """Move κ along this step's Δκ with its own line search, on the network's output as it
        stands (the curvature pass's stacks); returns the loss there (``loss`` without learned
        parameters, or when κ stays)."""
        if self.learned_delta is None:
            return loss
        outputs = {k: lin.output for k, lin in self.last_pass.linearizations.items()}
        _, loss = learned_line_search(self.model, batch, outputs, self.learned_delta, comm=self.comm, current=loss)
        return loss

    def step(self, batch: Batch) -> StepInfo:
        loss, losses, _, delta = self._direction(batch)
        current = self._move_learned(batch, loss)   # κ first
        mu = self.hyper["momentum"]
        # Momentum over the unscaled directions, δ̂_t = μ δ̂_{t−1} + Δ_t, as in the paper's
        # published code (MATH.md §6 writes μ δ_{t−1} with the α-scaled previous step; then the
        # momentum's weight depends on the preconditioner's scale: on 2d Poisson the line search
        # picked α ≈ 1/16, which turned μ = 0.51 into ≈ 0.03 and stalled KFAC at RMS 1e-4).
        if self.previous is not None and mu:
            delta = [d + mu * p for d, p in zip(delta, self.previous)]
        self.previous = delta
        alpha, _ = grid_line_search(self.model, batch, delta, comm=self.comm, current=current)
        damping = self.pre.damping   # the λ of this step's direction
        if self.hyper["adaptive_damping"]:
            self.adapt_damping(alpha)
        return StepInfo(loss, losses, alpha, {"damping": damping})

    def adapt_damping(self, alpha: float) -> None:
        """λ for the next step from this step's line-search α* (see the class docstring)."""
        lam = self.pre.damping
        if alpha <= self.ADAPT_LOW:
            lam *= self.ADAPT_FACTOR
        elif alpha >= self.ADAPT_HIGH:
            lam /= self.ADAPT_FACTOR
        lo, hi = self.DAMPING_RANGE
        self.pre.set_damping(min(max(lam, lo), hi))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "t": self.t, "previous": self.previous,
                "factors": {t: [(f.A.clone(), f.B.clone()) for f in fs] for t, fs in self.pre.factors.items()},
                "n_updates": self.pre.n_updates, "damping": self.pre.damping,
                **({"learned_block": self.learned_block.G.clone()} if self.learned_block is not None else {})}

    def load_state_dict(self, state: dict) -> None:
        device = self.params[0].device
        self.t = state["t"]
        self.previous = None if state["previous"] is None else [p.to(device) for p in state["previous"]]
        for t, fs in state["factors"].items():
            for f, (A, B) in zip(self.pre.factors[t], fs):
                f.A.copy_(A)
                f.B.copy_(B)
        self.pre.n_updates = state["n_updates"]
        self.pre._inverses = None
        if self.learned_block is not None:
            self.learned_block.G.copy_(state["learned_block"])
        self.pre.set_damping(float(state.get("damping", self.hyper["damping"])))   # adapted, or the setting


class KFACStar(KFAC):
    """KFAC* : automatic learning rate and momentum from the exact damped Gramian (no line search).

    Learned parameters move first, as in :class:`KFAC` (their block's direction and its own line
    search on the network's output); the 2 × 2 model then steps the layers from the loss there,
    with the gradient and Gramian of the step's linearization, taken before κ moved (the trust
    safeguard compares with the loss at the new κ).
    """

    name = "kfac-star"
    # the paper's best KFAC* run on 2d Poisson, D = 257 (appendix A.2)
    HYPERPARAMETERS = {**_SHARED, "damping": Hyper(1.215640e-10, "λ of the factors and of the quadratic model", lo=0),
                       "update_period": Hyper(1, "T: refresh factors and inverses every T steps", lo=1),
                       "ema": Hyper(0.9263314, _SHARED["ema"].help, lo=0, hi=0.999999),
                       # The paper's code takes its first step with α = 1e-6 (first_lr = 1e-6 reproduces
                       # its logged runs, tests/test_paper_runs.py). On 5d Poisson with the settings of
                       # configs/poisson5d-449 (the benchmarks/paper.py cell, seed 0, and a session
                       # script with seeds 0 and 1) that start was followed by loss spikes of 1e4× and
                       # divergence within 400 steps; with the 1-d model's α the script saw none in
                       # 500 steps on either seed, so that is the default.
                       "first_lr": Hyper(0.0, "α of the first step, which has no previous step for the "
                                         "2 × 2 model; 0: α from the 1-d quadratic model (the paper's "
                                         "code: 1e-6)", lo=0),
                       # On by default (the paper's KFAC* takes every step its model proposes: trust =
                       # false). On 5d Poisson (configs/poisson5d-449, from the paper's start) such steps
                       # raised the loss from 5.7e-4 to 5.0e5 within 100 steps and the run never
                       # recovered; with the safeguard the same cell ended at 9.6e-4. Cell by cell the
                       # benchmarks/paper.py runs with and without it are draws (3 of 8 lower with it;
                       # docs/performance.md, "The paper's experiments at 120 s"). It is on because it
                       # removes the collapse.
                       "trust": Hyper(True, "safeguard: evaluate the loss after each step (one forward "
                                      "pass); a step that raised it is undone and the following steps "
                                      "(the momentum kept) scaled by ¼ per such step, growing back ×2 "
                                      "(up to 1) after each step the quadratic model predicted well "
                                      "(actual/predicted decrease > ¾)")}

    ONE_TERM_DEFAULTS = {}   # its own average and identity start on every loss (zero factors not tried for it)

    METRICS = ("momentum", "rejected_steps", "scale")

    def __init__(self, model, **hyper):
        super().__init__(model, **hyper)
        self.scale = 1.0    # τ: the trust safeguard's factor on the model's step (1 without it)
        self.rejected_steps = 0   # steps the safeguard undid, since the start of the run

    def step(self, batch: Batch) -> StepInfo:
        loss, losses, grad, delta = self._direction(batch)
        start = loss   # the step's report: the loss at the parameters it started from
        loss = self._move_learned(batch, loss)   # κ first
        lam = self.hyper["damping"]
        trust = self.hyper["trust"]
        prev = self.previous
        if prev is None:
            directions, rhs = [delta], torch.stack([_dot(delta, grad)])
        else:
            directions, rhs = [delta, prev], torch.stack([_dot(delta, grad), _dot(prev, grad)])
        fixed_first = prev is None and self.hyper["first_lr"] > 0
        m = None
        if trust or not fixed_first:
            # the damped quadratic model M(c) = ½ cᵀ m c + cᵀ rhs of the step Σ_i c_i d_i
            g = linearized_quadratic_forms(self.last_pass.linearizations, directions, self.comm)
            m = g + lam * torch.stack([torch.stack([_dot(a, b) for b in directions]) for a in directions])
        if fixed_first:
            coef = torch.tensor([float(self.hyper["first_lr"])], dtype=rhs.dtype)
        elif prev is None:
            coef = -rhs / m[0, 0]
        else:
            coef = -solve_symmetric_2x2(m, rhs)
        coef = coef * self.scale
        alpha, mu = float(coef[0]), (float(coef[1]) if prev is not None else 0.0)
        step = [alpha * d for d in delta]
        if prev is not None:
            step = [s + mu * p for s, p in zip(step, prev)]
        if not trust:
            add_to_parameters(self.model, step)
            self.previous = step
            return StepInfo(start, losses, alpha, {"momentum": mu, "rejected_steps": 0.0, "scale": 1.0})

        saved = [p.detach().clone() for p in self.params]
        add_to_parameters(self.model, step)
        new = self.loss_at(batch)
        predicted = float(0.5 * coef @ m @ coef + coef @ rhs)   # M(c) < 0 for the model's minimiser
        if not (new <= loss):   # the loss rose (or is not finite): undo the step
            with torch.no_grad():
                for p, old in zip(self.params, saved):
                    p.copy_(old)
            # keep the last accepted step as the momentum direction: the retry solves the 2 × 2 model
            # again and takes its step scaled by ¼. (Dropping it made every retry a 1-d step without
            # momentum: on 2d Poisson from the paper's start, 66 rejections in 1 100 steps against 21;
            # that 120-s cell ended at 2.8e-5 then, 1.1e-5 now, 5.4e-6 without the safeguard.)
            # The scale stops at 2⁻³⁰, the line search's smallest step, so that it can grow back.
            self.scale = max(self.scale * 0.25, 2.0 ** -30)
            self.rejected_steps += 1
            return StepInfo(start, losses, 0.0, {"momentum": 0.0, "rejected": 1.0, "scale": self.scale,
                                                "rejected_steps": float(self.rejected_steps)})
        if predicted < 0 and (new - loss) / predicted > 0.75:
            self.scale = min(1.0, 2 * self.scale)
        self.previous = step
        return StepInfo(start, losses, alpha, {"momentum": mu, "rejected": 0.0, "scale": self.scale,
                                              "rejected_steps": float(self.rejected_steps)})

    def state_dict(self) -> dict:
        return {**super().state_dict(), "scale": self.scale, "rejected_steps": self.rejected_steps}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.scale = float(state.get("scale", 1.0))
        self.rejected_steps = int(state.get("rejected_steps", 0))
