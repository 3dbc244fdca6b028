"""The small runtime every generated module imports: the layer loop and the shared API.

Conventions (all generated modules):
    X: (N, d) points, one sample per row, columns in the domain's variable order.
    Stack Z: (N, S, h): sample, propagated quantity (column 0 = value), feature.
    Linear layer l maps Z⁽ˡ⁻¹⁾ (N, S, h_{l-1}) to Z⁽ˡ⁾ = Z⁽ˡ⁻¹⁾ Wᵀ, plus the bias on column 0
    only (derivatives of a constant vanish), MATH.md §4.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import torch
from torch import nn


class Stacks(NamedTuple):
    """Per linear layer l: its input stack Z⁽ˡ⁻¹⁾ (N, S, h_{l-1}) and output stack Z⁽ˡ⁾ (N, S, h_l).

    ``outputs[-1]`` (N, S, m) holds the network output and its propagated derivatives.
    """

    inputs: list[torch.Tensor]
    outputs: list[torch.Tensor]


def tanh(z: torch.Tensor) -> torch.Tensor:
    """tanh, element-wise, as the generated modules print it.

    Without autograd, on a CPU in float64, it is computed as 2σ(2z) − 1: absolute error at most
    about 4.4e-16 (so the relative error grows as |z| → 0), and faster than torch's float64 CPU
    tanh (the line search's trial passes: ``benchmarks/kfac_step.py --compare-tanh``). With
    autograd, on other devices and in other dtypes it is ``torch.tanh``.
    """
    if torch.is_grad_enabled() or z.device.type != "cpu" or z.dtype != torch.float64:
        return torch.tanh(z)
    u = z * 2
    return torch.sigmoid(u, out=u).mul_(2).sub_(1)


def horner_step(acc: torch.Tensor, s: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
    """One step of Horner's rule in the generated ``activate_<term>_last``: acc·s + c.

    ``c`` broadcasts against acc·s (None: no constant). With autograd off (the line search's trial
    passes) the result is written into ``acc``, which already has the result's shape: no new
    tensor per degree. With autograd on, a new tensor, so the graph keeps every step's input.
    """
    if torch.is_grad_enabled():
        return acc * s if c is None else torch.addcmul(c, s, acc)
    return torch.mul(acc, s, out=acc) if c is None else torch.addcmul(c, s, acc, out=acc)


def linear_stack(Z: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """Z (N, S, h_in) -> (N, S, h_out): W ∂h for every column, bias on the value column only."""
    out = torch.nn.functional.linear(Z, layer.weight)
    out[:, 0] += layer.bias
    return out


class GeneratedPINN(nn.Module):
    """Base of every generated module: an MLP d -> hidden -> m whose linear layers are
    ``self.layers`` in order, plus per-term propagation and residuals.

    A generated subclass defines, for each term (``"interior"`` and every condition name):
    ``seed_<term>(X) -> Z⁽⁰⁾`` (N, S, d), ``activate_<term>(Z, X) -> Z`` (σ applied to a stack
    (..., S, h)) and ``residual_<term>(X, out) -> (..., M)`` from the output stack ``out``
    (..., S, m); terms with S > 1 also ``activate_<term>_last(z, Zc, X)``, the columns the residual
    reads at the last hidden layer (for the line search). The activate and residual functions index
    from the right, so leading dims (the line search's trials) pass through and broadcast.
    """

    term_names: tuple[str, ...] = ()
    condition_names: tuple[str, ...] = ()
    n_in: int = 0
    n_out: int = 0
    #: the network's outputs, one per unknown, when the spec has an ansatz (None: the unknowns)
    outputs: tuple[str, ...] | None = None
    #: the unknowns ``exact_solution`` gives, in output order (None: all of them, or no exact solution)
    exact_unknowns: tuple[str, ...] | None = None
    #: whether this instance's loss and line-search trial pass run through torch.compile
    #: (set per run by :func:`pdec.torch_compile.use_torch_compile`)
    torch_compiled: bool = False
    #: periodic terms (conditions on ``Periodic(x)``): term -> (column c, lo, hi); see :meth:`term_points`
    periodic: dict[str, tuple[int, float, float]] = {}
    #: data terms (conditions on ``Data``): term -> M; their points are rows of the d coordinates,
    #: then the M observed values (see :meth:`term_points`, :meth:`residual`)
    observed: dict[str, int] = {}
    #: learned PDE parameters (``Learned`` in the spec): name -> the value training starts from.
    #: Each is a trainable 0-dim parameter ``self.learned[name]`` that the residuals read.
    learned_initial: dict[str, float] = {}
    #: the true values of those that have one: name -> value
    learned_exact: dict[str, float] = {}

    def exact_columns(self) -> list[int]:
        """Output columns that ``exact_solution`` gives, in its column order (all unknowns unless
        the spec gave an exact solution for some of them only)."""
        names = self.exact_unknowns if self.exact_unknowns is not None else self.unknowns
        return [list(self.unknowns).index(u) for u in names]

    @staticmethod
    def inside(X: torch.Tensor) -> torch.Tensor:
        """Whether each point of X (..., d) lies in the domain: (...,) bool. The box is the whole
        domain here; a spec with ``Box(..., where=…)`` generates its own test of the condition
        (the box's bounds are not tested)."""
        return torch.ones(X.shape[:-1], dtype=torch.bool, device=X.device)

    def __init__(self, hidden: Sequence[int], dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None):
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        if not hidden or any(h < 1 for h in hidden):
            raise ValueError(f"hidden widths must be positive integers, got {hidden}")
        widths = (self.n_in,) + hidden + (self.n_out,)
        self.widths = widths
        self.layers = nn.ModuleList(
            nn.Linear(a, b, dtype=dtype, device=device) for a, b in zip(widths[:-1], widths[1:]))
        # after the layers, so model.parameters() lists the layers' first (a net without learned
        # parameters has none here, and its state_dict is unchanged)
        self.learned = nn.ParameterDict({
            name: nn.Parameter(torch.tensor(float(value), dtype=dtype, device=device))
            for name, value in self.learned_initial.items()})

    def reset_learned(self) -> None:
        """Set every learned parameter back to the value training starts from (``learned_initial``)."""
        with torch.no_grad():
            for name, p in self.learned.items():
                p.fill_(self.learned_initial[name])

    # ------------------------------------------------------------------ plain network
    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """The learned solution at X: (N, d) -> (N, m), one column per unknown of ``unknowns``:
        the network's values, through the spec's ansatz where it has one (:meth:`ansatz`)."""
        return self.ansatz(X, self.network(X))

    def network(self, X: torch.Tensor) -> torch.Tensor:
        """The network's own outputs N_θ(X): (N, d) -> (N, m), columns ``outputs``."""
        h = X
        for layer in self.layers[:-1]:
            h = self.activation(layer(h))
        return self.layers[-1](h)

    @staticmethod
    def ansatz(X: torch.Tensor, net: torch.Tensor) -> torch.Tensor:
        """The unknowns (..., m) from the network's outputs ``net`` (..., m) at X (..., d): here
        the outputs themselves; a spec with an ansatz (hard constraints) generates its own."""
        return net

    def activation(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - generated
        raise NotImplementedError

    # ------------------------------------------------------------------ propagation
    def _check_term(self, term: str) -> None:
        if term not in self.term_names:
            raise KeyError(f"unknown term {term!r}; terms: {', '.join(self.term_names)}")

    def _check_points(self, term: str, X: torch.Tensor) -> None:
        observed = self.observed.get(term, 0)
        if X.ndim != 2 or X.shape[1] != self.n_in + observed:
            what = (f"(N, {self.n_in} + {observed}) for the data term {term!r}: the coordinates, then the "
                    f"observed values" if observed else f"(N, {self.n_in})")
            raise ValueError(f"points must have shape {what}, got {tuple(X.shape)}")

    def term_points(self, term: str, X: torch.Tensor) -> torch.Tensor:
        """The points a term's forward pass runs on: X (N, d) itself; for a data term
        (``observed[term] = M``, X (N, d + M)) its first d columns; for a periodic term
        (``periodic[term] = (c, lo, hi)``) X stacked on its images X' (X with column c set to hi):
        (2N, d), rows n and N + n a pair. X's own column c is not checked (the samplers put it at
        lo): a point already on c = hi is paired with itself, and its residual is 0."""
        if term in self.observed:
            return X[:, :self.n_in]
        pair = self.periodic.get(term)
        if pair is None:
            return X
        column, _, hi = pair
        image = X.clone()
        image[:, column] = hi
        return torch.cat([X, image])

    def forward_rows(self, term: str, n: int) -> int:
        """How many rows the term's forward pass runs on for n points: 2n for a periodic term (the
        points and their images, :meth:`term_points`), else n."""
        return 2 * n if term in self.periodic else n

    def residual_points(self, term: str, X: torch.Tensor) -> torch.Tensor:
        """What ``residual_<term>`` reads for points X: a data term's whole rows (coordinates, then
        the observed values it subtracts), else :meth:`term_points`."""
        return X if term in self.observed else self.term_points(term, X)

    def paired_difference(self, term: str, q: torch.Tensor) -> torch.Tensor:
        """A periodic term's residual from its per-point quantity on :meth:`term_points`:
        q (..., 2N, M) -> q(X) − q(X') (..., N, M); other terms' q is returned as it is."""
        if term not in self.periodic:
            return q
        n = q.shape[-2] // 2
        return q[..., :n, :] - q[..., n:, :]

    def propagate(self, term: str, X: torch.Tensor, keep: bool = True) -> Stacks:
        """Forward pass of the term's plan.

        Args:
            term: "interior" or a condition name.
            X: points (N, d); a data term's (N, d + M), of which the network reads the first d. A
                periodic term runs on :meth:`term_points`, so its stacks have 2N rows: the points',
                then their images'.
            keep: keep every linear layer's input and output stack (for curvature); with False
                only the output stack is returned (``Stacks([], [out])``), so each layer's stacks
                are freed as soon as the next is computed.
        """
        self._check_term(term)
        self._check_points(term, X)
        X = self.term_points(term, X)
        activate = getattr(self, f"activate_{term}")
        Z = getattr(self, f"seed_{term}")(X)
        shared = self.seed_is_shared(term)
        inputs, outputs = [], []
        for l, layer in enumerate(self.layers):
            if keep:
                inputs.append(Z)
            if l == 0 and shared:  # the seed columns' images are the same at every point: once
                cols = nn.functional.linear(self.seed_columns(term, X), layer.weight)
                Z = torch.cat([nn.functional.linear(X, layer.weight, layer.bias)[:, None],
                               cols.expand(X.shape[0], -1, -1)], dim=1)
            else:
                Z = linear_stack(Z, layer)
            if keep:
                outputs.append(Z)
            if l < len(self.layers) - 1:
                Z = activate(Z, X)
        return Stacks(inputs, outputs) if keep else Stacks([], [Z])

    def seed_is_shared(self, term: str) -> bool:
        """Whether columns 1… of the term's input stack are the same at every point (S > 1 and
        the term is not in ``point_seeds``)."""
        return self.S[term] > 1 and term not in self.point_seeds

    def seed_columns(self, term: str, X: torch.Tensor) -> torch.Tensor:
        """Columns 1… of the input stack Z⁽⁰⁾: (1, S-1, d) when they are shared by every point
        (the generated ``<term>_seed`` buffer), else (N, S-1, d) (S = 1 gives (N, 0, d))."""
        if self.seed_is_shared(term):
            return getattr(self, f"{term}_seed")[None]
        return getattr(self, f"seed_{term}")(X)[:, 1:]

    def propagate_read(self, term: str, X: torch.Tensor) -> torch.Tensor:
        """The output stack (N, S, m) with only the columns the residual reads; the others are 0.

        What the loss needs, with less work than :meth:`propagate`: the first layer maps the seed
        columns once when they do not depend on the point (``point_seeds``), and the last hidden
        layer activates only ``residual_columns[term]`` (``activate_<term>_last``). The hidden
        layers in between carry full stacks. Differentiable (autograd and torch.func). A periodic
        term's stack has 2N rows, as in :meth:`propagate`.
        """
        activate_last = getattr(self, f"activate_{term}_last", None)
        if activate_last is None:  # S = 1: the stack is the value
            return self.propagate(term, X, keep=False).outputs[-1]
        self._check_term(term)
        self._check_points(term, X)
        X = self.term_points(term, X)
        N, S = X.shape[0], self.S[term]
        first = self.layers[0]
        z = nn.functional.linear(X, first.weight, first.bias)       # value column (N, h)
        cols = nn.functional.linear(self.seed_columns(term, X), first.weight)  # the others (n, S-1, h)
        activate = getattr(self, f"activate_{term}")
        for layer in self.layers[1:-1]:
            Z = activate(torch.cat([z[:, None], cols.expand(N, -1, -1)], dim=1), X)
            z, cols = Z.split([1, S - 1], dim=1)
            z = nn.functional.linear(z[:, 0], layer.weight, layer.bias)
            cols = nn.functional.linear(cols, layer.weight)
        read = self.residual_columns[term]
        last = self.layers[-1]
        out = nn.functional.linear(activate_last(z, cols, X), last.weight)   # (N, R, m)
        if 0 in read:
            j = read.index(0)
            out = torch.cat([out[:, :j], out[:, j:j + 1] + last.bias, out[:, j + 1:]], dim=1)
        if tuple(read) == tuple(range(S)):
            return out
        full = out.new_zeros(N, S, out.shape[-1])
        return full.index_copy(1, torch.tensor(read, device=out.device), out)

    def residual(self, term: str, X: torch.Tensor, stacks: Stacks | None = None) -> torch.Tensor:
        """Residual of a term at points X: (N, M). Pass ``stacks`` to reuse a forward pass (of
        :meth:`propagate`); without them the output stack comes from :meth:`propagate_read`. A
        periodic term's residual is q(X) − q(X') (:meth:`paired_difference`); a data term's is
        q − obs for rows X (N, d + M) of the coordinates, then the observed values."""
        out = self.propagate_read(term, X) if stacks is None else stacks.outputs[-1]
        return self.residual_of_output(term, X, out)

    def residual_of_output(self, term: str, X: torch.Tensor, out: torch.Tensor,
                           learned: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The term's residual (..., N, M) from its points X (as for :meth:`residual`) and the
        network's output stack ``out`` (..., N', S, m), N' the term's :meth:`forward_rows` (leading
        dims: the line search's trials). ``learned``: values of the learned parameters, name ->
        tensor broadcasting against ``out[..., 0, 0]``, in place of ``self.learned`` (the line
        search's trial values, or a copy to differentiate the residual in alone, ``out`` fixed)."""
        fn = getattr(self, f"residual_{term}")
        if learned is None:
            q = fn(self.residual_points(term, X), out)
        elif not self.learned_initial:
            raise ValueError(f"{self.name} has no learned parameters, but values were given for "
                             f"{', '.join(learned)}")
        else:
            q = fn(self.residual_points(term, X), out, learned)
        return self.paired_difference(term, q)

    def interior_residual(self, X: torch.Tensor) -> torch.Tensor:
        """Interior residual r_Ω at points X (N, d): (N, M)."""
        return self.residual("interior", X)

    def condition_residual(self, name: str, X: torch.Tensor) -> torch.Tensor:
        """Residual of condition ``name`` at points X (N, d), for a data term rows (N, d + M) of the
        coordinates, then the observed values: (N, M_c)."""
        if name not in self.condition_names:
            raise KeyError(f"unknown condition {name!r}; conditions: {', '.join(self.condition_names)}")
        return self.residual(name, X)
