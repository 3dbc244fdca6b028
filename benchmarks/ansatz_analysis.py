"""How long pdec's analysis takes for a product ansatz in d variables.

−Δu = 1 on [0, 1]^d with u = b·v, b = Π_i x_i(1 − x_i): the residual in v holds b and its
derivatives, which SymPy expands to about 2^d terms each. The script prints the seconds that
validating and analysing the problem take for each d (one process, one run each).

    python benchmarks/ansatz_analysis.py              # d = 2 … 6, about 5 s
    python benchmarks/ansatz_analysis.py --max-d 7
"""

from __future__ import annotations

import argparse
import time

import sympy as sp

from pdec import Box, Problem
from pdec.analysis import analyse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-d", type=int, default=6, help="largest dimension")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}: seconds to validate and analyse −Δ(b v) = 1, b = Π x_i(1 − x_i)")
    for d in range(2, args.max_d + 1):
        xs = sp.symbols(f"x1:{d + 1}", real=True)
        u, v = sp.Function("u")(*xs), sp.Function("v")(*xs)
        bubble = sp.Mul(*[x * (1 - x) for x in xs])
        problem = Problem(name="bubble", domain=Box({x: (0, 1) for x in xs}), unknowns=[u],
                          interior=-sum(u.diff(x, 2) for x in xs) - 1, ansatz={u: bubble * v})
        start = time.perf_counter()
        problem.validate()
        analyse(problem)
        print(f"d = {d}: {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
