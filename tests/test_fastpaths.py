"""The fast routes (pointwise, depthwise, FFT, small-problem shortcuts) against the general route and PyTorch.

Each route is driven by hypothesis over the configurations that trigger it,
compared with the general im2col + GEMM route on the same geometry (float64
and complex128) and, through the public API, with PyTorch float64 autograd.
The edges of the selection rule are tested on their own.
"""

from __future__ import annotations

import dataclasses
import threading
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import convgrad as cg
from convgrad import _geometry as geometry
from convgrad._arguments import METHODS
from convgrad.engine import (
    blas,
    cost,
    depthwise,
    dispatch,
    fft,
    gemm,
    grid,
    implicit,
    jit,
    padding,
    pointwise,
    small,
    state,
    taps,
    windows,
)
from strategies import Config, conv_configs
from torch_ref import torch_conv, torch_conv_transpose


@pytest.fixture(autouse=True)
def _numpy_routes(monkeypatch: pytest.MonkeyPatch) -> Any:
    """These tests are about the NumPy routes and their rule: the optional compiled routes, and the implicit route
    (tests/test_implicit.py), stay out of it."""
    monkeypatch.setattr(jit, "choose", lambda *args, **kwargs: None)
    monkeypatch.setattr(jit, "choose_direct", lambda *args, **kwargs: None)
    monkeypatch.setattr(implicit, "choose", lambda *args, **kwargs: None)
    state.clear_caches()
    yield
    state.clear_caches()

GENERAL = (gemm.gemm_forward, gemm.gemm_input_grad, gemm.gemm_weight_grad)
ROUTES = {
    "pointwise": (pointwise.pointwise_forward, pointwise.pointwise_input_grad, pointwise.pointwise_weight_grad),
    "depthwise": (depthwise.depthwise_forward, depthwise.depthwise_input_grad, depthwise.depthwise_weight_grad),
    "fft": (fft.fft_forward, fft.fft_input_grad, fft.fft_weight_grad),
    "grid": (grid.grid_forward, grid.grid_input_grad, grid.grid_weight_grad),
    "small": (small.small_forward, small.small_input_grad, small.small_weight_grad),
    "taps": (taps.taps_forward, taps.taps_input_grad, taps.taps_weight_grad),
}


def use_grid(geom: geometry.Geometry) -> bool:
    return dispatch.grid_applies(geom, 8, cg.get_workspace_budget())


def _geometry(cfg: Config) -> geometry.Geometry:
    return geometry.conv_geometry(cfg.x_shape, cfg.w_shape, **cfg.kwargs())


def _close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-10) -> None:
    """Agreement relative to the reference's scale (FFT rounding is spread over the whole result)."""
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


def _same_values(got: np.ndarray, ref: np.ndarray, tol: float) -> None:
    """The same shape, dtype, NaN and infinity pattern, and the finite entries within ``tol``."""
    assert got.shape == ref.shape and got.dtype == ref.dtype, (got.shape, ref.shape, got.dtype, ref.dtype)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=tol, atol=tol)


def _depthwise_against_general(x: np.ndarray, w: np.ndarray, g: np.ndarray, geom: geometry.Geometry,
                               tol: float) -> None:
    """The depthwise route's three contractions against the general route's, NaN and infinity included."""
    ours = (depthwise.depthwise_forward(x, w, geom), depthwise.depthwise_input_grad(g, w, geom),
            depthwise.depthwise_weight_grad(g, x, geom))
    refs = (GENERAL[0](x, w, geom), GENERAL[1](g, w, geom), GENERAL[2](g, x, geom))
    for got, ref in zip(ours, refs):
        _same_values(got, ref, tol)


def _against_general(cfg: Config, name: str, seed: int, dtype: Any) -> None:
    """The route's three contractions equal the general route's on the batched geometry."""
    rng = np.random.default_rng(seed)
    geom = dataclasses.replace(_geometry(cfg), batched=True)
    x = rng.standard_normal((cfg.n, cfg.c_in) + cfg.size).astype(dtype)
    w = rng.standard_normal(cfg.w_shape).astype(dtype)
    g = rng.standard_normal((cfg.n, cfg.c_out) + geom.out_size).astype(dtype)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(x.shape)
        g = g - 1j * rng.standard_normal(g.shape)
    fwd, gin, gwt = ROUTES[name]
    _close(fwd(x, w, geom), GENERAL[0](x, w, geom))
    _close(gin(g, w, geom), GENERAL[1](g, w, geom))
    _close(gwt(g, x, geom), GENERAL[2](g, x, geom))


def _against_torch(cfg: Config, seed: int, method: str = "auto") -> None:
    """Public API (forward and all three gradients) against PyTorch float64 autograd."""
    rng = np.random.default_rng(seed)
    x, w, b = cfg.arrays(rng)
    y = cg.conv(x, w, b, **cfg.kwargs(), method=method)
    g = rng.standard_normal(y.shape)
    y_ref, gx_ref, gw_ref, gb_ref = torch_conv(cfg, x, w, b, g)
    grads = cg.conv_backward(g, x, w, **cfg.kwargs(), method=method)
    for ours, ref in zip((y, *grads), (y_ref, gx_ref, gw_ref, gb_ref)):
        _close(ours, ref)


def pointwise(cfg: Config) -> Config:
    """The same configuration with 1×1 kernels and no padding."""
    d = cfg.d
    return dataclasses.replace(cfg, kernel=(1,) * d, padding=0, lo=(0,) * d, hi=(0,) * d)


# ----------------------------------------------------------------------------- the rule


@given(cfg=conv_configs(max_kernel=2, max_channels_per_group=2, max_groups=3))
def test_route_rule(cfg: Config) -> None:
    """pointwise iff every kernel is 1 and nothing is padded; depthwise iff G == C == O > 1 (all three
    contractions, any stride, where its phase grids are not mostly junk)."""
    geom = _geometry(cfg)
    f64 = np.dtype(np.float64)
    pointwise_ = all(k == 1 for k in cfg.kernel) and not (any(cfg.lo) or any(cfg.hi))
    is_dw = cfg.c_in == cfg.c_out == cfg.groups > 1
    for op in ("forward", "input", "weight"):
        expected = (
            "pointwise" if pointwise_
            else "small" if geom.n * geom.c_in * np.prod(geom.kernel) * np.prod(geom.out_size) <= 4096
            else "depthwise" if is_dw and depthwise.applies(geom)
            else "grid" if use_grid(geom) and cfg.d >= 2 and op != "weight"  # dense: forward and input, 2-d and up
            else "gemm"
        )
        assert dispatch.route(geom, f64, "direct", op) == expected
        assert dispatch.route(geom, f64, "fft", op) == "fft"
        # kernels of at most 8 taps are never sent to the FFT by the cost model
        assert dispatch.route(geom, f64, "auto", op) == expected


def test_auto_picks_fft_for_large_kernels_only() -> None:
    large = geometry.conv_geometry((8, 64, 4096), (64, 64, 63), padding=31)
    large_2d = geometry.conv_geometry((8, 32, 64, 64), (32, 32, 15, 15), padding=7)
    small = geometry.conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    tiny_large_kernel = geometry.conv_geometry((1, 1, 20), (1, 1, 15))
    f32 = np.dtype(np.float32)
    assert dispatch.route(large, f32) == "fft" and dispatch.route(large_2d, f32) == "fft"
    assert dispatch.route(small, f32) not in ("fft", "gemm")  # the grid, or Winograd where it is cheaper
    assert dispatch.route(small, f32, "direct") == "grid"
    assert dispatch.route(tiny_large_kernel, f32) == "small"  # below MIN_DIRECT_COST (and SMALL_WINDOWS)
    assert dispatch.route(large, f32, "direct") == "gemm"  # 1-d: the grid route is for 2-d and up
    assert dispatch.route(small, f32, "direct", "weight") == "gemm"  # measured faster than the grid's
    assert cost.fft_cost(large) < cost.gemm_cost(large)
    assert cost.fft_cost(small) > cost.gemm_cost(small)


@given(n=st.integers(1, 3000))
def test_fast_length_is_the_smallest_5_smooth_length(n: int) -> None:
    def smooth(m: int) -> bool:
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1

    length = cost.fast_length(n)
    assert length >= n and smooth(length)
    assert not any(smooth(m) for m in range(n, length))


def test_fft_plan_blocks_cover_the_output() -> None:
    geom = geometry.conv_geometry((8, 64, 4096), (64, 64, 63), padding=31)
    plan = cost.plan(geom)
    assert plan.block[0] >= 2 * 63 - 1 and plan.step[0] == plan.block[0] - 62
    assert plan.blocks((4096,))[0] * plan.step[0] >= 4096


# ----------------------------------------------------------------------------- each route vs the general route


@given(cfg=conv_configs(max_stride=3, max_groups=3, max_channels_per_group=3), seed=st.integers(0, 2**32 - 1))
def test_pointwise_matches_general_route(cfg: Config, seed: int) -> None:
    _against_general(pointwise(cfg), "pointwise", seed, np.float64)


@given(cfg=conv_configs(max_kernel=4, max_groups=5, max_channels_per_group=1), seed=st.integers(0, 2**32 - 1))
def test_depthwise_matches_general_route(cfg: Config, seed: int) -> None:
    _against_general(cfg, "depthwise", seed, np.float64)


@given(cfg=conv_configs(max_kernel=4, max_groups=5, max_channels_per_group=1), seed=st.integers(0, 2**32 - 1))
def test_depthwise_matches_general_route_complex(cfg: Config, seed: int) -> None:
    _against_general(cfg, "depthwise", seed, np.complex128)


@given(cfg=conv_configs(max_kernel=4, max_stride=3, max_groups=6, max_channels_per_group=1),
       seed=st.integers(0, 2**32 - 1))
def test_depthwise_route_matches_torch(cfg: Config, seed: int) -> None:
    """The public API on the depthwise route (the small route's threshold lifted so that these small layers take
    it): forward pass and all three gradients against PyTorch float64 autograd, every stride, dilation, padding
    form and mode."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(small, "SMALL_WINDOWS", -1)
        state.clear_caches()
        geom = _geometry(cfg)
        pointwise_ = all(k == 1 for k in cfg.kernel) and not (any(cfg.lo) or any(cfg.hi))
        if dispatch.is_depthwise(geom) and not pointwise_ and depthwise.applies(geom):
            assert {dispatch.route(geom, np.dtype(np.float64), "auto", op) for op in ("forward", "input", "weight")} \
                == {"depthwise"}
        _against_torch(cfg, seed)
    state.clear_caches()


@pytest.mark.parametrize(("x_shape", "kernel", "kw"), [
    ((2, 3, 9, 8), (3, 3), {"stride": (2, 3), "dilation": (2, 1), "padding": ((-1, 2), (1, -1))}),  # crops
    ((0, 3, 9, 8), (3, 3), {"stride": 2, "padding": 1}),  # no samples
    ((2, 3, 17), (3,), {"stride": 3, "dilation": 2, "padding": 2, "padding_mode": "reflect"}),
    ((1, 2, 7, 6, 9), (2, 3, 3), {"stride": (2, 1, 3), "padding": 1, "padding_mode": "circular"}),
    ((2, 3, 11, 11), (2, 2), {"stride": 4, "padding": 1}),  # half the phases read by no offset
    ((2, 3, 5, 5), (3, 3), {"stride": 2, "padding": 3}),  # phases that miss the input
    # stride 1 along the last dimension: banded where forced
    ((2, 3, 9, 8), (3, 3), {"stride": (2, 1), "dilation": 2, "padding": ((-1, 2), (1, -1))}),  # crops
    ((3, 2, 8, 9), (3, 3), {"padding": ((0, -1), (-1, 0))}),
    ((0, 3, 9, 8), (3, 3), {"padding": 1}),  # no samples
    ((2, 3, 17), (3,), {"dilation": 3, "padding": 3, "padding_mode": "reflect"}),
    ((1, 2, 7, 6, 9), (2, 3, 3), {"stride": (2, 3, 1), "dilation": (1, 1, 2), "padding": 2,
                                  "padding_mode": "circular"}),
    ((2, 3, 6, 7), (3, 3), {"dilation": (1, 2), "padding": 1, "padding_mode": "replicate"}),
    ((2, 3, 9), (2,), {"dilation": 4, "padding": 1}),  # one output per row
])
@pytest.mark.parametrize("form", ["rows", "banded wherever it applies"])
def test_depthwise_edge_geometries(x_shape: tuple[int, ...], kernel: tuple[int, ...], kw: dict[str, Any], form: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Crops, an empty batch, 1-d and 3-d with other padding modes, dilation along the rows, one output per row,
    offsets that read only some of the phases: the three contractions equal the general route's, NaN and infinity
    included, on the rows' multiply-adds and with banded matrices wherever the last dimension has stride 1."""
    monkeypatch.setattr(depthwise, "BAND_ROW", 0 if form == "rows" else 1 << 20)
    monkeypatch.setattr(depthwise, "BAND_MIN_ROWS", 0)
    c = x_shape[1]
    geom = geometry.conv_geometry(x_shape, (c, 1) + kernel, groups=c, **kw)
    assert depthwise.banded(geom, np.dtype(np.float64)) == (form != "rows" and geom.stride[-1] == 1 and kernel[-1] > 1)
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(x_shape), rng.standard_normal((c, 1) + kernel)
    g = rng.standard_normal(geom.output_shape)
    for bad in (None, "nonfinite"):
        if bad and x.size:
            x.flat[x.size // 2], w.flat[0] = np.nan, np.inf
        _depthwise_against_general(x, w, g, geom, 1e-12)


def test_depthwise_banded_fallback_warns_as_the_rows_do() -> None:
    """An infinity in ``x`` meets a band's zeros (``inf · 0``: NaN, an "invalid value" warning); that product is not
    returned and warns nowhere, and the multiply-adds give ``inf`` where the direct route does, with no warning."""
    geom = geometry.conv_geometry((8, 4, 6, 7), (4, 1, 3, 3), padding=1, groups=4)
    assert depthwise.banded(geom, np.dtype(np.float64))
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal(geom.input_shape), rng.uniform(0.5, 1.0, geom.weight_shape)
    x[1, 2, 3, 4] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = depthwise.depthwise_forward(x, w, geom)
    assert np.isposinf(y[1, 2, 2:5, 3:6]).all() and np.isfinite(np.delete(y, 2, axis=1)).all()
    _same_values(y, GENERAL[0](x, w, geom), 1e-12)


def test_depthwise_phase_plan() -> None:
    """Stride 2: the four phases of the padded input, each offset's phase and shift on it; the layers whose phase
    grids are mostly junk (a widely dilated kernel over a small input) are left to the gemm route."""
    geom = geometry.conv_geometry((2, 4, 9, 9), (4, 1, 3, 3), stride=2, padding=1, groups=4)
    p = depthwise.plan(geom)
    assert p.size == (6, 6) and p.phases == ((0, 0), (0, 1), (1, 0), (1, 1))
    # offset (kh, kw) reads phase (kh % 2, kw % 2) at (kh // 2, kw // 2)
    assert p.phase_of == (0, 1, 0, 2, 3, 2, 0, 1, 0)
    assert p.offset == (0, 0, 1, 0, 0, 1, 6, 6, 7)
    assert p.shifts(72) == (0, 72, 1, 144, 216, 145, 6, 78, 7)
    dilated = geometry.conv_geometry((2, 4, 9, 9), (4, 1, 3, 3), stride=2, dilation=2, padding=2, groups=4)
    assert depthwise.plan(dilated).phases == ((0, 0),)  # 2·k is even: every offset reads the even positions
    assert depthwise.applies(geom) and depthwise.applies(dilated)
    padded = geometry.conv_geometry((2, 4, 3, 3), (4, 1, 3, 3), padding=4, groups=4)  # 11² grid for 9² outputs
    assert depthwise.applies(padded)
    sparse = geometry.conv_geometry((2, 64, 20, 20), (64, 1, 3, 3), dilation=8, groups=64)  # 20² grid, 4² outputs
    assert not depthwise.applies(sparse)
    assert [dispatch.route(sparse, np.dtype(np.float64), "direct", op) for op in ("forward", "input", "weight")] == \
        ["gemm"] * 3


@given(
    cfg=conv_configs(max_kernel=3, max_groups=6, max_channels_per_group=1),
    seed=st.integers(0, 2**32 - 1),
    block=st.sampled_from([1, 300, 1 << 20]),
    bad=st.sampled_from([None, "x", "w"]),
    value=st.sampled_from([np.nan, np.inf]),
    band_row=st.sampled_from([0, 1 << 20]),
)
def test_depthwise_blocks_of_channels(cfg: Config, seed: int, block: int, bad: str | None, value: float,
                                      band_row: int) -> None:
    """Blocks of one channel, of a few and of all of them give the general route's results, on the pool's threads
    too, at every stride, with the rows' multiply-adds and with banded matrices wherever they apply; a NaN or an
    infinity in one channel's input or kernel lands where the general route puts it."""
    rng = np.random.default_rng(seed)
    geom = dataclasses.replace(_geometry(cfg), batched=True)
    x = rng.standard_normal((cfg.n, cfg.c_in) + cfg.size)
    w = rng.standard_normal(cfg.w_shape)
    g = rng.standard_normal((cfg.n, cfg.c_out) + geom.out_size)
    c = int(rng.integers(cfg.c_in))
    if bad == "x":
        x[(int(rng.integers(cfg.n)), c) + tuple(int(rng.integers(s)) for s in cfg.size)] = value
    elif bad == "w":
        w[(c, 0) + tuple(int(rng.integers(k)) for k in cfg.kernel)] = value
    x0, w0, g0 = x.copy(), w.copy(), g.copy()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(depthwise, "BLOCK_BYTES", block)
        mp.setattr(depthwise, "BAND_ROW", band_row)
        mp.setattr(depthwise, "BAND_MIN_ROWS", 0)
        mp.setattr(state, "PARALLEL_MIN_ELEMENTS", 0)  # every call split over the threads
        _depthwise_against_general(x, w, g, geom, 1e-10)
    assert np.array_equal(x, x0, equal_nan=True) and np.array_equal(w, w0, equal_nan=True) and np.array_equal(g, g0)


def test_depthwise_banded_rule() -> None:
    """Banded matrices for short rows of a stride-1 last dimension with two or more taps, float32/float64 only."""
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)

    def geom(size: int, kernel: tuple[int, ...] = (3, 3), n: int = 8, **kw: Any) -> geometry.Geometry:
        return geometry.conv_geometry((n, 16, size, size), (16, 1) + kernel, groups=16, padding=1, **kw)

    assert depthwise.banded(geom(14), f32) and depthwise.banded(geom(19), f64)  # 16 and 21 positions a row
    assert not depthwise.banded(geom(20), f32)  # 22 positions: more than 7 per tap
    assert depthwise.banded(geom(33, (5, 5)), f32) and not depthwise.banded(geom(34, (5, 5)), f32)  # 35, 36
    # rows: N·16 of them at 14², against 3·14 columns of the bands
    assert depthwise.banded(geom(14, n=3), f32) and not depthwise.banded(geom(14, n=2), f32)
    assert depthwise.banded(geom(14, stride=(2, 1)), f32)  # the leading dimension's phases: shifts of rows
    assert not depthwise.banded(geom(14, stride=(1, 2)), f32)
    assert not depthwise.banded(geom(14, (3, 1)), f32)  # one tap along the rows
    for dtype in (np.float16, np.complex64, np.complex128, np.int64):
        assert not depthwise.banded(geom(14), np.dtype(dtype))


@pytest.mark.parametrize("bad", [None, "x", "w", "g"])
def test_depthwise_banded_results_only_where_finite(monkeypatch: pytest.MonkeyPatch, bad: str | None) -> None:
    """The forward pass and the input gradient take the banded products; where one of their results is not finite
    (a NaN or an infinity met a band's zeros, which spreads it along the row) they are dropped and the rows'
    multiply-adds compute that contraction from there on: the general route's values, NaN and infinity included."""
    taken: list[bool] = []
    multiply = depthwise.multiply_bands

    def spy(*args: Any) -> np.ndarray | None:
        result = multiply(*args)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(depthwise, "multiply_bands", spy)
    geom = geometry.conv_geometry((8, 5, 8, 9), (5, 1, 3, 3), stride=(2, 1), padding=1, groups=5)
    assert depthwise.banded(geom, np.dtype(np.float64))
    rng = np.random.default_rng(4)
    x, w, g = rng.standard_normal(geom.input_shape), rng.standard_normal(geom.weight_shape), \
        rng.standard_normal(geom.output_shape)
    if bad:
        {"x": x, "w": w, "g": g}[bad].flat[7] = np.inf
    _depthwise_against_general(x, w, g, geom, 1e-12)
    # the forward pass, then one product per phase of the input gradient (the two row phases of stride 2) until one
    # is dropped
    assert taken == {None: [True, True, True], "x": [False, True, True], "w": [False, False],
                     "g": [True, False]}[bad]


@given(cfg=conv_configs(max_kernel=4, max_groups=4), seed=st.integers(0, 2**32 - 1), complex_=st.booleans())
def test_small_matches_general_route(cfg: Config, seed: int, complex_: bool) -> None:
    """Every geometry (the route itself does not look at the size), float64 and complex128."""
    _against_general(cfg, "small", seed, np.complex128 if complex_ else np.float64)


@given(cfg=conv_configs(dims=(1,), max_kernel=5, max_groups=1), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float64, np.complex128, "float64 without the direct BLAS"]))
def test_taps_matches_general_route(cfg: Config, seed: int, dtype: Any) -> None:
    """Every 1-d stride-1 ``groups=1`` geometry (the route itself does not look at the size or tap count), every
    padding mode: float64 (each tap added into the result by the BLAS), complex128 and float64 with the direct
    BLAS switched off (a product per tap and an add)."""
    with pytest.MonkeyPatch.context() as mp:
        if isinstance(dtype, str):
            mp.setattr(blas, "ENABLED", False)
            dtype = np.float64
        _against_general(dataclasses.replace(cfg, stride=1), "taps", seed, dtype)


def test_taps_sum_in_the_blas_only_below_its_integer_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The BLAS takes 32-bit sizes: a longer row takes the product-and-add path, with the same numbers."""
    f32 = np.dtype(np.float32)
    huge = geometry.conv_geometry((1, 2, 1 << 31), (2, 2, 2))
    assert taps.applies(huge) and not taps.sums_in_blas(huge, f32)
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 300)), rng.standard_normal((4, 3, 3))
    geom = geometry.conv_geometry(x.shape, w.shape, padding=2, dilation=2)
    g = rng.standard_normal(geom.output_shape)
    assert taps.sums_in_blas(geom, np.dtype(np.float64)) == blas.available(np.float64)
    fast = taps.taps_forward(x, w, geom), taps.taps_input_grad(g, w, geom)
    monkeypatch.setattr(blas, "INDEX_LIMIT", 300)
    assert not taps.sums_in_blas(geom, np.dtype(np.float64))
    for got, want in zip((taps.taps_forward(x, w, geom), taps.taps_input_grad(g, w, geom)), fast):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_taps_rule_and_the_wavenet_layer_against_torch() -> None:
    """Where the rule sends a layer to the taps route, and one such layer through the API against PyTorch."""
    f64 = np.dtype(np.float64)
    wavenet = geometry.conv_geometry((1, 32, 16384), (32, 32, 2), dilation=4)
    assert [dispatch.route(wavenet, f64, "direct", op) for op in ("forward", "input", "weight")] == ["taps"] * 3
    for other in (geometry.conv_geometry((1, 32, 16384), (32, 32, 4)),  # 4 taps: im2col
                  geometry.conv_geometry((1, 32, 100), (32, 32, 2)),  # 99 outputs per sample
                  geometry.conv_geometry((1, 32, 1000), (32, 32, 2), stride=2),
                  geometry.conv_geometry((1, 32, 1000), (32, 16, 2), groups=2),
                  geometry.conv_geometry((1, 32, 30, 30), (32, 32, 2, 1))):  # 2-d
        assert not taps.applies(other)
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((2, 4, 700)), rng.standard_normal((3, 4, 3)), rng.standard_normal(3)
    kw = {"padding": 2, "dilation": 3, "padding_mode": "reflect"}
    assert taps.applies(geometry.conv_geometry(x.shape, w.shape, **kw))
    g = rng.standard_normal((2, 3, 700 + 4 - 6))
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv1d(torch.nn.functional.pad(xt, (2, 2), mode="reflect"), wt, bt, dilation=3)
    refs = [yt.detach().numpy(), *(t.numpy() for t in torch.autograd.grad(yt, (xt, wt, bt), torch.tensor(g)))]
    ours = [cg.conv(x, w, b, **kw), *cg.conv_backward(g, x, w, **kw)]
    for got, ref in zip(ours, refs):
        _close(got, ref)


@given(cfg=conv_configs(max_kernel=4), seed=st.integers(0, 2**32 - 1), complex_=st.booleans())
def test_grid_matches_general_route(cfg: Config, seed: int, complex_: bool) -> None:
    _against_general(dataclasses.replace(cfg, stride=1), "grid", seed, np.complex128 if complex_ else np.float64)


@given(cfg=conv_configs(max_kernel=4), seed=st.integers(0, 2**32 - 1))
def test_grid_matches_torch(cfg: Config, seed: int) -> None:
    """Stride-1 configurations, the size threshold lifted so that small ones take the grid route too."""
    cfg = dataclasses.replace(cfg, stride=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cost, "GRID_MIN_ELEMENTS", 0)
        mp.setattr(cost, "grid_cost", lambda geom: 0.0)  # grid wherever it applies
        mp.setattr(dispatch, "grid_op", lambda geom, op: True)
        mp.setattr(small, "SMALL_WINDOWS", -1)
        state.clear_caches()  # the route is remembered per geometry
        if not (all(k == 1 for k in cfg.kernel) and not (any(cfg.lo) or any(cfg.hi))):
            dw = dispatch.is_depthwise(_geometry(cfg)) and depthwise.applies(_geometry(cfg))
            assert dispatch.route(_geometry(cfg), np.dtype(np.float64)) == ("depthwise" if dw else "grid")
        _against_torch(cfg, seed, method="direct")
    state.clear_caches()


def test_grid_route_threshold() -> None:
    small = geometry.conv_geometry((1, 1, 5, 5), (1, 1, 3, 3))
    large = geometry.conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    strided = geometry.conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), padding=1, stride=(1, 2))
    assert not use_grid(small) and use_grid(large) and not use_grid(strided)


@given(cfg=conv_configs(max_kernel=5), seed=st.integers(0, 2**32 - 1), complex_=st.booleans())
def test_fft_matches_general_route(cfg: Config, seed: int, complex_: bool) -> None:
    _against_general(cfg, "fft", seed, np.complex128 if complex_ else np.float64)


@given(seed=st.integers(0, 2**32 - 1), complex_=st.booleans())
def test_depthwise_and_pointwise_complex(seed: int, complex_: bool) -> None:
    dtype = np.complex128 if complex_ else np.float64
    depthwise = Config(2, 2, True, 3, 3, 3, (3, 2), (5, 6), (2, 1), (1, 2), ((1, 0), (2, 1)), (1, 2), (0, 1), "zeros")
    _against_general(depthwise, "depthwise", seed, dtype)
    one_by_one = Config(1, 3, True, 2, 4, 6, (1,), (7,), 2, 1, 0, (0,), (0,), "zeros")
    _against_general(one_by_one, "pointwise", seed, dtype)


# ----------------------------------------------------------------------------- each route vs PyTorch


@given(cfg=conv_configs(max_stride=3, max_groups=3), seed=st.integers(0, 2**32 - 1))
def test_pointwise_matches_torch(cfg: Config, seed: int) -> None:
    cfg = pointwise(cfg)
    assert dispatch.route(_geometry(cfg), np.dtype(np.float64)) == "pointwise"
    _against_torch(cfg, seed)


@given(cfg=conv_configs(max_kernel=4, max_groups=5, max_channels_per_group=1), seed=st.integers(0, 2**32 - 1))
def test_depthwise_matches_torch(cfg: Config, seed: int) -> None:
    _against_torch(cfg, seed)


@given(cfg=conv_configs(max_kernel=5), seed=st.integers(0, 2**32 - 1))
def test_fft_matches_torch(cfg: Config, seed: int) -> None:
    _against_torch(cfg, seed, method="fft")


@given(
    d=st.integers(1, 2), stride=st.integers(1, 3), dilation=st.integers(1, 2), groups=st.integers(1, 2),
    kernel=st.integers(1, 4), size=st.integers(1, 5), pad=st.integers(0, 2), data=st.data(),
    method=st.sampled_from(["direct", "fft"]), seed=st.integers(0, 2**32 - 1),
)
def test_conv_transpose_routes_match_torch(
    d: int, stride: int, dilation: int, groups: int, kernel: int, size: int, pad: int, data: Any, method: str,
    seed: int,
) -> None:
    """conv_transpose and its backward through every route (they are the core contractions, roles exchanged)."""
    out_pad = data.draw(st.integers(0, max(stride, dilation) - 1))
    if (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + out_pad + 1 < 1:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2 * groups) + (size,) * d)
    w = rng.standard_normal((2 * groups, 3, *(kernel,) * d))
    b = rng.standard_normal(3 * groups)
    kw = {"stride": stride, "padding": pad, "output_padding": out_pad, "dilation": dilation, "groups": groups}
    y = cg.conv_transpose(x, w, b, **kw, method=method)
    g = rng.standard_normal(y.shape)
    refs = torch_conv_transpose(x, w, b, g, **kw)
    for ours, ref in zip((y, *cg.conv_transpose_backward(g, x, w, **kw, method=method)), refs):
        _close(ours, ref)


# ----------------------------------------------------------------------------- small-problem shortcuts


@pytest.mark.parametrize("small", [True, False])
@given(cfg=conv_configs(), seed=st.integers(0, 2**32 - 1))
def test_small_copy_and_fold_shortcuts_match_torch(small: bool, cfg: Config, seed: int) -> None:
    """im2col's single strided copy and fold's 0/1-matrix GEMM, and their per-offset loops."""
    limit = 1 << 40 if small else 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(windows, "SMALL_COPY", limit)
        mp.setattr(windows, "SMALL_FOLD", limit)
        _against_torch(cfg, seed, method="direct")


def test_fold_matrix_is_the_fold() -> None:
    geom = geometry.conv_geometry((1, 1, 7), (1, 1, 3), stride=2, dilation=2, padding=1)
    m = windows.fold_matrix(geom, np.dtype(np.float64))
    assert m.shape == (3 * geom.out_size[0], 9) and not m.flags.writeable
    # row (k, q) has its single 1 at q·s + k·δ
    assert [int(np.argmax(row)) for row in m] == [q * 2 + k * 2 for k in range(3) for q in range(geom.out_size[0])]


# ----------------------------------------------------------------------------- dtypes, workspace, memo, errors


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kw", "method"),
    [
        ((2, 4, 6, 6), (3, 4, 1, 1), {}, "auto"),  # pointwise
        ((2, 4, 6, 6), (4, 1, 3, 3), {"groups": 4, "padding": 1}, "auto"),  # depthwise
        ((2, 4, 6, 6), (3, 4, 3, 3), {"padding": 1}, "fft"),
        ((2, 4, 6, 6), (3, 4, 3, 3), {"padding": 1}, "direct"),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_float32_stays_float32_on_every_route(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], kw: dict[str, int], method: str, dtype: Any
) -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    y = cg.conv(x, w, **kw, method=method)
    grads = cg.conv_backward(np.ones_like(y), x, w, **kw, method=method)
    assert y.dtype == dtype and all(a.dtype == dtype for a in grads)
    ref = cg.conv(x.astype(np.float64), w.astype(np.float64), **kw, method="direct")
    np.testing.assert_allclose(y, ref, rtol=0, atol=(1e-4 if dtype == np.float32 else 2e-2) * np.abs(ref).max())


def test_results_never_live_in_the_workspace(rng: np.random.Generator) -> None:
    """The workspace is reused by the next call; earlier results must not change."""
    x1, x2 = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((2, 3, 9, 9))
    w = rng.standard_normal((4, 3, 3, 3))
    y1 = cg.conv(x1, w, padding=1)
    g1 = cg.conv_backward(y1, x1, w, padding=1)
    expected = (y1.copy(), *(a.copy() for a in g1))
    cg.conv(x2, w, padding=1)
    cg.conv_backward(y1 + 1.0, x2, w, padding=1)
    for now, before in zip((y1, *g1), expected):
        np.testing.assert_array_equal(now, before)


def test_workspace_is_per_thread_and_optional(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    xs = [rng.standard_normal((3, 4, 12, 12)) for _ in range(8)]
    w = rng.standard_normal((5, 4, 3, 3))
    serial = [cg.conv_backward(cg.conv(x, w, padding=1), x, w, padding=1) for x in xs]
    barrier = threading.Barrier(4)

    def work(i: int) -> Any:
        if i < 4:  # the first four calls start together
            barrier.wait(timeout=30)
        return cg.conv_backward(cg.conv(xs[i], w, padding=1), xs[i], w, padding=1)

    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(work, range(len(xs))))
    for a, b in zip(serial, parallel):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    monkeypatch.setattr(state, "REUSE_WORKSPACE", False)
    fresh = cg.conv_backward(cg.conv(xs[0], w, padding=1), xs[0], w, padding=1)
    for u, v in zip(fresh, serial[0]):
        np.testing.assert_array_equal(u, v)


def test_workspace_budget_chunks_give_the_same_numbers(rng: np.random.Generator) -> None:
    x, w = rng.standard_normal((5, 2, 8)), rng.standard_normal((3, 2, 9))
    g = rng.standard_normal((5, 3, 8))
    whole = [cg.conv(x, w, padding=4, method=m) for m in ("direct", "fft")]
    whole_g = [cg.conv_backward(g, x, w, padding=4, method=m) for m in ("direct", "fft")]
    with cg.workspace_budget(1):  # one sample per chunk
        for method, y, grads in zip(("direct", "fft"), whole, whole_g):
            _close(cg.conv(x, w, padding=4, method=method), y)
            for a, b in zip(cg.conv_backward(g, x, w, padding=4, method=method), grads):
                _close(a, b)


def test_memoised_geometry_still_rejects_what_validation_rejects() -> None:
    x, w = np.ones((1, 2, 6)), np.ones((2, 2, 3))
    assert cg.conv(x, w, stride=2).shape == (1, 2, 2)  # remembered
    with pytest.raises(TypeError, match=r"stride must be an int or a tuple of 1 ints \(one per spatial dimension\); got 2\.0"):
        cg.conv(x, w, stride=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="groups must be an integer; got True"):
        cg.conv(x, w, groups=True)
    np.testing.assert_array_equal(cg.conv(x, w, stride=np.int64(2)), cg.conv(x, w, stride=2))  # not memoised
    with pytest.raises(ValueError, match=r"stride\[0\] must be >= 1; got 0"):
        cg.conv(x, w, stride=[0])


@pytest.mark.parametrize("bad", ["FFT", "gemm", None, 1])
def test_method_must_be_known(bad: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    x, w, g = np.ones((1, 2, 6)), np.ones((2, 2, 3)), np.ones((1, 2, 4))

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("work started before validation finished")

    monkeypatch.setattr(dispatch, "run", forbidden)
    message = rf"method must be one of \('auto', 'direct', 'fft', 'winograd'\); got {bad!r}"
    calls = [
        lambda: cg.conv(x, w, method=bad),
        lambda: cg.conv_backward(g, x, w, method=bad),
        lambda: cg.conv_input_grad(g, w, input_shape=x.shape, method=bad),
        lambda: cg.conv_weight_grad(g, x, weight_shape=w.shape, method=bad),
        lambda: cg.conv_transpose(g, w, method=bad),
        lambda: cg.conv_transpose_backward(x, g, w, method=bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=message):
            call()


def test_methods_agree_on_the_public_functions(rng: np.random.Generator) -> None:
    x, w = rng.standard_normal((2, 4, 11, 9)), rng.standard_normal((6, 2, 5, 4))
    kw = {"stride": (2, 1), "padding": ((2, 1), (0, 3)), "dilation": (1, 2), "groups": 2, "padding_mode": "reflect"}
    y = {m: cg.conv(x, w, **kw, method=m) for m in METHODS}
    g = rng.standard_normal(y["direct"].shape)
    for m in ("auto", "fft"):
        _close(y[m], y["direct"])
        _close(cg.conv_input_grad(g, w, input_shape=x.shape, **kw, method=m),
               cg.conv_input_grad(g, w, input_shape=x.shape, **kw, method="direct"))
        _close(cg.conv_weight_grad(g, x, weight_shape=w.shape, **kw, method=m),
               cg.conv_weight_grad(g, x, weight_shape=w.shape, **kw, method="direct"))


def test_empty_batch_on_every_route() -> None:
    for w_shape, kw, method in [((3, 4, 1), {}, "auto"), ((4, 1, 3), {"groups": 4}, "auto"), ((3, 4, 3), {}, "fft")]:
        x = np.ones((0, 4, 7))
        y = cg.conv(x, np.ones(w_shape), **kw, method=method)
        grads = cg.conv_backward(np.ones(y.shape), x, np.ones(w_shape), **kw, method=method)
        assert grads.input.shape == x.shape and grads.weight.shape == w_shape
        assert not grads.weight.any() and not grads.bias.any()


@given(cfg=conv_configs(max_groups=4), seed=st.integers(0, 2**32 - 1), threads=st.integers(2, 5))
def test_copies_split_over_threads_match_torch(cfg: Config, seed: int, threads: int) -> None:
    """im2col, fold and the depthwise blocks split by channel over several threads (forced for small sizes)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(state, "PARALLEL_MIN_ELEMENTS", 0)
        mp.setattr(state, "copy_threads", lambda: threads)
        mp.setattr(windows, "SMALL_COPY", 0)
        mp.setattr(windows, "SMALL_FOLD", 0)
        mp.setattr(cost, "GRID_MIN_ELEMENTS", 0)
        mp.setattr(dispatch, "grid_op", lambda geom, op: True)
        mp.setattr(small, "SMALL_WINDOWS", -1)  # the chunked routes, whose copies are split
        state.clear_caches()
        _against_torch(cfg, seed, method="direct")
    state.clear_caches()


@pytest.mark.parametrize(
    ("w_shape", "kw", "method"),
    [
        ((3, 4, 1, 1), {"stride": 2}, "auto"),  # pointwise
        ((4, 1, 3, 2), {"groups": 4, "padding": 1}, "auto"),  # depthwise input gradient, grid otherwise
        ((3, 4, 3, 2), {"padding": 1, "dilation": 2}, "auto"),  # grid
        ((3, 4, 3, 2), {"padding": 1, "stride": 2}, "auto"),  # gemm
        ((6, 2, 3, 2), {"padding": 1, "groups": 2}, "fft"),
    ],
)
@pytest.mark.parametrize("small_windows", [-1, small.SMALL_WINDOWS], ids=["large routes", "small route"])
def test_views_in_and_inputs_untouched_on_every_route(
    w_shape: tuple[int, ...], kw: dict[str, int], method: str, small_windows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Negative-stride and transposed views give the numbers of their contiguous copies; nothing is written."""
    monkeypatch.setattr(small, "SMALL_WINDOWS", small_windows)
    monkeypatch.setattr(cost, "GRID_MIN_ELEMENTS", 0)
    monkeypatch.setattr(dispatch, "grid_op", lambda geom, op: True)
    monkeypatch.setattr(state, "PARALLEL_MIN_ELEMENTS", 0)
    state.clear_caches()
    rng = np.random.default_rng(1)
    base_x = rng.standard_normal((9, 7, 4, 3))
    x = base_x.transpose(3, 2, 1, 0)[:, :, ::-1]  # (3, 4, 7, 9), negative and permuted strides
    w = rng.standard_normal(w_shape[::-1]).T[..., ::-1]
    y = cg.conv(x, w, **kw, method=method)
    g = rng.standard_normal(y.shape)[..., ::-1]
    snapshot = [a.copy() for a in (x, w, g)]
    grads = cg.conv_backward(g, x, w, **kw, method=method)
    refs = [cg.conv(x.copy(), w.copy(), **kw, method="direct"),
            *cg.conv_backward(g.copy(), x.copy(), w.copy(), **kw, method="direct")]
    for ours, ref in zip((y, *grads), refs):
        _close(ours, ref)
    for a, before in zip((x, w, g), snapshot):
        np.testing.assert_array_equal(a, before)
    state.clear_caches()


@given(cfg=conv_configs(max_groups=3, allow_unbatched=False), seed=st.integers(0, 2**32 - 1))
def test_small_backward_is_the_three_small_routes_in_one_piece(cfg: Config, seed: int) -> None:
    """``small_backward`` gives the small routes' input and weight gradients bit for bit from one copy of ``g``'s
    channel rows; ``conv_backward`` takes it wherever the small route takes both gradients of real floats (its
    bias gradient the same bits as ``conv_bias_grad``'s), and the result matches PyTorch float64."""
    geom = _geometry(cfg)
    rng = np.random.default_rng(seed)
    x, w, _ = cfg.arrays(rng)
    g = rng.standard_normal(geom.output_shape)
    gx, gw = small.small_backward(g, x, w, geom)
    np.testing.assert_array_equal(gx, small.small_input_grad(g, w, geom))
    np.testing.assert_array_equal(gw, small.small_weight_grad(g, x, geom))
    grads = cg.conv_backward(g, x, w, **cfg.kwargs())
    np.testing.assert_array_equal(grads.bias, cg.conv_bias_grad(g))
    _against_torch(cfg, seed)


def test_conv_backward_of_a_small_layer_takes_the_fused_small_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 5×5 image with a 3×3 kernel: one call of ``small_backward``, none of the separate routes, the worked
    example's numbers; integer and complex data, and a route other than ``small``, take the three one by one."""
    calls: list[str] = []
    fused, separate = small.small_backward, small.small_input_grad

    def recording_fused(*args: Any) -> Any:
        calls.append("fused")
        return fused(*args)

    def recording_separate(*args: Any) -> Any:
        calls.append("input")
        return separate(*args)

    monkeypatch.setattr(small, "small_backward", recording_fused)
    monkeypatch.setattr(small, "small_input_grad", recording_separate)
    monkeypatch.setitem(dispatch.ROUTES["input"], "small", recording_separate)
    x = 10 * np.arange(25.0).reshape(1, 1, 5, 5)
    w = np.arange(9.0).reshape(1, 1, 3, 3)
    x_before, w_before = x.copy(), w.copy()
    grads = cg.conv_backward(np.ones((1, 1, 3, 3)), x, w)
    assert calls == ["fused"]
    np.testing.assert_array_equal(grads.input[0, 0], [[0, 1, 3, 3, 2], [3, 8, 15, 12, 7], [9, 21, 36, 27, 15],
                                                      [9, 20, 33, 24, 13], [6, 13, 21, 15, 8]])
    np.testing.assert_array_equal(grads.weight[0, 0], [[540, 630, 720], [990, 1080, 1170], [1440, 1530, 1620]])
    assert grads.bias.tolist() == [9.0]
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(w, w_before)
    calls.clear()
    exact = cg.conv_backward(np.ones((1, 1, 3, 3), dtype=np.int64), x.astype(np.int64), w.astype(np.int64))
    assert calls == ["input"]  # integers: one by one
    for got, want in zip(exact, grads):
        np.testing.assert_array_equal(got, want)
    calls.clear()
    complex_grads = cg.conv_backward(np.ones((1, 1, 3, 3)) + 0j, x + 0j, w + 0j)
    assert calls == ["input"]  # complex: one by one
    for got, want in zip(complex_grads, grads):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    calls.clear()
    cg.conv_backward(np.ones((1, 1, 3, 3)), x, w, method="direct")
    assert calls == ["fused"]


def test_small_backward_with_nan_and_inf_matches_the_separate_routes() -> None:
    """Non-finite data: the fused piece puts NaN and infinity where the three routes one by one (and PyTorch) do,
    and warns about nothing."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 5))
    x[0, 1, 2, 3], x[1, 0, 0, 0] = np.nan, np.inf
    w = rng.standard_normal((4, 3, 3, 2))
    geom = geometry.conv_geometry(x.shape, w.shape, padding=1, stride=(2, 1))
    assert small.applies(geom)
    g = rng.standard_normal(geom.output_shape)
    g[1, 2, 0, 1] = -np.inf
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grads = cg.conv_backward(g, x, w, padding=1, stride=(2, 1))
    with np.errstate(invalid="ignore"):
        want = (small.small_input_grad(g, w, geom), small.small_weight_grad(g, x, geom),
                g.sum(axis=(0, 2, 3)))
    for got, ref in zip(grads, want):
        _same_values(got, ref, 1e-12)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kw"),
    [
        ((2, 3, 6, 5), (4, 3, 3, 2), {"padding": 1, "stride": (2, 1)}),
        ((1, 2, 7), (2, 1, 3), {"padding": ((2, -1),), "dilation": 2, "groups": 2}),  # a crop on one side
        ((1, 1, 5, 4), (1, 1, 3, 3), {"padding": 2, "padding_mode": "reflect"}),
        ((2, 2, 4, 5), (3, 2, 2, 3), {"padding": (1, 3), "padding_mode": "circular", "stride": 2}),
        ((1, 2, 3, 4, 3), (2, 2, 2, 3, 2), {"padding": 1, "padding_mode": "replicate", "dilation": (1, 2, 1)}),
    ],
)
def test_small_route_gathers_the_windows_of_the_padded_input(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                                                             kw: dict[str, Any]) -> None:
    """The small route's one ``take`` reads what the window map of the padded input holds, bit for bit, in every
    padding mode and crop; its adjoint adds the windows back where ``pad_adjoint(fold(·))`` does; the index is
    read-only and remembered."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape)
    geom = geometry.conv_geometry(x_shape, w_shape, **kw)
    assert small.applies(geom)
    cols = np.empty((geom.c_in,) + geom.kernel + (geom.n,) + geom.out_size)
    windows.im2col(padding.pad(x, geom), geom, cols)
    taken = small.gather(x, geom, x.dtype)
    np.testing.assert_array_equal(taken.reshape(cols.shape), cols)
    index = small.window_index(geom, geom.n)
    assert small.window_index(geom, geom.n) is index
    assert not any(a.flags.writeable for a in index if a is not None)
    z = rng.standard_normal(cols.shape)
    np.testing.assert_allclose(small.scatter(z.reshape(taken.shape), geom, geom.n),
                               padding.pad_adjoint(windows.fold(z, geom), geom), rtol=1e-13, atol=1e-13)


def test_small_route_index_is_the_size_of_the_windows_not_of_the_input() -> None:
    """A large input read by a few windows (stride 999): the index and the work space hold the windows only, never
    an array of the input's size, and the result is PyTorch's."""
    x = np.random.default_rng(6).standard_normal((1, 1, 2000, 2000)).astype(np.float32)
    w = np.ones((1, 1, 2, 2), dtype=np.float32)
    geom = geometry.conv_geometry(x.shape, w.shape, stride=999, padding=1)
    assert small.applies(geom) and dispatch.route(geom, np.dtype(np.float32)) == "small"
    state.clear_caches()
    tracemalloc.start()
    try:
        y = cg.conv(x, w, stride=999, padding=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024, peak  # x is 16 MB
    assert small.window_index(geom, 1).read.size == 4 * 9
    xt = torch.from_numpy(x.astype(np.float64))
    want = torch.nn.functional.conv2d(xt, torch.ones(1, 1, 2, 2, dtype=torch.float64), stride=999, padding=1)
    np.testing.assert_allclose(y, want.numpy(), rtol=1e-5)


def test_small_route_reads_any_layout_and_leaves_it_alone() -> None:
    """The small route's ``take`` reads Fortran-ordered, strided, read-only and broadcast inputs as their values (the
    index is into the C-order flattening), never writes them, and returns new arrays: the same numbers as the
    contiguous copies, for the forward pass and all three gradients."""
    rng = np.random.default_rng(8)
    base = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((4, 3, 3, 2))
    layouts = {
        "fortran": np.asfortranarray(base[:, :, :5, :6]),
        "strided": base[:, :, ::2, ::2],
        "read-only": base[:, :, :5, :4].copy(),
        "broadcast": np.broadcast_to(base[:1, :, :5, :4], (2, 3, 5, 4)),
    }
    layouts["read-only"].flags.writeable = False
    for name, x in layouts.items():
        before = x.copy()
        kw = {"padding": 1, "stride": (1, 2), "padding_mode": "reflect"}
        geom = geometry.conv_geometry(x.shape, w.shape, **kw)
        assert small.applies(geom), name
        y = cg.conv(x, w, **kw)
        g = rng.standard_normal(y.shape)
        grads = cg.conv_backward(g, x, w, **kw)
        contiguous = np.ascontiguousarray(x)
        np.testing.assert_array_equal(y, cg.conv(contiguous, w, **kw))
        for got, want in zip(grads, cg.conv_backward(g, contiguous, w, **kw)):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(x, before)
        for result in (y, *grads):
            assert not np.shares_memory(result, x) and not np.shares_memory(result, w)


def test_tiny_calls_from_many_threads_agree() -> None:
    """Tiny layers of many geometries called from eight threads at once (the remembered checks and window indices
    filled and read concurrently): every result is the one a single thread computes."""
    rng = np.random.default_rng(9)
    cases = []
    for i in range(24):
        x = rng.standard_normal((1 + i % 2, 2, 5 + i % 4, 6))
        w = rng.standard_normal((3, 2, 3, 3))
        kw = {"padding": i % 3, "stride": 1 + i % 2, "dilation": 1 + (i // 12)}
        cases.append((x, w, kw))
    state.clear_caches()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda c: (cg.conv(c[0], c[1], **c[2]),
                                           cg.conv_backward(np.ones(cg.conv_output_shape(c[0].shape, c[1].shape,
                                                                                         **c[2])), c[0], c[1], **c[2])),
                                 cases * 4))
    for (x, w, kw), (y, grads) in zip(cases * 4, results):
        np.testing.assert_array_equal(y, cg.conv(x, w, **kw))
        for got, want in zip(grads, cg.conv_backward(np.ones(y.shape), x, w, **kw)):
            np.testing.assert_array_equal(got, want)
