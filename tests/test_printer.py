"""The SymPy -> torch printer: what it writes, and that the code computes the expression."""

import math

import pytest
import sympy as sp
import torch

from pdec.codegen.printer import print_torch

x, y = sp.symbols("x y", real=True)


@pytest.mark.parametrize("expr,code", [
    (x / 3, "x/3"),
    (-2 * x * y / 3, "-2*x*y/3"),
    (sp.Rational(1, 4) * x, "0.25*x"),            # a short decimal stays a decimal
    (-sp.Rational(9, 2) * sp.log(x), "-4.5*torch.log(x)"),
    (2 * sp.pi**2 * x, "19.739208802178716*x"),   # irrational constants are folded
    (sp.sin(x) / 7 + 1, "torch.sin(x)/7 + 1"),
])
def test_printed_code(expr, code):
    assert print_torch(expr) == code


@pytest.mark.parametrize("expr", [x / 3, -2 * x * y / 3, (x + y) / 7, x**2 / 3 - y / 6, sp.exp(-x) * y / 9,
                                  sp.Rational(5, 3) * sp.sqrt(x) * y])
def test_printed_code_computes_the_expression(expr):
    X = torch.rand(20, dtype=torch.float64) + 0.5
    Y = torch.rand(20, dtype=torch.float64) - 0.5
    got = eval(print_torch(expr), {"torch": torch, "math": math, "x": X, "y": Y})
    want = sp.lambdify((x, y), expr, "math")
    for g, a, b in zip(got.tolist(), X.tolist(), Y.tolist()):
        assert g == pytest.approx(want(a, b), rel=1e-15, abs=1e-15)


@pytest.mark.parametrize("value,text", [
    (sp.nsimplify(0.123456789012345), "0.123456789012345"),   # a float parameter, made exact
    (sp.Rational(1, 100), "0.01"), (sp.Rational(3, 10), "0.3"),
    (sp.Rational(1, 4), "1/4"), (sp.Rational(1, 3), "1/3"), (sp.Rational(-5, 2), "-5/2"),
    (sp.Symbol("x") * sp.Rational(1, 100) + sp.Rational(1, 3), "x/100 + 1/3")])
def test_math_text_prints_a_fraction_as_its_decimal_when_shorter(value, text):
    from pdec.text import math_text

    assert math_text(value) == text
    assert sp.nsimplify(sp.sympify(math_text(value)), rational=True) == value
