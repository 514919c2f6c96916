"""Space to depth (:mod:`convgrad.engine.s2d`): a strided layer whose kernel is a multiple of its stride, computed
as the stride-1 layer of its stride phases stacked as channels.

Its three contractions are compared with the gemm route over hypothesis-drawn 1-, 2- and 3-d geometries (strides
and kernel multiples per dimension, groups, padding), the rule with the layers it must and must not take, the
public functions (``conv``, ``conv_backward``, ``conv_transpose`` with ``output_padding``) with PyTorch float64
autograd, non-finite data with PyTorch's pattern, float32 error, unmodified inputs and threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad._geometry import Geometry, conv_geometry
from convgrad.engine import blas, cost, dispatch, implicit, s2d, small, state

OPS = ("forward", "input", "weight")
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


@pytest.fixture(autouse=True)
def _fresh_caches() -> Any:
    state.clear_caches()
    yield
    state.clear_caches()


@pytest.fixture
def forced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small layers as the large ones: the implicit route takes every stride-1 layer it can (so s2d applies)."""
    if not blas.available(np.float64):
        pytest.skip("NumPy's BLAS cannot be called directly here: no implicit route, so no rewrite")
    monkeypatch.setattr(implicit, "MIN_CHANNELS", 1)
    monkeypatch.setattr(implicit, "MIN_POSITIONS", 0)
    monkeypatch.setattr(cost, "implicit_cost", lambda geom, expand=1: -1.0)
    monkeypatch.setattr(small, "SMALL_WINDOWS", -1)
    state.clear_caches()


def _gemm(geom: Geometry, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    return [dispatch.ROUTES["forward"]["gemm"](x, w, geom), dispatch.ROUTES["input"]["gemm"](g, w, geom),
            dispatch.ROUTES["weight"]["gemm"](g, x, geom)]


def _s2d(geom: Geometry, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    return [s2d.s2d_forward(x, w, geom), s2d.s2d_input_grad(g, w, geom), s2d.s2d_weight_grad(g, x, geom)]


@st.composite
def _layers(draw: st.DrawFn) -> tuple[Geometry, int]:
    d = draw(st.integers(1, 3))
    strides = draw(st.lists(st.integers(1, 3), min_size=d, max_size=d))
    assume(any(s > 1 for s in strides))
    kernel = [s * draw(st.integers(1, 3 if d < 3 else 2)) for s in strides]
    assume(any(k > s for k, s in zip(kernel, strides)))
    groups = draw(st.integers(1, 2))
    c, o = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    lo = [draw(st.integers(0, k - 1)) for k in kernel]
    hi = [draw(st.integers(0, k - 1)) for k in kernel]
    # sizes for which the stride-1 layer has exactly the layer's outputs: P = S + lo + hi with ⌈P/s⌉ − K/s + 1 = Q
    sizes = []
    for k, s, a, b in zip(kernel, strides, lo, hi):
        q = draw(st.integers(1, 4 if d == 3 else 6))
        p = (q - 1) * s + k  # the smallest padded size with q outputs; ⌈p/s⌉ = q − 1 + k/s exactly
        size = p - a - b
        assume(size >= 1)
        sizes.append(size)
    n = draw(st.integers(1, 3))
    geom = conv_geometry((n, c) + tuple(sizes), (o, c // groups) + tuple(kernel), stride=tuple(strides),
                         padding=tuple(zip(lo, hi)), groups=groups)
    return geom, draw(st.integers(0, 2**32 - 1))


@settings(deadline=None, max_examples=60)
@given(layer=_layers())
def test_matches_the_gemm_route(layer: tuple[Geometry, int]) -> None:
    """The rewritten layer computed where it lands (the implicit route where its rule takes it, else the rules)."""
    _check_against_gemm(layer)


@settings(deadline=None, max_examples=30)
@given(layer=_layers())
def test_matches_the_gemm_route_on_the_implicit_route(layer: tuple[Geometry, int]) -> None:
    """The same with the implicit route's thresholds lifted, so the rewritten layer always takes it (as the large
    layers the rule sends here do)."""
    if not blas.available(np.float64):
        pytest.skip("NumPy's BLAS cannot be called directly here")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(implicit, "MIN_CHANNELS", 1)
        mp.setattr(implicit, "MIN_POSITIONS", 0)
        state.clear_caches()
        inner = s2d.geometry(layer[0])
        assert inner is not None
        if all(k == 1 for k in inner.kernel):
            return  # a 1×1 stride-1 layer is the pointwise route's, never the implicit one's
        assert implicit.applies(inner, np.dtype(np.float64), "forward")
        _check_against_gemm(layer)
    state.clear_caches()


def _check_against_gemm(layer: tuple[Geometry, int]) -> None:
    geom, seed = layer
    assert s2d.geometry(geom) is not None
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geom.input_shape)
    w = rng.standard_normal(geom.weight_shape)
    g = rng.standard_normal(geom.output_shape)
    for ours, ref, name in zip(_s2d(geom, x, w, g), _gemm(geom, x, w, g), OPS):
        assert ours.shape == ref.shape and ours.dtype == ref.dtype, name
        np.testing.assert_allclose(ours, ref, rtol=1e-11, atol=1e-11, err_msg=name)


def test_the_rewritten_layer() -> None:
    geom = conv_geometry((8, 64, 56, 56), (128, 64, 4, 4), stride=2, padding=1)
    inner = s2d.geometry(geom)
    assert inner is not None
    assert (inner.c_in, inner.c_out, inner.kernel, inner.stride, inner.in_size, inner.out_size) == (
        256, 128, (2, 2), (1, 1), (29, 29), (28, 28))
    grouped = s2d.geometry(conv_geometry((1, 4, 8, 9), (6, 2, 2, 6), stride=(1, 3), padding=(0, 0), groups=2))
    assert grouped is not None and (grouped.c_in, grouped.groups, grouped.kernel) == (12, 2, (2, 2))
    w = np.arange(2 * 3 * 4 * 4.0).reshape(2, 3, 4, 4)
    wp = s2d.weight(w, geom)
    assert wp.shape == (2, 12, 2, 2)
    assert wp[1, 2 * 4 + 1 * 2 + 0, 1, 0] == w[1, 2, 1 * 2 + 1, 0 * 2 + 0]  # channel c·S + (r1, r2), tap t·s + r


@pytest.mark.parametrize(("x_shape", "w_shape", "kw"), [
    ((2, 3, 10, 8), (4, 3, 3, 3), {"stride": 2, "padding": 1}),  # the kernel is not a multiple of the stride
    ((2, 3, 10, 8), (4, 3, 2, 2), {"stride": 2}),  # kernel = stride: no overlap, nothing to gain
    ((2, 3, 10, 8), (4, 3, 4, 4), {"padding": 1}),  # stride 1
    ((2, 3, 10, 8), (4, 3, 4, 4), {"stride": 2, "padding": 1, "dilation": 2}),
    ((2, 3, 10, 8), (4, 3, 4, 4), {"stride": 2, "padding": ((-1, 1), (1, 1))}),  # a crop
    ((2, 3, 10, 8), (4, 3, 4, 4), {"stride": 2, "padding": 1, "padding_mode": "reflect"}),
    ((2, 3, 10, 8), (4, 3, 4, 4), {"stride": 2, "padding": 1, "input_dilation": 2}),
    ((2, 3, 10, 9), (4, 3, 4, 4), {"stride": 2, "padding": 1}),  # the stride-1 layer would have one more output
])
def test_where_the_rewrite_does_not_apply(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                                          kw: dict[str, Any]) -> None:
    geom = conv_geometry(x_shape, w_shape, **kw)
    assert s2d.geometry(geom) is None
    for op in OPS:
        assert s2d.choose(geom, np.dtype(np.float32), "auto", op, exact=False, finite=True) is None


def test_rule_on_the_benchmark_layer() -> None:
    """The benchmark's 4×4 stride-2 layer (the convolution under its transposed layer) takes the rewrite for its
    forward pass and input gradient, where the stride-1 layer takes the implicit route; not its weight gradient
    (measured no faster), nor integer data, other methods, or where the BLAS cannot be called directly."""
    geom = conv_geometry((8, 64, 56, 56), (128, 64, 4, 4), stride=2, padding=1)
    f32 = np.dtype(np.float32)
    if not blas.available(f32):
        pytest.skip("NumPy's BLAS cannot be called directly here")
    for op in ("forward", "input"):
        assert s2d.choose(geom, f32, "auto", op, exact=False, finite=True) == "s2d"
        assert s2d.choose(geom, f32, "direct", op, exact=False, finite=True) == "s2d"
        assert dispatch.route(geom, f32, "auto", op) == "s2d"
        for method in ("fft", "winograd", "gemm"):
            assert s2d.choose(geom, f32, method, op, exact=False, finite=True) is None
        assert s2d.choose(geom, np.dtype(np.float64), "auto", op, exact=True, finite=True) is None
        assert s2d.choose(geom, np.dtype(np.complex64), "auto", op, exact=False, finite=True) is None
    assert s2d.choose(geom, f32, "auto", "weight", exact=False, finite=True) is None
    assert dispatch.route(geom, f32, "auto", "weight") != "s2d"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(blas, "ENABLED", False)
        state.clear_caches()
        assert s2d.choose(geom, f32, "auto", "forward", exact=False, finite=True) is None
    state.clear_caches()


def _torch(x: np.ndarray, w: np.ndarray, b: np.ndarray, g: np.ndarray, kw: dict[str, Any]) -> list[np.ndarray]:
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = _CONV[w.ndim - 2](xt, wt, bt, **kw)
    return [yt.detach().numpy()] + [t.numpy() for t in torch.autograd.grad(yt, (xt, wt, bt), torch.tensor(g))]


@pytest.mark.parametrize(("x_shape", "w_shape", "kw"), [
    ((2, 3, 12, 10), (5, 3, 4, 4), {"stride": 2, "padding": 1}),
    ((2, 4, 9, 12), (6, 2, 3, 6), {"stride": (1, 3), "padding": (1, 0), "groups": 2}),
    ((1, 2, 6, 8, 4), (3, 2, 4, 4, 4), {"stride": 2, "padding": 1}),
    ((3, 2, 21), (4, 2, 6), {"stride": 3, "padding": 0}),
])
def test_public_functions_against_torch(forced: None, x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                                        kw: dict[str, Any]) -> None:
    geom = conv_geometry(x_shape, w_shape, **kw)
    assert [dispatch.route(geom, np.dtype(np.float64), "auto", op) for op in ("forward", "input")] == ["s2d"] * 2
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    g = rng.standard_normal(geom.output_shape)
    copies = [a.copy() for a in (x, w, b, g)]
    ours = [cg.conv(x, w, b, **kw), *cg.conv_backward(g, x, w, **kw)]
    for got, ref in zip(ours, _torch(x, w, b, g, kw)):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    for a, c in zip((x, w, b, g), copies):
        np.testing.assert_array_equal(a, c)  # inputs untouched
    assert not any(np.shares_memory(r, a) for r in ours for a in (x, w, b, g))


def test_transposed_layer_with_output_padding(forced: None) -> None:
    """A transposed 4×4 stride-2 layer: its forward pass is the rewritten input gradient, its input gradient the
    rewritten forward pass (with ``output_padding`` the layer's size is odd; the rule declines where the stride-1
    layer would have extra outputs, and the result is PyTorch's either way)."""
    rng = np.random.default_rng(8)
    for op_pad in (0, 1):
        x = rng.standard_normal((2, 6, 7, 5))
        w = rng.standard_normal((6, 4, 4, 4))
        b = rng.standard_normal(4)
        under = conv_geometry((2, 4, 14 + op_pad, 10 + op_pad), (6, 4, 4, 4), stride=2, padding=1)
        taken = [dispatch.route(under, np.dtype(np.float64), "auto", op) for op in ("forward", "input")]
        assert taken == (["s2d"] * 2 if op_pad == 0 else [r for r in taken if r != "s2d"]), (op_pad, taken)
        y = cg.conv_transpose(x, w, b, stride=2, padding=1, output_padding=op_pad)
        g = rng.standard_normal(y.shape)
        gx, gw, gb = cg.conv_transpose_backward(g, x, w, stride=2, padding=1, output_padding=op_pad)
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        yt = F.conv_transpose2d(xt, wt, bt, stride=2, padding=1, output_padding=op_pad)
        refs = torch.autograd.grad(yt, (xt, wt, bt), torch.tensor(g))
        for got, ref in zip((y, gx, gw, gb), (yt.detach(), *refs)):
            np.testing.assert_allclose(got, ref.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_values_land_where_torch_puts_them(forced: None, value: float) -> None:
    xs, ws, kw = (2, 3, 8, 10), (4, 3, 4, 4), {"stride": 2, "padding": 1}
    geom = conv_geometry(xs, ws, **kw)
    assert dispatch.route(geom, np.dtype(np.float64), "auto", "forward", finite=False) == "s2d"
    rng = np.random.default_rng(6)
    x0, w0, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(4)
    g0 = rng.standard_normal(geom.output_shape)
    for target, pos in [("x", (0, 0, 0, 0)), ("x", (1, 2, 7, 9)), ("x", (0, 1, 3, 4)), ("w", (0, 0, 0, 0)),
                        ("w", (3, 2, 3, 3)), ("g", (1, 3, 3, 4)), ("g", (0, 0, 0, 0))]:
        arrays = {"x": x0.copy(), "w": w0.copy(), "g": g0.copy()}
        arrays[target][pos] = value
        x, w, g = arrays["x"], arrays["w"], arrays["g"]
        with np.errstate(invalid="ignore"):
            ours = [cg.conv(x, w, b, **kw), *cg.conv_backward(g, x, w, **kw)]
        for what, got, ref in zip(("y", "gx", "gw", "gb"), ours, _torch(x, w, b, g, kw)):
            np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"{what}, {value} in {target}{pos}")
            np.testing.assert_array_equal(np.isposinf(got), np.isposinf(ref), err_msg=what)
            np.testing.assert_array_equal(np.isneginf(got), np.isneginf(ref), err_msg=what)
            finite = np.isfinite(ref)
            np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-9, atol=1e-9, err_msg=what)


def test_float32_and_threads() -> None:
    """The benchmark's layer shape, smaller batch, float32 against float64 (within the gemm route's error), and
    four threads calling at once getting the same results."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 16, 24, 24)).astype(np.float32)
    w = (rng.standard_normal((32, 16, 4, 4)) / 8).astype(np.float32)
    geom = conv_geometry(x.shape, w.shape, stride=2, padding=1)
    g = rng.standard_normal(geom.output_shape).astype(np.float32)
    ref = _gemm(geom, x.astype(np.float64), w.astype(np.float64), g.astype(np.float64))
    ours = _s2d(geom, x, w, g)
    gemm32 = _gemm(geom, x, w, g)
    for a, b, c in zip(ours, ref, gemm32):
        assert a.dtype == np.float32
        err, gemm_err = np.abs(a - b).max(), np.abs(c - b).max()
        assert err <= 4 * gemm_err + 1e-6, (err, gemm_err)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _s2d(geom, x, w, g), range(8)))
    for r in results:
        for a, b in zip(r, ours):
            np.testing.assert_array_equal(a, b)
