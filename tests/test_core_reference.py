"""convgrad against the slow loop reference (d = 1..4), the dot-product test and finite differences."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import convgrad as cg
from reference import ref_conv, ref_conv_grads
from strategies import Config, conv_configs


def _batched(cfg: Config, a: np.ndarray) -> np.ndarray:
    return a if cfg.batched else a[None]


@given(
    cfg=conv_configs(dims=(1, 2, 3, 4), max_kernel=2, max_extra=2, max_batch=2, max_groups=2, max_dilation=2),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_loop_reference_up_to_4d(cfg: Config, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, w, b = cfg.arrays(rng)
    kw = dict(stride=cfg.stride_t, lo=cfg.lo, hi=cfg.hi, dilation=cfg.dilation_t, groups=cfg.groups, mode=cfg.mode)
    y_ref = ref_conv(_batched(cfg, x), w, b, **kw)
    y = cg.conv(x, w, b, **cfg.kwargs())
    np.testing.assert_allclose(_batched(cfg, y), y_ref, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    gx_ref, gw_ref, gb_ref = ref_conv_grads(_batched(cfg, g), _batched(cfg, x), w, **kw)
    grads = cg.conv_backward(g, x, w, **cfg.kwargs())
    np.testing.assert_allclose(_batched(cfg, grads.input), gx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads.weight, gw_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads.bias, gb_ref, rtol=1e-12, atol=1e-12)


def _inner(a: np.ndarray, b: np.ndarray) -> complex:
    """⟨a, b⟩ = Σ conj(a)·b."""
    return complex(np.vdot(a, b))


@given(cfg=conv_configs(dims=(1, 2, 3, 4), max_extra=3), seed=st.integers(0, 2**32 - 1), cplx=st.booleans())
def test_dot_product_adjoint_identities(cfg: Config, seed: int, cplx: bool) -> None:
    """⟨conv(x, w), g⟩ = ⟨x, conv_input_grad(g, w)⟩ = ⟨w, conv_weight_grad(g, x)⟩ (bias-free)."""
    rng = np.random.default_rng(seed)
    x, w, _ = cfg.arrays(rng)
    if cplx:
        x = x + 1j * rng.standard_normal(x.shape)
        w = w + 1j * rng.standard_normal(w.shape)
    kw = cfg.kwargs()
    y = cg.conv(x, w, **kw)
    g = rng.standard_normal(y.shape) + (1j * rng.standard_normal(y.shape) if cplx else 0)
    lhs = _inner(y, g)
    gx = cg.conv_input_grad(g, w, input_shape=x.shape, **kw)
    # gw is the adjoint in w of w ↦ conv(x, w); for complex data, of the conjugate-linear map's partner:
    gw = cg.conv_weight_grad(g, x, weight_shape=w.shape, **kw)
    scale = max(1.0, float(np.abs(y).sum() * np.abs(g).max()))
    assert abs(lhs - _inner(x, gx)) <= 1e-12 * scale
    assert abs(lhs - _inner(w, gw)) <= 1e-12 * scale


@given(cfg=conv_configs(dims=(1, 2), max_channels_per_group=1, max_extra=2, max_batch=2), seed=st.integers(0, 2**32 - 1))
def test_central_finite_differences_float64(cfg: Config, seed: int) -> None:
    """Every gradient entry against (L(θ + ε) − L(θ − ε)) / 2ε, L = ⟨conv(x, w, b), g⟩, ε = 1e-6."""
    rng = np.random.default_rng(seed)
    x, w, b = cfg.arrays(rng)
    kw = cfg.kwargs()
    g = rng.standard_normal(cg.conv(x, w, b, **kw).shape)
    grads = cg.conv_backward(g, x, w, **kw)
    eps = 1e-6
    for which, analytic in ((0, grads.input), (1, grads.weight), (2, grads.bias)):
        args = [x, w, b]
        numeric = np.empty(args[which].shape)
        for idx in np.ndindex(*args[which].shape):
            plus = [a.copy() for a in args]
            minus = [a.copy() for a in args]
            plus[which][idx] += eps
            minus[which][idx] -= eps
            numeric[idx] = (np.vdot(cg.conv(*plus, **kw), g) - np.vdot(cg.conv(*minus, **kw), g)) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)
