"""Curvature for PINN losses: exact Jacobians, Kronecker factors, the KFAC preconditioner, and
exact Gramian products (MATH.md §4–§6).

Modules, one job each:
    layout    W̃ = (W b) layer matrices, the column-stacking vec, parameter-vector conversions.
    jacobian  output gradients g, per-sample Jacobians Σ_s g Z̃ᵀ, the loss gradient.
    factors   KFAC-expand / KFAC-reduce factors A, B per term and layer.
    kron      EMA state, merging terms, the inverse of a sum of two Kronecker products.
    gramian   matrix-free vᵀGv and Gv, and the dense Gramian for small nets.
    learned   the learned PDE parameters' Jacobian, gradient and exact Gramian block.
"""

from .factors import (Approximation, CurvaturePass, KronFactors, compute_factors, curvature_pass,
                      expand_factors, reduce_factors, term_factors)
from .gramian import (dense_gramian, dense_gramian_blocks, gramian_matvec, gramian_quadratic_form,
                      gramian_quadratic_forms, linearized_jvp, linearized_matvec,
                      linearized_quadratic_forms, linearized_vjp, residual_function, residual_jvps,
                      term_jacobian_matrix)
from .jacobian import (Linearization, augment, linearize, loss_gradient, output_gradients,
                       per_sample_jacobians)
from .kron import (KronPreconditioner, KronSumInverse, congruence, default_groups, kron_sum_solve,
                   merge_factors)
from .learned import LearnedBlock, learned_gramian, learned_jacobian, learned_loss_gradient
from .layout import (add_to_parameters, flatten, layer_matrices, layer_shapes, matrices_to_params,
                     module_gradients, params_to_matrices, unflatten, unvec, vec)

__all__ = [
    "linearized_jvp", "linearized_vjp", "linearized_quadratic_forms", "linearized_matvec",
    "Approximation", "CurvaturePass", "KronFactors", "compute_factors", "curvature_pass",
    "expand_factors", "reduce_factors", "term_factors",
    "dense_gramian", "dense_gramian_blocks", "gramian_matvec", "gramian_quadratic_form",
    "gramian_quadratic_forms", "residual_function", "residual_jvps", "linearized_jvp",
    "linearized_vjp", "linearized_quadratic_forms", "linearized_matvec", "term_jacobian_matrix",
    "Linearization", "augment", "linearize", "loss_gradient", "output_gradients",
    "per_sample_jacobians",
    "KronPreconditioner", "KronSumInverse", "congruence", "default_groups", "kron_sum_solve",
    "merge_factors",
    "LearnedBlock", "learned_gramian", "learned_jacobian", "learned_loss_gradient",
    "add_to_parameters", "flatten", "layer_matrices", "layer_shapes", "matrices_to_params",
    "module_gradients", "params_to_matrices", "unflatten", "unvec", "vec",
]
