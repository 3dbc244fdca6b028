"""2+1d heat equation on the torus [0, 2π]²: two periodic conditions, one per spatial variable,
with u* = e^{−2t} sin x cos y."""
import sympy as sp

from pdec import Box, Condition, Initial, Periodic, Problem

t, x, y = sp.symbols("t x y", real=True)
u = sp.Function("u")(t, x, y)
u_exact = sp.exp(-2 * t) * sp.sin(x) * sp.cos(y)
problem = Problem(
    name="heat_torus",
    domain=Box({t: (0, 1), x: (0, 2 * sp.pi), y: (0, 2 * sp.pi)}, time=t),
    unknowns=[u],
    interior=u.diff(t) - u.diff(x, 2) - u.diff(y, 2),
    conditions={"initial": Condition(u - u_exact, on=Initial()),
                "periodic_x": Condition([u, u.diff(x)], on=Periodic(x)),
                "periodic_y": Condition([u, u.diff(y)], on=Periodic(y), weight=2)},
    exact={u: u_exact},
)
