"""Randomized differential test of the curvature side of generated pdec modules.

For random_problem(seed) of tests/test_random_specs.py, in every mode that accepts the problem,
with small random nets, per term (interior and each condition) and per layer it checks, float64:

    residual  r from the stacks (propagate + full activate) = r from propagate_read (the loss path)
    jac       per_sample_jacobians(linearize(...))   vs torch.func.jacrev of model.residual
    grad      loss_gradient(linearize(...))          vs torch.autograd of 1/(2N) Σ r²
    total     curvature_pass(...).gradient / .loss   vs pinn_loss(...).backward()
    gram_*    per term, against G_ref = J_refᵀ J_ref / N from jacrev:
              lin_qf / lin_mv  (linearized_quadratic_forms / linearized_matvec, from the stacks),
              jvp_qf / jvp_mv  (gramian_quadratic_forms / gramian_matvec, torch.func jvp/vjp),
              dense_blocks     (dense_gramian_blocks, per layer)

Everything is compared with test_curvature.rel_err (max |a−b| / max |b|) at tolerance 1e-10.

Usage (from a pdec checkout, with tests/ importable):
    OMP_NUM_THREADS=1 python tests/random_curvature_sweep.py --start 0 --stop 400 \
        --out results.jsonl [--budget 2400]
Every check is written as one JSON line; failures and exceptions are summarised at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import torch

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

import pdec  # noqa: E402

ROOT = Path(pdec.__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pdec.curvature import (curvature_pass, dense_gramian_blocks, flatten, gramian_matvec,  # noqa: E402
                            gramian_quadratic_forms, linearize, linearized_matvec,
                            linearized_quadratic_forms, loss_gradient, per_sample_jacobians,
                            unflatten)
from pdec.curvature.layout import layer_shapes  # noqa: E402
from pdec.loss import pinn_loss  # noqa: E402
from reference import randomize_weights, random_points  # noqa: E402
from test_curvature import reference_jacobian_matrix, reference_jacobians, rel_err  # noqa: E402
from test_random_specs import MODES, random_problem  # noqa: E402

TOL = 1e-10
HIDDEN = ((5,), (4, 3))


def _err(a: torch.Tensor, b: torch.Tensor) -> float:
    """rel_err of test_curvature, with 0 when both are exactly zero."""
    if b.abs().max() == 0 and a.abs().max() == 0:
        return 0.0
    return rel_err(a, b)


def check_model(problem, model, seed: int, n_interior: int = 4, n_condition: int = 3,
                gram: bool = True) -> list[dict]:
    """All checks for one instantiated model; returns records {term, layer, check, err}."""
    out = []

    def rec(term, layer, check, err):
        out.append({"term": term, "layer": layer, "check": check, "err": err})

    batch = {t: random_points(problem, n_interior if t == "interior" else n_condition, seed=seed + 17 * i + 1)
             for i, t in enumerate(model.term_names)}
    params = [p for lay in model.layers for p in (lay.weight, lay.bias)]
    shapes = layer_shapes(model)
    D = sum(o * i for o, i in shapes)
    gen = torch.Generator().manual_seed(seed)
    v1 = torch.randn(D, generator=gen)
    v2 = torch.randn(D, generator=gen)
    V1, V2 = unflatten(v1, shapes), unflatten(v2, shapes)
    lins = {}
    for term, X in batch.items():
        lin = linearize(model, term, X)
        lins[term] = lin
        # the loss path (propagate_read, activate_<term>_last) against the stacks' residual
        r_read = model.residual(term, X)
        rec(term, None, "residual", _err(lin.residual, r_read.detach()))
        # (a) per-sample Jacobians against jacrev of model.residual
        ours = per_sample_jacobians(lin)
        ref = reference_jacobians(model, term, X)
        for l, (J, R) in enumerate(zip(ours, ref)):
            rec(term, l, "jac", _err(J, R) if J.shape == R.shape else float("inf"))
        # (b) the term's loss gradient against autograd
        grads = torch.autograd.grad(0.5 * r_read.pow(2).sum() / X.shape[0], params,
                                    allow_unused=True, materialize_grads=True)
        for l, G in enumerate(loss_gradient(lin)):
            R = torch.cat([grads[2 * l], grads[2 * l + 1][:, None]], 1)
            rec(term, l, "grad", _err(G, R))
        # (c) Gramian products of this term against G_ref = J_refᵀ J_ref / N
        if gram:
            J = reference_jacobian_matrix(model, term, X)
            G_ref = J.mT @ J / X.shape[0]
            Vs = torch.stack([v1, v2], 1)
            one = {term: X}
            QF_ref = Vs.mT @ G_ref @ Vs
            rec(term, None, "gram_lin_qf", _err(linearized_quadratic_forms({term: lin}, [V1, V2]), QF_ref))
            rec(term, None, "gram_lin_mv", _err(flatten(linearized_matvec({term: lin}, V1)), G_ref @ v1))
            rec(term, None, "gram_jvp_qf", _err(gramian_quadratic_forms(model, one, [V1, V2]), QF_ref))
            rec(term, None, "gram_jvp_mv", _err(flatten(gramian_matvec(model, one, V1)), G_ref @ v1))
            off = 0
            for l, block in enumerate(dense_gramian_blocks(model, one)):
                P = shapes[l][0] * shapes[l][1]
                rec(term, l, "gram_dense_block", _err(block, G_ref[off:off + P, off:off + P]))
                off += P
    # total loss and gradient of the curvature pass against pinn_loss + backward
    cp = curvature_pass(model, batch)
    model.zero_grad()
    total, _ = pinn_loss(model, batch)
    total.backward()
    rec("*", None, "total_loss", abs(cp.loss.item() - total.item()) / max(abs(total.item()), 1e-300))
    for l, (G, lay) in enumerate(zip(cp.gradient, model.layers)):
        R = torch.cat([lay.weight.grad, lay.bias.grad[:, None]], 1)
        rec("*", l, "total_grad", _err(G, R))
    model.zero_grad()
    return out


def features(problem) -> dict:
    """What the problem exercises: unknowns, Neumann face, highest order, nonlinear, x-dependent."""
    import sympy as sp
    from sympy.core.function import AppliedUndef

    exprs = list(problem.interior_residuals) + [r for c in problem.condition_items.values() for r in c.residuals]
    order, nonlinear = 0, False
    for e in map(sp.sympify, exprs):
        nodes = list(e.atoms(sp.Derivative)) + list(e.atoms(AppliedUndef))
        order = max([order] + [sum(int(k) for _, k in n.variable_count) for n in e.atoms(sp.Derivative)])
        dums = {n: sp.Dummy() for n in nodes}
        le = e.xreplace({n: d for n, d in dums.items() if isinstance(n, sp.Derivative)}).xreplace(dums)
        nonlinear |= any(sp.diff(le, d).free_symbols & set(dums.values()) for d in dums.values())
    return {"unknowns": len(problem.unknowns), "d": len(problem.variables), "flux": "flux" in problem.condition_items,
            "order": order, "nonlinear": bool(nonlinear)}


def run_seed(seed: int, hidden_list=HIDDEN, modes=MODES, gram: bool = True, activation: str = "tanh",
             problem=None):
    """Yields (mode, hidden, records | exception text) for every mode that accepts the problem
    (random_problem(seed) unless ``problem`` is given)."""
    problem = random_problem(seed) if problem is None else problem
    for mode in modes:
        try:
            compiled = pdec.compile(problem, hidden=hidden_list[0], mode=mode, write=False,
                                    activation=activation)
        except pdec.ModeError:
            continue
        except pdec.SpecError as e:  # the generator can draw a residual that cancels to no unknown
            yield mode, None, "rejected: " + str(e)
            continue
        except Exception:  # noqa: BLE001 - a compile failure is a finding too
            yield mode, None, "compile: " + traceback.format_exc(limit=3)
            continue
        m0 = compiled.model
        yield mode, "meta", {"modes": dict(m0.modes), "S": dict(m0.S), "point_seeds": list(m0.point_seeds),
                             **features(problem)}
        for k, hidden in enumerate(hidden_list):
            model = compiled.module_class(hidden=hidden)
            randomize_weights(model, seed=1000 * seed + k)
            try:
                yield mode, hidden, check_model(problem, model, seed=1000 * seed + k, gram=gram)
            except Exception:  # noqa: BLE001
                yield mode, hidden, "check: " + traceback.format_exc(limit=5)


def run_specs(args) -> None:
    """The same checks on every spec file of specs/ and tests/specs/."""
    t0 = time.time()
    bad = 0
    with open(args.out, "w") as fh:
        for path in sorted(ROOT.glob("specs/*.py")) + sorted(ROOT.glob("tests/specs/*.py")):
            problem = pdec.load_spec(path)
            for mode, hidden, res in run_seed(0, gram=not args.no_gram, activation=args.activation,
                                              problem=problem):
                if hidden == "meta":
                    continue
                if isinstance(res, str):
                    bad += 1
                    print("EXC", path.name, mode, hidden, res.strip().splitlines()[-1])
                    continue
                worst = max(res, key=lambda r: r["err"])
                fails = [r for r in res if not r["err"] <= TOL]
                bad += len(fails)
                for r in res:
                    fh.write(json.dumps({"spec": path.name, "mode": mode, "hidden": hidden, **r}) + "\n")
                print(f"{path.relative_to(ROOT)} [{mode}] {hidden}: {len(res)} checks, "
                      f"{len(fails)} failures, worst {worst['check']} {worst['err']:.1e} "
                      f"t={time.time() - t0:.0f}s", flush=True)
    print(f"failures + exceptions: {bad}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--stop", type=int, default=400)
    ap.add_argument("--budget", type=float, default=2400.0, help="stop starting seeds after this many s")
    ap.add_argument("--out", default="random_curvature.jsonl")
    ap.add_argument("--no-gram", action="store_true")
    ap.add_argument("--activation", default="tanh")
    ap.add_argument("--specs", action="store_true", help="the shipped specs/ and tests/specs/ instead")
    args = ap.parse_args()
    if args.specs:
        return run_specs(args)
    t0 = time.time()
    n_pm = n_models = n_checks = 0
    failures, exceptions, rejected = [], [], []
    with open(args.out, "w") as fh:
        for seed in range(args.start, args.stop):
            if time.time() - t0 > args.budget:
                print(f"budget reached before seed {seed}")
                break
            modes_seen = set()
            for mode, hidden, res in run_seed(seed, gram=not args.no_gram, activation=args.activation):
                modes_seen.add(mode)
                base = {"seed": seed, "mode": mode, "hidden": hidden}
                if hidden == "meta":
                    fh.write(json.dumps({"seed": seed, "mode": mode, "meta": res}) + "\n")
                    continue
                if isinstance(res, str) and res.startswith("rejected"):
                    modes_seen.discard(mode)
                    rejected.append({**base, "error": res})
                    fh.write(json.dumps({**base, "rejected": res}) + "\n")
                    continue
                if isinstance(res, str):
                    exceptions.append({**base, "error": res})
                    fh.write(json.dumps({**base, "exception": res}) + "\n")
                    continue
                n_models += 1
                for r in res:
                    n_checks += 1
                    row = {**base, **r}
                    fh.write(json.dumps(row) + "\n")
                    if not r["err"] <= TOL:
                        failures.append(row)
            n_pm += len(modes_seen)
            fh.flush()
            print(f"seed {seed}: modes {sorted(modes_seen)} failures so far {len(failures)} "
                  f"exceptions {len(exceptions)} t={time.time() - t0:.0f}s", flush=True)
    print(f"\nproblems x modes: {n_pm}; models: {n_models}; checks: {n_checks}; "
          f"failures: {len(failures)}; exceptions: {len(exceptions)}; "
          f"rejected by compile (SpecError): {len(rejected)}; {time.time() - t0:.0f}s")
    for f in failures:
        print("FAIL", json.dumps(f))
    for e in rejected:
        print("REJECTED", e["seed"], e["mode"], e["error"])
    for e in exceptions:
        print("EXC", e["seed"], e["mode"], e["hidden"], e["error"].strip().splitlines()[-1])


if __name__ == "__main__":
    main()
