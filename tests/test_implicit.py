"""The implicit route (in-place BLAS GEMMs per kernel offset on the padded grid) and the direct BLAS binding.

The route is compared with the gemm route over hypothesis-drawn stride-1
geometries (every padding mode, dilation, groups, with and without the grid
expanded along the last kernel dimension) and crops, with PyTorch float64
autograd through the public API, on transposed layers with ``output_padding``,
and on non-finite data, threads, a forked child, small budgets and empty
batches. The binding is compared with NumPy's ``matmul``: shifted starts,
wide leading dimensions, operands of two calls overlapping in one buffer,
``β = 0`` over NaN, ``β = 1``, ``Bᵀ``, empty products and every refused
operand. (That the binding is found at all is tested in test_engine_state.py,
which this module's skip does not reach.)
"""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import convgrad as cg
from convgrad import _geometry as geometry
from convgrad.engine import blas, cost, dispatch, gemm, implicit, jit, small, state, winograd
from strategies import Config, conv_configs
from torch_ref import torch_conv

pytestmark = pytest.mark.skipif(not blas.available(np.float64), reason="NumPy's BLAS cannot be called directly here")


@pytest.fixture(autouse=True)
def _fresh_caches() -> Any:
    state.clear_caches()
    yield
    state.clear_caches()


def _close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-10) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


def _geometry(cfg: Config) -> geometry.Geometry:
    return dataclasses.replace(geometry.conv_geometry(cfg.x_shape, cfg.w_shape, **cfg.kwargs()), batched=True)


def _arrays(cfg: Config, geom: geometry.Geometry, seed: int, dtype: Any = np.float64) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg.n, cfg.c_in) + cfg.size).astype(dtype)
    w = rng.standard_normal(cfg.w_shape).astype(dtype)
    g = rng.standard_normal((cfg.n, cfg.c_out) + geom.out_size).astype(dtype)
    return x, w, g


def _force(mp: pytest.MonkeyPatch) -> None:
    """The rule sends every stride-1 layer it can to the implicit route (no cost, no channel minimum)."""
    mp.setattr(implicit, "MIN_CHANNELS", 1)
    mp.setattr(implicit, "MIN_POSITIONS", 0)
    mp.setattr(cost, "implicit_cost", lambda geom, expand=1: -1.0)
    mp.setattr(small, "SMALL_WINDOWS", -1)
    mp.setattr(jit, "choose", lambda *args, **kwargs: None)
    mp.setattr(jit, "choose_direct", lambda *args, **kwargs: None)
    mp.setattr(winograd, "choose", lambda *args, **kwargs: None)
    state.clear_caches()


@pytest.fixture
def forced(monkeypatch: pytest.MonkeyPatch) -> None:
    _force(monkeypatch)


def _without_blas(compute: Any) -> Any:
    """``compute()`` with the direct BLAS switched off (the routes before this one), caches emptied around it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(blas, "ENABLED", False)
        state.clear_caches()
        result = compute()
    state.clear_caches()
    return result


# ----------------------------------------------------------------------------- the BLAS binding


@given(m=st.integers(0, 9), n=st.integers(0, 40), k=st.integers(0, 9), start=st.integers(0, 5),
       extra=st.integers(0, 5), beta=st.sampled_from([0.0, 1.0]), f32=st.booleans(), trans=st.booleans())
def test_gemm_matches_matmul(m: int, n: int, k: int, start: int, extra: int, beta: float, f32: bool,
                             trans: bool) -> None:
    """A shifted start and a leading dimension wider than the rows, ``B`` or ``Bᵀ``; ``β = 0`` ignores NaN in
    ``C`` (also for an empty sum, ``k = 0``), ``β = 1`` adds; the buffer ``B`` is read from is left as it was."""
    dtype = np.float32 if f32 else np.float64
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    rows, cols = (n, k) if trans else (k, n)
    ldb = max(cols, 1) + extra
    buf = rng.standard_normal(start + max(0, rows - 1) * ldb + cols + 3).astype(dtype)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = np.lib.stride_tricks.as_strided(buf[start:], (rows, cols), (ldb * buf.itemsize, buf.itemsize))
    c0 = rng.standard_normal((m, n)).astype(dtype)
    c = np.full((m, n), np.nan, dtype=dtype) if beta == 0.0 else c0.copy()
    before = buf.copy()
    blas.gemm(a, buf, ldb, c, beta, b_start=start, n=n, trans_b=trans)
    factor = b.T if trans else b
    expected = a.astype(np.float64) @ factor.astype(np.float64) + (c0 if beta else 0.0)
    np.testing.assert_allclose(c, expected, rtol=1e-4 if f32 else 1e-12, atol=1e-4 if f32 else 1e-12)
    np.testing.assert_array_equal(buf, before)


def test_gemm_empty_sum_scales_c() -> None:
    """``k = 0``: ``C = β·C`` inside the block only (some BLAS refuse the call), NaN overwritten for ``β = 0``."""
    c = np.full((3, 5), np.nan)
    blas.gemm(np.ones((2, 0)), np.ones(0), 3, c, 0.0, n=3, c_start=6, ldc=5)
    assert not c[1:, 1:4].any() and np.isnan(c[0]).all() and np.isnan(c[1:, [0, 4]]).all()
    d = np.arange(6.0).reshape(2, 3)
    blas.gemm(np.ones((2, 0)), np.ones(0), 3, d, 2.0, n=3)
    np.testing.assert_array_equal(d, 2 * np.arange(6.0).reshape(2, 3))


def test_gemm_operands_of_two_calls_overlap_in_one_buffer() -> None:
    """The implicit route's pattern: the ``B`` of each call is the same grid from a shifted start, summed in ``C``."""
    rng = np.random.default_rng(12)
    grid = rng.standard_normal((4, 30))  # 4 channels, rows of 30
    a0, a1 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    c = np.empty((3, 25))
    blas.gemm(a0, grid, 30, c, 0.0, b_start=0, n=25)
    blas.gemm(a1, grid, 30, c, 1.0, b_start=5, n=25)
    np.testing.assert_allclose(c, a0 @ grid[:, :25] + a1 @ grid[:, 5:30], rtol=1e-12)


def test_gemm_writes_into_a_strided_block_of_c() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    c = np.zeros((3, 9))
    blas.gemm(a, b, 5, c, 0.0, c_start=2, ldc=9)
    np.testing.assert_allclose(c[:, 2:7], a @ b, rtol=1e-12)
    assert not c[:, :2].any() and not c[:, 7:].any()


def test_gemm_refuses_bad_operands(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, c = np.ones((2, 3)), np.ones(12), np.ones(8)
    with pytest.raises(ValueError, match="exceeds its buffer"):
        blas.gemm(a, b, 4, c, 0.0, b_start=1)  # 3 rows of 4 from 1: 13 elements
    with pytest.raises(ValueError, match="exceeds its buffer"):
        blas.gemm(a, b, 4, c, 0.0, n=4, ldc=5)
    with pytest.raises(ValueError, match="leading dimension"):
        blas.gemm(a, b, 4, c, 0.0, b_start=-1, n=2)
    with pytest.raises(ValueError, match="leading dimension"):
        blas.gemm(a, b, 2, c, 0.0, n=3)  # rows of B would overlap within the call
    with pytest.raises(ValueError, match="leading dimension"):
        blas.gemm(np.ones((3, 1)), np.ones(4), 4, np.ones(1), 0.0, n=1, ldc=0)  # 3 rows of C in 1 element
    with pytest.raises(ValueError, match="leading dimension"):
        blas.gemm(np.ones((3, 1)), np.ones(4), 4, np.ones(30), 0.0, n=1, ldc=-7)
    with pytest.raises(ValueError, match="C-contiguous"):
        blas.gemm(a, np.ones((4, 6))[:, ::2], 3, c, 0.0)
    with pytest.raises(ValueError, match="C-contiguous matrix"):
        blas.gemm(np.ones((3, 2)).T, b, 4, c, 0.0)
    with pytest.raises(ValueError, match="no direct BLAS GEMM"):
        blas.gemm(a, b.astype(np.float32), 4, c, 0.0)
    with pytest.raises(ValueError, match="no direct BLAS GEMM"):
        blas.gemm(a.astype(np.complex128), b.astype(np.complex128), 4, c.astype(np.complex128), 0.0)
    with pytest.raises(ValueError, match="no direct BLAS GEMM"):  # another byte order: not what the BLAS reads
        blas.gemm(a.astype(">f8"), b.astype(">f8"), 4, c.astype(">f8"), 0.0)
    with pytest.raises(ValueError, match="n is required"):
        blas.gemm(a, b, 3, c, 0.0, trans_b=True)
    frozen = c.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        blas.gemm(a, b, 4, frozen, 0.0, n=4)
    monkeypatch.setattr(blas, "INDEX_LIMIT", 4)
    with pytest.raises(ValueError, match="32-bit"):
        blas.gemm(a, b, 4, c, 0.0, n=4)


def test_disabled_binding_takes_the_route_out(monkeypatch: pytest.MonkeyPatch) -> None:
    geom = geometry.conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    f32 = np.dtype(np.float32)
    monkeypatch.setattr(winograd, "choose", lambda *args, **kwargs: None)
    monkeypatch.setattr(jit, "choose", lambda *args, **kwargs: None)
    monkeypatch.setattr(jit, "choose_direct", lambda *args, **kwargs: None)
    state.clear_caches()
    assert dispatch.route(geom, f32, "direct", "forward") == "implicit"
    monkeypatch.setattr(blas, "ENABLED", False)
    state.clear_caches()
    assert not blas.available(f32) and blas.gemm_function(f32) is None
    assert dispatch.route(geom, f32, "direct", "forward") == "grid"
    with pytest.raises(ValueError, match="no direct BLAS GEMM"):
        blas.gemm(np.ones((1, 1), np.float32), np.ones(1, np.float32), 1, np.ones(1, np.float32), 0.0)


def test_switching_the_binding_off_after_a_route_was_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The route table remembers "implicit" per geometry; switched off later, the route computes by gemm."""
    monkeypatch.setattr(implicit, "MIN_POSITIONS", 0)
    monkeypatch.setattr(winograd, "choose", lambda *args, **kwargs: None)
    monkeypatch.setattr(jit, "choose", lambda *args, **kwargs: None)
    monkeypatch.setattr(jit, "choose_direct", lambda *args, **kwargs: None)
    rng = np.random.default_rng(13)
    x, w = rng.standard_normal((2, 64, 12, 12)), rng.standard_normal((64, 64, 3, 3))
    geom = geometry.conv_geometry(x.shape, w.shape, padding=1)
    g = rng.standard_normal(geom.output_shape)
    assert [dispatch.route(geom, np.dtype(np.float64), "auto", op) for op in ("forward", "input")] == ["implicit"] * 2
    expected = [cg.conv(x, w, padding=1), *cg.conv_backward(g, x, w, padding=1)]
    monkeypatch.setattr(blas, "ENABLED", False)  # no clear_caches(): the remembered routes are taken
    got = [cg.conv(x, w, padding=1), *cg.conv_backward(g, x, w, padding=1)]
    for a, b in zip(got, expected):
        _close(a, b)


# ----------------------------------------------------------------------------- the rule


def test_rule_on_the_benchmark_layers() -> None:
    """The layers whose forward pass and input gradient measured faster on the implicit route take it; the
    large-channel, small-plane ones (more junk positions than the im2col copies cost) do not, nor do thin,
    depthwise, strided, tiny or 1-d two-tap layers, nor the weight gradient, integers or complex data."""
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    fast = [((2, 16, 16, 32, 32), (32, 16, 3, 3, 3), {"padding": 1}),
            ((8, 64, 56, 56), (64, 64, 3, 3), {"padding": 1}),
            ((4, 64, 64, 64), (64, 64, 3, 3), {"padding": 2, "dilation": 2}),
            ((8, 64, 16000), (64, 64, 9), {"padding": 4})]
    for xs, ws, kw in fast:
        geom = geometry.conv_geometry(xs, ws, **kw)
        for op in ("forward", "input"):
            assert implicit.choose(geom, f32, "auto", op, exact=False, finite=True) == "implicit", (xs, op)
        assert implicit.choose(geom, f32, "auto", "weight", exact=False, finite=True) is None
        assert implicit.choose(geom, f64, "auto", "forward", exact=True, finite=True) is None
        assert implicit.choose(geom, np.dtype(np.complex128), "auto", "forward", exact=False, finite=True) is None
    slow = [((8, 512, 7, 7), (512, 512, 3, 3), {"padding": 1}),
            ((1, 256, 12, 13, 13), (256, 256, 3, 3, 3), {}),
            ((8, 128, 56, 56), (128, 1, 3, 3), {"padding": 1, "groups": 128}),  # depthwise
            ((8, 3, 224, 224), (64, 3, 7, 7), {"padding": 3, "stride": 2}),  # strided, 3 channels: thin phases
            ((8, 64, 56, 56), (128, 64, 3, 3), {"padding": 1, "stride": 2, "padding_mode": "reflect"}),
            ((1, 1, 5, 5), (1, 1, 3, 3), {}),  # the small route
            ((4, 64, 16, 16), (64, 64, 3, 3), {"padding": 1}),  # 1296 grid positions: calls too short
            ((1, 16, 8, 8, 8), (16, 16, 3, 3, 3), {"padding": 1}),
            ((1, 32, 16384), (32, 32, 2), {"dilation": 4}),  # the taps route
            ((8, 64, 56, 56), (64, 64, 1, 1), {})]  # pointwise
    for xs, ws, kw in slow:
        geom = geometry.conv_geometry(xs, ws, **kw)
        for op in ("forward", "input"):
            assert implicit.choose(geom, f32, "auto", op, exact=False, finite=True) is None, (xs, op)
    # strided dense layers: the input gradient by the phases of its full correlation (with 1×1 phases, as 3×3 at
    # stride 2 has, from 64 input channels per group), the forward pass not here
    s2 = geometry.conv_geometry((8, 64, 56, 56), (128, 64, 3, 3), padding=1, stride=2)
    assert implicit.choose(s2, f32, "auto", "input", exact=False, finite=True) == "implicit"
    s2_thin = geometry.conv_geometry((8, 32, 112, 112), (64, 32, 3, 3), padding=1, stride=2)
    assert implicit.choose(s2_thin, f32, "auto", "input", exact=False, finite=True) is None
    s3 = geometry.conv_geometry((8, 64, 57, 57), (128, 64, 3, 3), stride=3)  # every phase 1×1: none here
    assert implicit.choose(s3, f32, "auto", "input", exact=False, finite=True) is None
    for xs, ws, kw in [((8, 64, 56, 56), (128, 64, 4, 4), {"padding": 1, "stride": 2}),
                       ((8, 32, 30, 30), (64, 32, 3, 5), {"padding": 1, "stride": (1, 2)})]:
        geom = geometry.conv_geometry(xs, ws, **kw)
        assert implicit.choose(geom, f32, "auto", "input", exact=False, finite=True) == "implicit", (ws, kw)
        assert implicit.choose(geom, f32, "auto", "forward", exact=False, finite=True) is None
        assert implicit.choose(geom, f64, "auto", "input", exact=True, finite=True) is None
        assert not implicit.phases_apply(dataclasses.replace(geom, n=0), f32)
    # a thin layer: the compiled direct kernels where Numba is installed, else the implicit route
    conv3d = geometry.conv_geometry((2, 16, 16, 32, 32), (32, 16, 3, 3, 3), padding=1)
    compiled = ["jit_direct"] * 3 if jit.available() else ["implicit", "implicit", "gemm"]
    assert [dispatch.route(conv3d, f32, "auto", op) for op in ("forward", "input", "weight")] == compiled
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(jit, "DIRECT_ROUTE", False)
            state.clear_caches()
            assert [dispatch.route(conv3d, f32, "auto", op) for op in ("forward", "input", "weight")] == \
                ["implicit", "implicit", "gemm"]
    finally:
        state.clear_caches()  # (the routes remembered without the direct kernels)


def test_one_sample_over_the_budget_is_not_routed_here() -> None:
    geom = geometry.conv_geometry((2, 64, 56, 56), (64, 64, 3, 3), padding=1)
    need = implicit.sample_bytes(geom, 4)
    assert need == (64 + 64) * 58 * 58 * 4
    with cg.workspace_budget(need):
        assert implicit.applies(geom, np.dtype(np.float32), "forward")
    with cg.workspace_budget(need - 1):
        assert not implicit.applies(geom, np.dtype(np.float32), "forward")
        assert implicit.choose(geom, np.dtype(np.float32), "auto", "forward", exact=False, finite=True) is None


# ----------------------------------------------------------------------------- the route against the others


@given(cfg=conv_configs(max_kernel=4, max_groups=3, max_channels_per_group=3), seed=st.integers(0, 2**32 - 1),
       expand=st.booleans(), block=st.sampled_from([8 << 20, 1, 100, 1000]))
def test_matches_the_gemm_route(cfg: Config, seed: int, expand: bool, block: int) -> None:
    """Every stride-1 geometry (padding modes, crops, dilation, groups), the grid expanded or not, in one column
    block or in blocks down to a single column."""
    cfg = dataclasses.replace(cfg, stride=1)
    geom = _geometry(cfg)
    x, w, g = _arrays(cfg, geom, seed)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(implicit, "EXPAND_BELOW", 10**6 if expand else 0)
        mp.setattr(implicit, "COLUMN_BLOCK_BYTES", block)
        _close(implicit.implicit_forward(x, w, geom), gemm.gemm_forward(x, w, geom))
        _close(implicit.implicit_input_grad(g, w, geom), gemm.gemm_input_grad(g, w, geom))


@given(cfg=conv_configs(max_kernel=4, max_groups=3, max_channels_per_group=3), seed=st.integers(0, 2**32 - 1),
       stride=st.integers(2, 3))
def test_strided_input_grad_matches_the_gemm_route(cfg: Config, seed: int, stride: int) -> None:
    """The input gradient of strided layers (every padding mode, crops, dilation, groups, remainders the windows
    leave unread) by the phases of its full correlation, against the gemm route; rule forced and not."""
    assume(cfg.padding != "same")  # (stride 1 only)
    cfg = dataclasses.replace(cfg, stride=stride)
    geom = _geometry(cfg)
    if geom.dilates_input:  # the dispatcher splits input dilation before any route sees it
        return
    _, w, g = _arrays(cfg, geom, seed)
    want = gemm.gemm_input_grad(g, w, geom)
    _close(implicit.implicit_input_grad(g, w, geom), want)
    with pytest.MonkeyPatch.context() as mp:
        _force(mp)
        _close(implicit.implicit_input_grad(g, w, geom), want)
        mp.setattr(implicit, "ONE_TAP_PHASE_CHANNELS", 1)  # 1×1 phases allowed: the rule may route them here
        state.clear_caches()
        if implicit.choose(geom, np.dtype(np.float64), "auto", "input", exact=False, finite=True) == "implicit":
            _close(dispatch.run("input", g, w, geom), want)
    state.clear_caches()


def test_strided_layers_through_the_api_against_torch(forced: None) -> None:
    """A strided layer and a transposed layer (whose forward pass is a strided input gradient), float64 and
    float32, NaN and infinity in g and in the weight (which sends the call to the gemm route) included."""
    import torch

    from convgrad.engine import phases as phase_split

    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 6, 13, 12))
    w = rng.standard_normal((10, 6, 4, 3))
    geom = geometry.conv_geometry(x.shape, w.shape, stride=(2, 3), padding=1)
    assert dispatch.route(geom, np.dtype(np.float64), "auto", "input") == "implicit"
    assert len(phase_split.phases(implicit.full_geometry(geom))) == 6
    g = rng.standard_normal(geom.output_shape)
    xt, wt = (torch.tensor(a, requires_grad=True) for a in (x, w))
    yt = torch.nn.functional.conv2d(xt, wt, stride=(2, 3), padding=1)
    (gx_ref,) = torch.autograd.grad(yt, (xt,), torch.tensor(g))
    _close(cg.conv_input_grad(g, w, input_shape=x.shape, stride=(2, 3), padding=1), gx_ref.numpy())
    got32 = cg.conv_input_grad(g.astype(np.float32), w.astype(np.float32), input_shape=x.shape, stride=(2, 3),
                               padding=1)
    assert got32.dtype == np.float32
    _close(got32.astype(np.float64), gx_ref.numpy(), rtol=1e-5)
    wt2 = rng.standard_normal((6, 5, 4, 4))
    yt2 = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(wt2), stride=2, padding=1,
                                               output_padding=1)
    _close(cg.conv_transpose(x, wt2, stride=2, padding=1, output_padding=1), yt2.numpy())
    g[0, 1, 2, 2], g[1, 4, 0, 0] = np.nan, np.inf
    w_inf = w.copy()
    w_inf[3, 2, 1, 1] = -np.inf
    with np.errstate(invalid="ignore"):
        for ww in (w, w_inf):
            got = implicit.implicit_input_grad(g, ww, geom)
            ref = gemm.gemm_input_grad(g, ww, geom)
            for test in (np.isnan, np.isposinf, np.isneginf):
                np.testing.assert_array_equal(test(got), test(ref))
            finite = np.isfinite(ref)
            np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-12, atol=1e-12)


def test_strided_layer_with_one_tap_phases_against_torch() -> None:
    """3×3 at stride 2 (one 1×1 phase, two 2×1 and a 2×2): the input gradient by the phases under the rule's own
    settings, against PyTorch's autograd, float64 and float32, the 1×1 phase a plain product; NaN and infinity in
    ``g`` land where the gemm route puts them."""
    import torch

    from convgrad.engine import phases as phase_split

    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((4, 64, 45, 46)), rng.standard_normal((16, 64, 3, 3))
    geom = geometry.conv_geometry(x.shape, w.shape, stride=2, padding=1)
    assert dispatch.route(geom, np.dtype(np.float64), "auto", "input") == "implicit"
    parts = phase_split.phases(implicit.full_geometry(geom))
    assert sorted(part.geom.kernel for part in parts) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    g = rng.standard_normal(geom.output_shape)
    xt, wt = (torch.tensor(a, requires_grad=True) for a in (x, w))
    yt = torch.nn.functional.conv2d(xt, wt, stride=2, padding=1)
    (gx_ref,) = torch.autograd.grad(yt, (xt,), torch.tensor(g))
    _close(cg.conv_input_grad(g, w, input_shape=x.shape, stride=2, padding=1), gx_ref.numpy())
    got32 = cg.conv_backward(g.astype(np.float32), x.astype(np.float32), w.astype(np.float32), stride=2,
                             padding=1)[0]
    _close(got32.astype(np.float64), gx_ref.numpy(), rtol=1e-5)
    g[0, 1, 2, 2], g[1, 4, 0, 0] = np.nan, np.inf
    with np.errstate(invalid="ignore"):
        got, ref = dispatch.run("input", g, w, geom), gemm.gemm_input_grad(g, w, geom)
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(got), test(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", [((-1, 2), (3, -2)), ((0, -3), (-1, 0)), ((-4, 1), (2, 2))])
@pytest.mark.parametrize("dilation", [1, 2])
def test_crops_match_the_gemm_route(padding: Any, dilation: int) -> None:
    """Negative padding (crops, beyond the kernel's span too), which the drawn configurations do not reach."""
    rng = np.random.default_rng(14)
    x, w = rng.standard_normal((2, 3, 11, 10)), rng.standard_normal((5, 3, 3, 2))
    geom = geometry.conv_geometry(x.shape, w.shape, padding=padding, dilation=dilation)
    g = rng.standard_normal(geom.output_shape)
    for expand in (0, 10**6):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(implicit, "EXPAND_BELOW", expand)
            _close(implicit.implicit_forward(x, w, geom), gemm.gemm_forward(x, w, geom))
            _close(implicit.implicit_input_grad(g, w, geom), gemm.gemm_input_grad(g, w, geom))


@pytest.mark.parametrize("kw", [{"padding": 1, "dilation": 2, "output_padding": 1},
                                {"padding": (0, 2), "dilation": (3, 1), "output_padding": (2, 0)},
                                {"output_shape": (16, 14), "dilation": 2}])
def test_transposed_layers_with_output_padding(forced: None, kw: dict[str, Any]) -> None:
    """A transposed layer at stride 1 can have fewer outputs than its input admits (the last positions are read by
    no output): its forward pass is the implicit input gradient, which must still cover every position."""
    rng = np.random.default_rng(15)
    x, w = rng.standard_normal((2, 6, 11, 9)), rng.standard_normal((6, 4, 3, 3))
    geom = geometry.transpose_geometry(x.shape, w.shape, **kw)
    assert geom.full_size != geom.out_size
    assert dispatch.route(geom, np.dtype(np.float64), "auto", "input") == "implicit"
    got = cg.conv_transpose(x, w, **kw)
    gy = rng.standard_normal(got.shape)
    grads = cg.conv_transpose_backward(gy, x, w, **kw)
    expected, expected_grads = _without_blas(lambda: (cg.conv_transpose(x, w, **kw),
                                                      cg.conv_transpose_backward(gy, x, w, **kw)))
    assert got.shape == expected.shape == (2, 4) + geom.in_size
    _close(got, expected)
    for a, b in zip(grads, expected_grads):
        _close(a, b)


def test_pointwise_transposed_layer_with_output_padding() -> None:
    """1×1 kernels with output_padding: x[n] is not the (C, Q) matrix, so the pointwise weight gradient takes its
    other paths."""
    rng = np.random.default_rng(16)
    x, w1 = rng.standard_normal((2, 6, 5)), rng.standard_normal((6, 4, 1))
    kw = {"output_padding": 1, "dilation": 2}
    y1 = cg.conv_transpose(x, w1, **kw)
    g1 = rng.standard_normal(y1.shape)
    got = cg.conv_transpose_backward(g1, x, w1, **kw)
    ref = _without_blas(lambda: cg.conv_transpose_backward(g1, x, w1, **kw))
    for a, b in zip(got, ref):
        _close(a, b)


@given(cfg=conv_configs(max_kernel=4, max_groups=2, max_channels_per_group=3), seed=st.integers(0, 2**32 - 1))
def test_matches_torch_through_the_api(cfg: Config, seed: int) -> None:
    """The public forward pass and gradients, the rule forced onto the implicit route, against PyTorch float64."""
    cfg = dataclasses.replace(cfg, stride=1)
    with pytest.MonkeyPatch.context() as mp:
        _force(mp)
        geom = _geometry(cfg)
        if not geom.dilates_input and not all(k == 1 for k in geom.kernel):
            assert dispatch.route(geom, np.dtype(np.float64), "auto", "forward") == "implicit"
        rng = np.random.default_rng(seed)
        x, w, b = cfg.arrays(rng)
        y = cg.conv(x, w, b, **cfg.kwargs())
        gy = rng.standard_normal(y.shape)
        refs = torch_conv(cfg, x, w, b, gy)
        for ours, ref in zip((y, *cg.conv_backward(gy, x, w, **cfg.kwargs())), refs):
            _close(ours, ref)
    state.clear_caches()


def test_float32_layer_against_float64(forced: None) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 9, 10, 11)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3, 3)).astype(np.float32)
    y = cg.conv(x, w, padding=1)
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx, _, _ = cg.conv_backward(g, x, w, padding=1)
    assert y.dtype == gx.dtype == np.float32
    geom = geometry.conv_geometry(x.shape, w.shape, padding=1)
    x64, w64, g64 = (a.astype(np.float64) for a in (x, w, g))
    _close(y.astype(np.float64), gemm.gemm_forward(x64, w64, geom), rtol=1e-5)
    _close(gx.astype(np.float64), gemm.gemm_input_grad(g64, w64, geom), rtol=1e-5)


# ----------------------------------------------------------------------------- faults and odd inputs


def test_non_finite_values_land_where_the_gemm_route_puts_them(forced: None) -> None:
    """NaN and infinity in x, g or w: the same values as the gemm route (an infinite weight sends the input
    gradient there, since the full correlation would multiply it by the padding's zeros)."""
    rng = np.random.default_rng(4)
    geom = geometry.conv_geometry((2, 3, 8, 9), (4, 3, 3, 2), padding=(2, 1), dilation=(1, 2))
    x = rng.standard_normal(geom.input_shape)
    w = rng.standard_normal(geom.weight_shape)
    g = rng.standard_normal(geom.output_shape)
    x[0, 1, 0, 0], x[1, 2, 4, 5], g[0, 3, 1, 1], g[1, 0, -1, -1] = np.nan, np.inf, -np.inf, np.nan
    w_inf = w.copy()
    w_inf[2, 1, 0, 1] = np.inf
    with np.errstate(invalid="ignore"):
        for ww in (w, w_inf):
            for got, ref in ((implicit.implicit_forward(x, ww, geom), gemm.gemm_forward(x, ww, geom)),
                             (implicit.implicit_input_grad(g, ww, geom), gemm.gemm_input_grad(g, ww, geom))):
                np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
                np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
                finite = np.isfinite(ref)
                np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-12, atol=1e-12)
    assert dispatch.route(geom, np.dtype(np.float64), "auto", "input") == "implicit"


def test_inputs_untouched_results_fresh_and_views_accepted(forced: None) -> None:
    rng = np.random.default_rng(5)
    base = rng.standard_normal((3, 9, 12, 12))
    x = base[::2, ::3, 1:, ::-1]  # a non-contiguous view
    w = rng.standard_normal((5, 3, 3, 3))
    g = rng.standard_normal((2, 5, 11, 12))
    copies = [a.copy() for a in (base, w, g)]
    geom = geometry.conv_geometry(x.shape, w.shape, padding=1)
    for got, ref in ((implicit.implicit_forward(x, w, geom), gemm.gemm_forward(np.ascontiguousarray(x), w, geom)),
                     (implicit.implicit_input_grad(g, w, geom), gemm.gemm_input_grad(g, w, geom))):
        _close(got, ref)
        assert got.flags.c_contiguous and got.flags.writeable
        for a in (base, w, g):
            assert not np.shares_memory(got, a)
    for a, c in zip((base, w, g), copies):
        np.testing.assert_array_equal(a, c)


def test_empty_batch_and_single_position() -> None:
    rng = np.random.default_rng(6)
    geom0 = geometry.conv_geometry((0, 4, 6, 6), (8, 4, 3, 3), padding=1)
    assert implicit.implicit_forward(np.zeros((0, 4, 6, 6)), np.ones((8, 4, 3, 3)), geom0).shape == (0, 8, 6, 6)
    assert implicit.implicit_input_grad(np.zeros((0, 8, 6, 6)), np.ones((8, 4, 3, 3)), geom0).shape == (0, 4, 6, 6)
    assert implicit.choose(geom0, np.dtype(np.float64), "auto", "forward", exact=False, finite=True) is None
    # the kernel covers the whole padded input: one output, the grid read to its last element
    x, w = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((6, 3, 4, 5))
    geom = geometry.conv_geometry(x.shape, w.shape)
    _close(implicit.implicit_forward(x, w, geom), gemm.gemm_forward(x, w, geom))
    g = rng.standard_normal((2, 6, 1, 1))
    _close(implicit.implicit_input_grad(g, w, geom), gemm.gemm_input_grad(g, w, geom))


def test_chunks_under_a_small_budget(forced: None) -> None:
    """A budget of one sample's grids: every sample its own chunk, the same result."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((5, 8, 10, 10)), rng.standard_normal((8, 8, 3, 3))
    geom = geometry.conv_geometry(x.shape, w.shape, padding=1)
    g = rng.standard_normal(geom.output_shape)
    expected = (gemm.gemm_forward(x, w, geom), gemm.gemm_input_grad(g, w, geom))
    with cg.workspace_budget(implicit.sample_bytes(implicit.full_geometry(geom), 8)):
        _close(implicit.implicit_forward(x, w, geom), expected[0])
        _close(implicit.implicit_input_grad(g, w, geom), expected[1])


def test_chunks_stay_within_32_bit_blas_indices(forced: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the budget, a chunk's grids stay below the element limit (samples split into chunks); a layer one
    sample of which is over it is not routed here."""
    rng = np.random.default_rng(10)
    x, w = rng.standard_normal((4, 8, 10, 10)), rng.standard_normal((8, 8, 3, 3))
    geom = geometry.conv_geometry(x.shape, w.shape, padding=1)
    expected = gemm.gemm_forward(x, w, geom)
    per_sample = implicit._chunk_elements(geom)
    assert per_sample == 8 * 3 * 12 * 12  # the grid expanded along the last kernel dimension (8 channels)
    monkeypatch.setattr(implicit, "MAX_CHUNK_ELEMENTS", 2 * per_sample)  # one sample per chunk
    calls: list[int] = []
    original = blas.gemm

    def spy(a: np.ndarray, b: np.ndarray, *args: Any, **kwargs: Any) -> None:
        calls.append(b.size)
        original(a, b, *args, **kwargs)

    monkeypatch.setattr(blas, "gemm", spy)
    with cg.workspace_budget(1 << 30):
        _close(implicit.implicit_forward(x, w, geom), expected)
        assert implicit.applies(geom, np.dtype(np.float64), "forward")
    assert len(calls) == 4 * 3 and max(calls) <= 2 * per_sample  # 3 outer offsets per one-sample chunk
    monkeypatch.setattr(implicit, "MAX_CHUNK_ELEMENTS", 2 * per_sample - 1)
    assert not implicit.applies(geom, np.dtype(np.float64), "forward")


@given(m=st.integers(0, 5000), column=st.integers(1, 4096), block=st.integers(-1, 1 << 16))
def test_column_blocks_cover_the_chunk(m: int, column: int, block: int) -> None:
    """Consecutive, non-empty blocks covering ``[0, m)``: one where the chunk holds at most two blocks' bytes (or
    blocking is off), else blocks of at most about :data:`~convgrad.engine.implicit.COLUMN_BLOCK_BYTES` and
    lengths within one of each other."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(implicit, "COLUMN_BLOCK_BYTES", block)
        blocks = implicit.column_blocks(m, column)
    assert blocks[0][0] == 0 and blocks[-1][1] == m
    assert all(b[1] == c[0] for b, c in itertools.pairwise(blocks))
    if block <= 0 or m * column <= 2 * block:
        assert blocks == [(0, m)]
        return
    lengths = [b1 - b0 for b0, b1 in blocks]
    assert min(lengths) >= 1 and all(n == lengths[0] for n in lengths[:-1]) and lengths[-1] <= lengths[0]
    assert lengths[0] <= -(-block // column) + 1  # about one block's bytes (at least one column), never a chunk
    assert len(blocks) >= min(m, 2)


def test_column_blocks_sum_each_block_over_every_offset(forced: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk over two blocks' bytes is summed block by block (every offset's GEMM over one block, then the
    next), with groups and the expanded grid, and gives the one-block result."""
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((3, 8, 40, 9)), rng.standard_normal((6, 4, 3, 3))
    geom = geometry.conv_geometry(x.shape, w.shape, padding=1, groups=2)
    g = rng.standard_normal(geom.output_shape)
    expected = (gemm.gemm_forward(x, w, geom), gemm.gemm_input_grad(g, w, geom))
    calls: list[tuple[int, int]] = []
    original = blas.gemm

    def spy(a: np.ndarray, b: np.ndarray, ldb: int, c: np.ndarray, beta: float, **kwargs: Any) -> None:
        calls.append((kwargs["c_start"], kwargs["n"]))
        original(a, b, ldb, c, beta, **kwargs)

    monkeypatch.setattr(blas, "gemm", spy)
    m = 3 * 42 * 11
    monkeypatch.setattr(implicit, "COLUMN_BLOCK_BYTES", m * (6 + 8 * 3) * 8 // 5)  # five blocks of the forward
    _close(implicit.implicit_forward(x, w, geom), expected[0])
    assert len(calls) == 5 * 2 * 3  # blocks × groups × outer offsets (the grid expanded: 4 channels per group)
    assert sum(n for _, n in calls) == 2 * 3 * m and len({n for _, n in calls}) <= 2
    assert [start % m for start, _ in calls[:6]] == [0] * 6  # the first block's six GEMMs come first
    _close(implicit.implicit_input_grad(g, w, geom), expected[1])


def test_threads_share_the_route(forced: None) -> None:
    """Calls from several threads at once (the BLAS releases the GIL) give the sequential results."""
    rng = np.random.default_rng(8)
    cases = []
    for i in range(6):
        x, w = rng.standard_normal((2, 8, 20 + i, 17)), rng.standard_normal((12, 8, 3, 3))
        geom = geometry.conv_geometry(x.shape, w.shape, padding=1)
        cases.append((x, w, geom, gemm.gemm_forward(x, w, geom)))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: implicit.implicit_forward(c[0], c[1], c[2]), cases * 3))
    for got, case in zip(results, cases * 3):
        _close(got, case[3])


def _child(queue: Any) -> None:
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((2, 8, 16, 16)), rng.standard_normal((8, 8, 3, 3))
    geom = geometry.conv_geometry(x.shape, w.shape, padding=1)
    queue.put(float(np.abs(implicit.implicit_forward(x, w, geom) - gemm.gemm_forward(x, w, geom)).max()))


@pytest.mark.skipif(sys.platform != "linux", reason="fork is a POSIX start method")
def test_a_forked_child_uses_the_route() -> None:
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((2, 8, 16, 16)), rng.standard_normal((8, 8, 3, 3))
    geom = geometry.conv_geometry(x.shape, w.shape, padding=1)
    implicit.implicit_forward(x, w, geom)  # the binding and the BLAS's threads exist before the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) < 1e-12


# ----------------------------------------------------------------------------- the pointwise weight gradient


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("c_out", [6, 512])  # both orientations: (C, O) below WIDE_OUTPUT, (O, C) from it
def test_pointwise_weight_gradient_accumulated_by_the_blas(groups: int, c_out: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``Σ_n g[n] @ x[n]ᵀ`` added in place by the BLAS equals the reference, float64 and float32, with NaN and
    infinity where the reference puts them; strided, non-contiguous, complex and empty inputs take the other
    paths."""
    from convgrad import reference
    from convgrad.engine import pointwise

    monkeypatch.setattr(pointwise, "ACCUMULATE_CHANNELS", 1)  # small channels here, to test the arithmetic
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((3, 4, 16, 17)), rng.standard_normal((c_out, 4 // groups, 1, 1))
    geom = geometry.conv_geometry(x.shape, w.shape, groups=groups)
    g = rng.standard_normal(geom.output_shape)
    assert pointwise._accumulates(g, x, geom, np.dtype(np.float64))
    expected = reference.conv_weight_grad(g, x, weight_shape=w.shape, groups=groups)
    _close(pointwise.pointwise_weight_grad(g, x, geom), expected)
    g32, x32 = g.astype(np.float32), x.astype(np.float32)
    got32 = pointwise.pointwise_weight_grad(g32, x32, geom)
    assert got32.dtype == np.float32
    _close(got32.astype(np.float64), expected, rtol=1e-5)
    x_bad, g_bad = x.copy(), g.copy()
    x_bad[1, 0, 2, 3], g_bad[2, 1, 0, 0] = np.inf, np.nan
    with np.errstate(invalid="ignore"):
        got, ref = pointwise.pointwise_weight_grad(g_bad, x_bad, geom), reference.conv_weight_grad(
            g_bad, x_bad, weight_shape=w.shape, groups=groups)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
    finite = np.isfinite(ref)
    _close(got[finite], ref[finite])
    # the other paths
    assert not pointwise._accumulates(g, x[:, :, :, ::-1], geom, np.dtype(np.float64))
    _close(pointwise.pointwise_weight_grad(g, x[:, :, :, ::-1], geom),
           reference.conv_weight_grad(g, x[:, :, :, ::-1], weight_shape=w.shape, groups=groups))
    assert not pointwise._accumulates(g.astype(np.complex128), x.astype(np.complex128), geom,
                                      np.dtype(np.complex128))
    strided = geometry.conv_geometry(x.shape, w.shape, groups=groups, stride=2)
    assert not pointwise._accumulates(g[:, :, ::2, ::2], x, strided, np.dtype(np.float64))
    short = geometry.conv_geometry((3, 4, 15, 17), w.shape, groups=groups)  # 255 positions: the copies
    assert not pointwise._accumulates(g[..., :15, :], x[..., :15, :], short, np.dtype(np.float64))
    monkeypatch.setattr(pointwise, "ACCUMULATE_CHANNELS", c_out * 4 // groups**2 + 1)  # thinner: the copies
    assert not pointwise._accumulates(g, x, geom, np.dtype(np.float64))
    empty = geometry.conv_geometry((0, 4, 16, 17), w.shape, groups=groups)
    out = pointwise.pointwise_weight_grad(np.zeros((0, c_out, 16, 17)), np.zeros((0, 4, 16, 17)), empty)
    assert out.shape == w.shape and not out.any()
