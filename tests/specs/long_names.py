"""A plate equation in long variable and unknown names (taylor mode, fourth order): the generated
names (deflection_radial_coordinate_r_…) are long, and the module must still wrap and parse."""
import sympy as sp

from pdec import Boundary, Box, Condition, Problem

r, a = sp.symbols("radial_coordinate_r azimuthal_coordinate", real=True)
w = sp.Function("deflection")(r, a)
problem = Problem(
    name="long_names",
    domain=Box({r: (1, 2), a: (0, 1)}),
    unknowns=[w],
    interior=w.diff(r, 4) + 2 * w.diff(r, 2, a, 2) + w.diff(a, 4) - 1,
    conditions={"clamped": Condition(w, on=Boundary())},
)
