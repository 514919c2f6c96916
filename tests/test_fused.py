"""The bias inside the pointwise GEMM, the two orientations of the weight-gradient sum, the pointwise weight
gradient read in place, and the bias gradient by one GEMV: each against the plain computation and PyTorch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad import _geometry as geometry
from convgrad import engine, reference
from convgrad.engine import gemm, grid, pointwise
from strategies import Config, conv_configs


def _geometry(cfg: Config) -> geometry.Geometry:
    return geometry.conv_geometry(cfg.x_shape, cfg.w_shape, **cfg.kwargs())


def _pointwise(cfg: Config) -> Config:
    d = cfg.d
    return dataclasses.replace(cfg, kernel=(1,) * d, padding=0, lo=(0,) * d, hi=(0,) * d, padding_mode="zeros")


def _close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-12) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


# ----------------------------------------------------------------------------- bias in the pointwise GEMM


@pytest.mark.parametrize("one_gemm", [0, 10**9], ids=["per sample", "one GEMM"])
@given(cfg=conv_configs(max_kernel=1, max_groups=3, max_channels_per_group=3), seed=st.integers(0, 2**32 - 1),
       wide=st.booleans(), complex_=st.booleans())
def test_bias_in_the_pointwise_gemm(cfg: Config, seed: int, wide: bool, complex_: bool, one_gemm: int) -> None:
    """``[w | b] @ [x; 1]`` equals the product plus ``b``, on every stride, float64 and complex128; short samples
    (one channel-major GEMM) keep the separate add."""
    cfg = _pointwise(dataclasses.replace(cfg, c_out=cfg.groups * (2 * cfg.c_in + 1)) if wide else cfg)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pointwise, "ONE_GEMM_POSITIONS", one_gemm)
        _check_fused_bias(cfg, seed, complex_, fuses_at_all=one_gemm == 0)


def _check_fused_bias(cfg: Config, seed: int, complex_: bool, fuses_at_all: bool) -> None:
    geom = dataclasses.replace(_geometry(cfg), batched=True)
    rng = np.random.default_rng(seed)
    dtype = np.complex128 if complex_ else np.float64
    x = rng.standard_normal((cfg.n, cfg.c_in) + cfg.size).astype(dtype)
    w = rng.standard_normal(cfg.w_shape).astype(dtype)
    b = rng.standard_normal(cfg.c_out).astype(dtype)
    if complex_:
        x, b = x + 1j * rng.standard_normal(x.shape), b - 1j
    x0, w0, b0 = x.copy(), w.copy(), b.copy()
    expected = pointwise.pointwise_forward(x, w, geom) + b.reshape((-1,) + (1,) * cfg.d)
    if cfg.groups == 1:
        _close(pointwise.pointwise_forward_bias(x, w, b, geom), expected)
    _close(engine.forward_bias(x, w, b, geom), expected)
    if cfg.n:  # both layouts of the plain product and of the input gradient against the gemm route
        _close(pointwise.pointwise_forward(x, w, geom), gemm.gemm_forward(x, w, geom))
        g = rng.standard_normal((cfg.n, cfg.c_out) + geom.out_size).astype(dtype)
        _close(pointwise.pointwise_input_grad(g, w, geom), gemm.gemm_input_grad(g, w, geom))
    fuses = fuses_at_all and cfg.groups == 1 and not complex_ and (
        cfg.c_out >= 2 * cfg.c_in or any(s != 1 for s in geom.stride))
    assert pointwise.bias_fuses(geom, np.dtype(dtype)) == fuses
    for a, a0 in ((x, x0), (w, w0), (b, b0)):
        np.testing.assert_array_equal(a, a0)


@pytest.mark.parametrize(("x_shape", "w_shape", "stride"), [
    ((2, 3, 7, 5), (8, 3, 1, 1), 1), ((2, 3, 7, 5), (4, 3, 1, 1), 2), ((1, 4, 9), (9, 4, 1), 3),
    ((2, 2, 3, 3, 3), (5, 2, 1, 1, 1), 2), ((0, 3, 4, 4), (8, 3, 1, 1), 1),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("one_gemm", [0, 10**9], ids=["per sample", "one GEMM"])
def test_fused_bias_through_the_api_matches_torch(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: int,
                                                  dtype: Any, one_gemm: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pointwise, "ONE_GEMM_POSITIONS", one_gemm)
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, (w_shape[0],)))
    conv = {3: torch.nn.functional.conv1d, 4: torch.nn.functional.conv2d, 5: torch.nn.functional.conv3d}[len(x_shape)]
    ref = conv(*(torch.from_numpy(a.astype(np.float64)) for a in (x, w, b)), stride=stride).numpy()
    y = cg.conv(x, w, b, stride=stride)
    assert y.dtype == dtype and y.shape == ref.shape
    tol = {np.float16: 1e-2, np.float32: 1e-5, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)


def test_fused_bias_non_finite_matches_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """inf, −inf and NaN in the bias, NaN and inf in x: where PyTorch puts them, no warning."""
    monkeypatch.setattr(pointwise, "ONE_GEMM_POSITIONS", 0)  # this small case stands for long samples
    x = np.ones((1, 2, 3, 3), np.float32)
    x[0, 0, 1, 1], x[0, 1, 0, 2] = np.nan, np.inf
    w = np.ones((6, 2, 1, 1), np.float32)
    b = np.array([np.inf, np.nan, 1, 2, 3, -np.inf], np.float32)
    assert pointwise.bias_fuses(geometry.conv_geometry(x.shape, w.shape), np.dtype(np.float32))
    with np.errstate(all="raise"):
        y = cg.conv(x, w, b)
    ref = torch.nn.functional.conv2d(*(torch.from_numpy(a) for a in (x, w, b))).numpy()
    np.testing.assert_array_equal(y, ref)


def test_integer_bias_stays_exact() -> None:
    """Integer data never take the fused floating product: exact sums (as float64)."""
    big = 2**53
    x = np.full((1, 1, 2), 1, np.int64)
    w = np.array([[[1]], [[1]], [[1]]], np.int64)
    y = cg.conv(x, w, np.array([big, big, 1], np.int64))
    assert y.dtype == np.float64 and y[0, 0, 0] == float(big + 1) and y[0, 2, 0] == 2.0


# ----------------------------------------------------------------------------- weight-gradient orientation


@pytest.mark.parametrize("wide", [0, 10**9])
@settings(max_examples=40, deadline=None)
@given(cfg=conv_configs(max_kernel=3, max_groups=3), seed=st.integers(0, 2**32 - 1))
def test_weight_gradient_in_both_orientations(cfg: Config, seed: int, wide: int) -> None:
    """``(O/G, j)`` and ``(j, O/G)`` accumulation give the loop-level reference's gradient (gemm and grid)."""
    geom = dataclasses.replace(_geometry(cfg), batched=True)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg.n, cfg.c_in) + cfg.size)
    g = rng.standard_normal((cfg.n, cfg.c_out) + geom.out_size)
    expected = reference.conv_weight_grad(g, x, weight_shape=cfg.w_shape, **cfg.kwargs())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gemm, "WIDE_OUTPUT", wide)
        assert gemm.WeightSum(geom, np.dtype(np.float64)).wide == (geom.c_out // geom.groups >= wide)
        _close(gemm.gemm_weight_grad(g, x, geom), expected, 1e-10)
        if all(s == 1 for s in geom.stride):
            _close(grid.grid_weight_grad(g, x, geom), expected, 1e-10)


# ----------------------------------------------------------------------------- pointwise weight gradient


@pytest.mark.parametrize("per_sample", [0, 10**9])
@given(cfg=conv_configs(max_kernel=1, max_groups=3), seed=st.integers(0, 2**32 - 1), complex_=st.booleans())
def test_pointwise_weight_gradient_in_place_and_copied(cfg: Config, seed: int, per_sample: int,
                                                      complex_: bool) -> None:
    """One GEMM per sample on the operands in place, or one over the channel-major copy: the reference's numbers;
    a transposed (non-contiguous) ``x`` and ``g`` give the same, and neither is written."""
    cfg = _pointwise(cfg)
    geom = dataclasses.replace(_geometry(cfg), batched=True)
    rng = np.random.default_rng(seed)
    dtype = np.complex128 if complex_ else np.float64
    x = rng.standard_normal((cfg.n, cfg.c_in) + cfg.size).astype(dtype)
    g = rng.standard_normal((cfg.n, cfg.c_out) + geom.out_size).astype(dtype)
    if complex_:
        x, g = x * (1 + 2j), g * (1 - 1j)
    expected = gemm.gemm_weight_grad(g, x, geom)  # the engine's convention: no conjugation
    if not complex_:
        _close(expected, reference.conv_weight_grad(g, x, weight_shape=cfg.w_shape, **cfg.kwargs()), 1e-10)
    x_t = np.asfortranarray(x)  # other strides, same values
    x0, g0 = x.copy(), g.copy()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pointwise, "PER_SAMPLE_POSITIONS", per_sample)
        _close(pointwise.pointwise_weight_grad(g, x, geom), expected, 1e-10)
        _close(pointwise.pointwise_weight_grad(g, x_t, geom), expected, 1e-10)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(g, g0)


# ----------------------------------------------------------------------------- bias gradient


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.int64, np.float16])
@pytest.mark.parametrize("shape", [(2, 3, 5, 5), (0, 3, 4), (2, 0, 4), (2, 3, 0), (1, 2, 70000), (3, 4, 6, 7, 2),
                                   (2, 8, 2048)])  # the last: the GEMV (at least GEMV_MIN_ELEMENTS, short rows)
def test_bias_gradient(dtype: Any, shape: tuple[int, ...]) -> None:
    """The GEMV against ones (rows up to GEMV_POSITIONS) and the reduction: float64 sums, every dtype and size."""
    rng = np.random.default_rng(0)
    g = (rng.standard_normal(shape) * 10).astype(dtype)
    expected = g.astype(np.complex128 if np.dtype(dtype).kind == "c" else np.float64).sum(
        axis=(0,) + tuple(range(2, len(shape))))
    for view in (g, g[:, :, ::-1]):  # a negative-stride view too
        got = cg.conv_bias_grad(view)
        assert got.shape == (shape[1],)
        if view.dtype.kind in "fc" and view.dtype.itemsize >= 4:  # the reduction without the BLAS (depthwise)
            np.testing.assert_allclose(engine.bias_grad(view, blas=False),
                                       got, rtol=1e-5, atol=1e-5 * (1 + np.abs(expected).max(initial=0)))
        tol = {"float16": 5e-2, "float32": 1e-5, "complex64": 1e-5}.get(np.dtype(dtype).name, 1e-12)
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * (1 + np.abs(expected).max(initial=0)))


def test_bias_gradient_non_finite_and_long_rows() -> None:
    g = np.ones((2, 3, 8), np.float32)
    g[0, 0, 1], g[1, 1, 2], g[0, 1, 3], g[1, 2, 0] = np.inf, np.inf, -np.inf, np.nan
    with np.errstate(all="raise"):
        got = engine.bias_grad(g)
    ref = torch.from_numpy(g).sum(dim=(0, 2)).numpy()
    np.testing.assert_array_equal(got, ref)  # inf, inf − inf = NaN, NaN
    long = np.full((1, 1, engine.GEMV_POSITIONS + 1), 0.1, np.float32)  # past the GEMV: the pairwise reduction
    assert abs(float(engine.bias_grad(long)[0]) - 0.1 * long.size) < 1e-6 * long.size


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_bias_gradient_non_finite_at_gemv_size(dtype: Any) -> None:
    """inf, −inf and NaN in a gradient large enough for the GEMV: PyTorch's sums; complex inf + 0j stays
    inf + 0j (a product by 1 + 0j would make its imaginary part NaN), and non-contiguous views give the same."""
    g = np.zeros((2, 4, 4096), dtype)
    assert g.size >= engine.GEMV_MIN_ELEMENTS and g.shape[2] <= engine.GEMV_POSITIONS
    g[0, 0, 5], g[1, 1, 7], g[0, 1, 9], g[1, 2, 0], g[0, 3, 3] = np.inf, np.inf, -np.inf, np.nan, 2.5
    ref = torch.from_numpy(g).sum(dim=(0, 2)).numpy()
    with np.errstate(all="raise"):
        for view in (g, np.asfortranarray(g), g[:, :, ::-1]):
            got = engine.bias_grad(view)
            np.testing.assert_array_equal(got, ref)
            np.testing.assert_array_equal(cg.conv_bias_grad(view), ref)


def test_complex_bias_stays_out_of_the_gemm() -> None:
    """A complex bias of inf + 0j is added, not multiplied by 1 + 0j inside the product: the imaginary part stays
    finite, as with PyTorch's separate add."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 40, 40)) + 1j * rng.standard_normal((1, 2, 40, 40))
    w = rng.standard_normal((8, 2, 1, 1)) + 0j
    b = np.array([np.inf + 0j] + [0j] * 7)
    assert not pointwise.bias_fuses(geometry.conv_geometry(x.shape, w.shape, stride=2), np.dtype(np.complex128))
    y = cg.conv(x, w, b, stride=2)
    assert np.isposinf(y[0, 0].real).all() and np.isfinite(y[0, 0].imag).all()
    np.testing.assert_allclose(y[0, 1:], cg.conv(x, w, stride=2)[0, 1:])


def test_forward_bias_promotes_a_wider_bias() -> None:
    """Called directly with a complex bias on real data, the engine adds it in the wider dtype."""
    x, w = np.ones((1, 2, 5)), np.ones((3, 2, 2))
    geom = geometry.conv_geometry(x.shape, w.shape)
    y = engine.forward_bias(x, w, np.array([1j, 0, 0]), geom)
    assert y.dtype == np.complex128 and y[0, 0, 0] == 4 + 1j
