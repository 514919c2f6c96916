"""The compiled depthwise route (``convgrad[jit]``) against the NumPy routes and PyTorch in float64.

Hypothesis draws 1-, 2- and 3-d depthwise geometries over stride, dilation, padding (also cropping and input
dilation, which the NumPy routes define) and the padding modes; every kernel is also run through the dispatcher
(monkeypatched to consult :func:`convgrad.engine.jit.choose`, as the engine does once the route is registered).
The kernels are compiled once per process with ``cache=True``, so later runs load them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convgrad as cg
from convgrad._geometry import Geometry, conv_geometry
from convgrad.engine import dispatch, gemm, jit, state

pytest.importorskip("numba")
torch = pytest.importorskip("torch")
F = torch.nn.functional

OPS = ("forward", "input", "weight")


def _numpy_routes(geom: Geometry, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    """The three contractions by the NumPy routes: the gemm route, and the depthwise route (phase grids) for the
    input gradient."""
    return [dispatch.ROUTES["forward"]["gemm"](x, w, geom), dispatch.ROUTES["input"]["depthwise"](g, w, geom),
            dispatch.ROUTES["weight"]["gemm"](g, x, geom)]


def _jit_routes(geom: Geometry, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    return [jit.depthwise_forward(x, w, geom), jit.depthwise_input_grad(g, w, geom),
            jit.depthwise_weight_grad(g, x, geom)]


@st.composite
def depthwise_cases(draw: Any) -> tuple[Geometry, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    d = draw(st.integers(1, 3))
    c = draw(st.integers(2, 4))
    n = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    sizes, padding = [], []
    for k, dl in zip(kernel, dilation):
        span = dl * (k - 1) + 1
        size = draw(st.integers(max(2, span), span + 6 if d < 3 else span + 3))
        lo = draw(st.integers(0, min(2, size - 1)))
        hi = draw(st.integers(0, min(2, size - 1)))
        sizes.append(size)
        padding.append((lo, hi))
    kw: dict[str, Any] = {"stride": stride, "dilation": dilation, "padding": tuple(padding), "groups": c,
                          "padding_mode": mode}
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, *sizes))
    w = rng.standard_normal((c, 1, *kernel))
    geom = conv_geometry(x.shape, w.shape, **kw)
    g = rng.standard_normal(geom.output_shape)
    return geom, x, w, g, kw


def _torch_reference(x: np.ndarray, w: np.ndarray, g: np.ndarray, kw: dict[str, Any]) -> list[np.ndarray]:
    d = w.ndim - 2
    xt = torch.from_numpy(x).requires_grad_()
    wt = torch.from_numpy(w).requires_grad_()
    pads = [p for lo_hi in reversed(kw["padding"]) for p in lo_hi]
    mode = {"zeros": "constant"}.get(kw["padding_mode"], kw["padding_mode"])
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[d]
    y = conv(F.pad(xt, pads, mode=mode), wt, stride=kw["stride"], dilation=kw["dilation"], groups=kw["groups"])
    gx, gw = torch.autograd.grad(y, (xt, wt), torch.from_numpy(g))
    return [y.detach().numpy(), gx.numpy(), gw.numpy()]


@given(depthwise_cases())
def test_depthwise_kernels_match_numpy_and_torch(case: tuple[Geometry, np.ndarray, np.ndarray, np.ndarray,
                                                             dict[str, Any]]) -> None:
    geom, x, w, g, kw = case
    ours = _jit_routes(geom, x, w, g)
    for got, want in zip(ours, _numpy_routes(geom, x, w, g)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    for got, want in zip(ours, _torch_reference(x, w, g, kw)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    _check_fused(geom, x, w, g, ours)


def _check_fused(geom: Geometry, x: np.ndarray, w: np.ndarray, g: np.ndarray, separate: list[np.ndarray]) -> None:
    """The forward pass with its bias added as each plane is written is ``y + b`` to the bit; the fused backward
    pass (where it applies) gives the separate kernels' gradients to the bit and ``g``'s sums per channel."""
    b = np.linspace(-2.0, 3.0, geom.c_out).astype(x.dtype)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(jit.depthwise_forward(x, w, geom, b),
                                      separate[0] + b.reshape((-1,) + (1,) * geom.d))
    if geom.padding_mode != "zeros" or geom.dilates_input:  # the fused kernels' domain (backward_fuses: also
        return                                               # enough channels and budget, tested below)
    with np.errstate(invalid="ignore"):
        gx, gw, gb = jit.depthwise_backward(g, x, w, geom)
        want_b = g.sum(axis=(0,) + tuple(range(2, g.ndim)))
    np.testing.assert_array_equal(gx, separate[1])
    np.testing.assert_array_equal(gw, separate[2])
    assert gb.dtype == want_b.dtype and gb.shape == want_b.shape
    np.testing.assert_array_equal(np.isnan(gb), np.isnan(want_b))
    np.testing.assert_allclose(gb, want_b, rtol=1e-5 if g.dtype == np.float32 else 1e-12, atol=1e-5)


@pytest.mark.parametrize("kw", [
    {"padding": ((-1, 2), (3, -1))},                 # cropping
    {"padding": 2, "input_dilation": (2, 3)},        # input dilation: through the padding map
    {"padding": 1, "stride": 2, "dilation": (2, 1)},
])
def test_crops_and_input_dilation_match_the_numpy_routes(kw: dict[str, Any]) -> None:
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((3, 1, 3, 2))
    geom = conv_geometry(x.shape, w.shape, groups=3, **kw)
    g = rng.standard_normal(geom.output_shape)
    for got, want in zip(_jit_routes(geom, x, w, g), _numpy_routes(geom, x, w, g)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_planes_take_the_bias_in_place_to_the_bit(dtype: Any) -> None:
    """Planes of 4096 entries or more are not stacked: the row kernel writes each straight into ``y`` and adds the
    bias there, ``y + b`` to the bit (a NaN and an infinity included), and the three contractions match the NumPy
    routes."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 66, 64)).astype(dtype)
    w = rng.standard_normal((3, 1, 3, 3)).astype(dtype)
    x[1, 2, 5, 6], x[0, 1, 60, 63] = np.nan, np.inf
    geom = conv_geometry(x.shape, w.shape, padding=1, groups=3)
    assert jit.row_applies(geom) and int(jit._row_plan(geom).forward[11]) == 1  # one plane per buffer
    g = rng.standard_normal(geom.output_shape).astype(dtype)
    with np.errstate(invalid="ignore"):
        ours = _jit_routes(geom, x, w, g)
        for got, want in zip(ours, _numpy_routes(geom, x, w, g)):
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            finite = np.isfinite(want)
            np.testing.assert_allclose(got[finite], want[finite], rtol=1e-5, atol=1e-5)
    _check_fused(geom, x, w, g, ours)


def test_float32_and_nonfinite_values_land_where_the_gemm_route_puts_them() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 12, 11)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    x[0, 1, 3, 4], x[1, 2, 0, 0], w[3, 0, 1, 1] = np.nan, np.inf, -np.inf
    geom = conv_geometry(x.shape, w.shape, padding=1, groups=4)
    g = rng.standard_normal(geom.output_shape).astype(np.float32)
    with np.errstate(invalid="ignore"):
        pairs = list(zip(_jit_routes(geom, x, w, g), _numpy_routes(geom, x, w, g)))
    for got, want in pairs:
        assert got.dtype == np.float32
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(want), rtol=1e-5, atol=1e-5)


NONFINITE_GEOMETRIES: list[tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]] = [
    ((2, 3, 9, 9), (3, 1, 3, 3), {"padding": 1}),
    ((2, 3, 9, 10), (3, 1, 3, 3), {"padding": 1, "stride": 2}),
    ((1, 2, 11, 8), (2, 1, 3, 2), {"padding": ((2, 0), (1, 3)), "stride": (3, 2), "dilation": (2, 1)}),
    ((1, 2, 9, 8), (2, 1, 3, 3), {"padding": ((-1, 2), (2, -1))}),   # cropping
    ((2, 2, 13), (2, 1, 4), {"padding": 3, "stride": 2, "dilation": 2}),
    ((1, 2, 5, 6, 5), (2, 1, 3, 3, 2), {"padding": 1, "stride": (1, 2, 2)}),
]


def _planted_positions(shape: tuple[int, ...], rng: np.random.Generator) -> list[tuple[int, ...]]:
    edges = [(0,) * len(shape), tuple(s - 1 for s in shape), tuple(s // 2 for s in shape)]
    return edges + [tuple(int(rng.integers(s)) for s in shape) for _ in range(3)]


@pytest.mark.parametrize(("x_shape", "w_shape", "kw"), NONFINITE_GEOMETRIES)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_nonfinite_values_land_where_torch_puts_them(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                                                     kw: dict[str, Any], value: float) -> None:
    """No finiteness check guards the compiled route: NaN and ±inf must land exactly where PyTorch puts them
    (zero padding multiplies a non-finite weight, and ``g`` meets padded zeros in the weight gradient)."""
    rng = np.random.default_rng(11)
    c = x_shape[1]
    full = {"groups": c, "stride": 1, "dilation": 1, **kw}
    d = len(x_shape) - 2
    for key in ("stride", "dilation"):
        if isinstance(full[key], int):
            full[key] = (full[key],) * d
    if isinstance(full["padding"], int):
        full["padding"] = ((full["padding"],) * 2,) * d
    full["padding_mode"] = "zeros"
    geom = conv_geometry(x_shape, w_shape, **{k: v for k, v in full.items() if k != "padding_mode"})
    x0, w0 = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    g0 = rng.standard_normal(geom.output_shape)
    for target in ("x", "w", "g"):
        base = {"x": x0, "w": w0, "g": g0}[target]
        for pos in _planted_positions(base.shape, rng):
            arrays = {"x": x0.copy(), "w": w0.copy(), "g": g0.copy()}
            arrays[target][pos] = value
            x, w, g = arrays["x"], arrays["w"], arrays["g"]
            with np.errstate(invalid="ignore"):
                ours = _jit_routes(geom, x, w, g)
                refs = _torch_reference(x, w, g, full)
            _check_fused(geom, x, w, g, ours)
            for what, o, r in zip(("y", "gx", "gw"), ours, refs):
                where = f"{what} with {value} in {target}{list(pos)}"
                np.testing.assert_array_equal(np.isnan(o), np.isnan(r), err_msg=f"NaN pattern of {where}")
                np.testing.assert_array_equal(np.isposinf(o), np.isposinf(r), err_msg=f"+inf pattern of {where}")
                np.testing.assert_array_equal(np.isneginf(o), np.isneginf(r), err_msg=f"-inf pattern of {where}")
                finite = np.isfinite(r)
                np.testing.assert_allclose(o[finite], r[finite], rtol=1e-10, atol=1e-10, err_msg=where)


@pytest.mark.parametrize("kw", [{"padding": 1}, {"padding": 1, "stride": 2}])
def test_float32_error_is_that_of_the_gemm_route(kw: dict[str, Any]) -> None:
    """Float32 results against float64 PyTorch: within 3× the gemm route's error (weight gradient: long sums)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 8, 56, 56)).astype(np.float32)
    w = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    geom = conv_geometry(x.shape, w.shape, groups=8, **kw)
    g = rng.standard_normal(geom.output_shape).astype(np.float32)
    full = {"groups": 8, "stride": (kw.get("stride", 1),) * 2, "dilation": (1, 1), "padding": ((1, 1), (1, 1)),
            "padding_mode": "zeros"}
    refs = _torch_reference(x.astype(np.float64), w.astype(np.float64), g.astype(np.float64), full)
    for ours, numpy_route, ref in zip(_jit_routes(geom, x, w, g), _numpy_routes(geom, x, w, g), refs):
        scale = np.abs(ref).max()
        err = np.abs(ours - ref).max() / scale
        assert err <= max(3 * np.abs(numpy_route - ref).max() / scale, 1e-6)


ROW_GEOMETRIES: list[tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]] = [
    ((3, 3, 14, 14), (3, 1, 3, 3), {"padding": ((1, 1), (1, 1))}),
    ((2, 2, 7, 9), (2, 1, 3, 5), {"padding": ((0, 2), (3, 1))}),                      # rows: any low/high split
    ((2, 2, 9, 8), (2, 1, 5, 3), {"padding": ((2, 0), (2, 2)), "dilation": (1, 2)}),  # dilated along the rows
    ((5, 2, 6, 7), (2, 1, 2, 2), {"padding": ((0, 1), (1, 0))}),                      # even kernel
    ((3, 2, 11), (2, 1, 3), {"padding": ((2, 0),)}),                                  # 1-d, causal
    ((17, 2, 4, 5), (2, 1, 3, 3), {"padding": ((1, 1), (1, 1))}),                     # stacked, last block partial
]


@pytest.mark.parametrize(("x_shape", "w_shape", "kw"), ROW_GEOMETRIES)
def test_row_kernels_match_torch_and_the_phase_buffer(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                                                       kw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Stride 1, output rows as wide as the input's: the row-padded kernels (one region per kernel column, the
    wrapped columns zeroed) against PyTorch and the phase-buffer kernels, NaN and ±inf planted at the edges of
    every operand (where the wrapped reads are) land where PyTorch puts them."""
    rng = np.random.default_rng(13)
    d, c = len(x_shape) - 2, x_shape[1]
    full = {"groups": c, "stride": (1,) * d, "dilation": kw.get("dilation", (1,) * d), "padding": kw["padding"],
            "padding_mode": "zeros"}
    geom = conv_geometry(x_shape, w_shape, groups=c, padding=kw["padding"], dilation=full["dilation"])
    assert jit.row_applies(geom)
    x0, w0 = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    g0 = rng.standard_normal(geom.output_shape)
    cases = [("none", (), 0.0)] + [(t, pos, v) for t, base in (("x", x0), ("w", w0), ("g", g0))
                                   for pos in _planted_positions(base.shape, rng)[:2]
                                   for v in (np.nan, np.inf)]
    for target, pos, value in cases:
        arrays = {"x": x0.copy(), "w": w0.copy(), "g": g0.copy()}
        if target != "none":
            arrays[target][pos] = value
        x, w, g = arrays["x"], arrays["w"], arrays["g"]
        with np.errstate(invalid="ignore"):
            ours = _jit_routes(geom, x, w, g)
            refs = _torch_reference(x, w, g, full)
            _check_fused(geom, x, w, g, ours)
            monkeypatch.setattr(jit, "ROW_MAX_PLANE", 0)
            phase = _jit_routes(geom, x, w, g)
            _check_fused(geom, x, w, g, phase)
            monkeypatch.setattr(jit, "ROW_MAX_PLANE", 1 << 14)
        for what, o, r, p in zip(("y", "gx", "gw"), ours, refs, phase):
            where = f"{what} with {value} in {target}{list(pos)}"
            for test in (np.isnan, np.isposinf, np.isneginf):
                np.testing.assert_array_equal(test(o), test(r), err_msg=f"{test.__name__} of {where}")
            finite = np.isfinite(r)
            np.testing.assert_allclose(o[finite], r[finite], rtol=1e-10, atol=1e-10, err_msg=where)
            np.testing.assert_allclose(o, p, rtol=1e-10, atol=1e-10, err_msg=where)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("row", [0, 1, 13])
def test_stacked_weight_gradient_meets_the_next_plane_only_where_torch_does(value: float, row: int) -> None:
    """The row kernels' weight gradient stacks a channel's planes: the zero entries of ``g`` after one plane meet
    the first row of the next. A NaN or an infinity there gives the taps PyTorch gives (the channel summed again
    plane by plane), and the other channels keep the stacked sums (bit for bit those of one plane at a time up to
    rounding); ``conv_backward``'s fused kernel likewise."""
    rng = np.random.default_rng(21)
    x, w = rng.standard_normal((5, 3, 14, 14)), rng.standard_normal((3, 1, 3, 3))
    geom = conv_geometry(x.shape, w.shape, padding=1, groups=3)
    assert jit.row_applies(geom) and int(jit._row_plan(geom).forward[11]) == 5  # five planes stacked
    g = rng.standard_normal(geom.output_shape)
    x[2, 1, row, 4] = value
    full = {"groups": 3, "stride": (1, 1), "dilation": (1, 1), "padding": ((1, 1), (1, 1)), "padding_mode": "zeros"}
    with np.errstate(invalid="ignore"):
        gw = jit.depthwise_weight_grad(g, x, geom)
        fused = jit.depthwise_backward(g, x, w, geom)[1]
        ref = _torch_reference(x, w, g, full)[2]
    np.testing.assert_array_equal(fused, gw)
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(gw), test(ref), err_msg=test.__name__)
    assert not np.isfinite(gw[1]).all() and np.isfinite(gw[[0, 2]]).all()
    finite = np.isfinite(ref)
    np.testing.assert_allclose(gw[finite], ref[finite], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("width", [9, 10, 13])
@pytest.mark.parametrize("pad", [0, 1, 2])
def test_stride_two_input_grad_interleaves_the_column_phases(width: int, pad: int) -> None:
    """Stride 2 along the rows: the two column phases of the input gradient are written in one interleaved pass
    (either may be the longer, or start first); against the NumPy depthwise route."""
    rng = np.random.default_rng(width + pad)
    geom = conv_geometry((3, 2, 7, width), (2, 1, 3, 3), stride=(2, 2), padding=((1, 1), (pad, 1)), groups=2)
    w, g = rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(geom.output_shape)
    np.testing.assert_allclose(jit.depthwise_input_grad(g, w, geom),
                               dispatch.ROUTES["input"]["depthwise"](g, w, geom), rtol=1e-12, atol=1e-12)


def test_row_applies() -> None:
    same = conv_geometry((8, 512, 14, 14), (512, 1, 3, 3), padding=1, groups=512)
    assert jit.row_applies(same)
    assert not jit.row_applies(conv_geometry((8, 4, 14, 14), (4, 1, 3, 3), padding=1, stride=2, groups=4))
    assert not jit.row_applies(conv_geometry((8, 4, 14, 14), (4, 1, 3, 3), padding=0, groups=4))  # narrower rows
    assert not jit.row_applies(conv_geometry((8, 4, 14, 14), (4, 1, 3, 3), padding=((3, -1), (1, 1)),
                                             groups=4))  # cropping
    assert not jit.row_applies(conv_geometry((8, 4, 4, 4), (4, 1, 3, 3), padding=4, dilation=4, groups=4))
    assert not jit.row_applies(conv_geometry((1, 2, 5, 5, 5), (2, 1, 3, 3, 3), padding=1, groups=2))  # 3-d
    assert not jit.row_applies(conv_geometry((1, 2, 256, 256), (2, 1, 3, 3), padding=1, groups=2))  # too large


@pytest.mark.parametrize("size", [14, 28])
def test_float32_error_of_small_planes(size: int) -> None:
    """The row-padded kernels in float32 against float64 PyTorch: within 3× the gemm route's error."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 16, size, size)).astype(np.float32)
    w = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
    geom = conv_geometry(x.shape, w.shape, groups=16, padding=1)
    assert jit.row_applies(geom)
    g = rng.standard_normal(geom.output_shape).astype(np.float32)
    full = {"groups": 16, "stride": (1, 1), "dilation": (1, 1), "padding": ((1, 1), (1, 1)), "padding_mode": "zeros"}
    refs = _torch_reference(x.astype(np.float64), w.astype(np.float64), g.astype(np.float64), full)
    for ours, numpy_route, ref in zip(_jit_routes(geom, x, w, g), _numpy_routes(geom, x, w, g), refs):
        assert ours.dtype == np.float32
        scale = np.abs(ref).max()
        assert np.abs(ours - ref).max() / scale <= max(3 * np.abs(numpy_route - ref).max() / scale, 1e-6)


def test_scratch_over_the_budget_declines() -> None:
    geom = conv_geometry((1, 2, 1 << 16), (2, 1, 3), padding=1, groups=2)
    f32 = np.dtype("float32")
    assert jit.choose(geom, f32, "auto", "forward", exact=False, finite=True) == "jit_depthwise"
    with cg.workspace_budget(jit.scratch_bytes(geom, 4) - 1):
        assert jit.choose(geom, f32, "auto", "forward", exact=False, finite=True) is None


def test_choose() -> None:
    geom = conv_geometry((2, 4, 9, 9), (4, 1, 3, 3), padding=1, groups=4)
    f32 = np.dtype("float32")
    assert jit.choose(geom, f32, "auto", "forward", exact=False, finite=True) == "jit_depthwise"
    # data known not to be finite: the NumPy routes (the route is not in FINITE_ONLY, so no call is checked)
    assert jit.choose(geom, f32, "direct", "weight", exact=False, finite=False) is None
    assert "jit_depthwise" not in dispatch.FINITE_ONLY
    assert jit.choose(geom, np.dtype("complex128"), "auto", "input", exact=False, finite=True) is None
    assert jit.choose(geom, np.dtype("int64"), "auto", "input", exact=True, finite=True) is None
    grouped = conv_geometry((2, 4, 9, 9), (8, 2, 3, 3), groups=2)
    assert jit.choose(grouped, f32, "auto", "forward", exact=False, finite=True) is None
    four_d = conv_geometry((1, 2, 3, 3, 3, 3), (2, 1, 2, 2, 2, 2), groups=2)
    assert jit.choose(four_d, f32, "auto", "forward", exact=False, finite=True) is None
    assert jit.COMPILE_SECONDS  # the kernels above were timed on their first call


@pytest.fixture
def jit_dispatch(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The dispatcher consulting :func:`jit.choose` first, as registered; records the routes taken."""
    taken: list[str] = []
    for op in OPS:
        monkeypatch.setitem(dispatch.ROUTES, op, {**dispatch.ROUTES[op], **jit.ROUTES[op]})
    original = dispatch.route

    def route(geom: Geometry, dtype: Any, method: str = "auto", op: str = "forward", *, exact: bool = False,
              finite: bool = True) -> str:
        name = jit.choose(geom, np.dtype(dtype), method, op, exact=exact, finite=finite)
        first = original(geom, dtype, method, op, exact=exact, finite=finite)
        chosen = first if first == "fft" or name is None else name
        taken.append(chosen)
        return chosen

    monkeypatch.setattr(dispatch, "route", route)
    state.clear_caches()
    return taken


def test_public_functions_take_the_route(jit_dispatch: list[str]) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 10, 9)).astype(np.float32)
    w = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 6, 5, 5)).astype(np.float32)
    kw = {"stride": 2, "padding": 1, "groups": 6}
    y = cg.conv(x, w, **kw)
    gx, gw, _ = cg.conv_backward(g, x, w, **kw)
    assert jit_dispatch.count("jit_depthwise") == 3
    xt, wt = torch.from_numpy(x.astype(np.float64)).requires_grad_(), torch.from_numpy(w.astype(np.float64))
    wt.requires_grad_()
    yt = F.conv2d(xt, wt, **kw)
    gxt, gwt = torch.autograd.grad(yt, (xt, wt), torch.from_numpy(g.astype(np.float64)))
    for ours, ref in [(y, yt.detach()), (gx, gxt), (gw, gwt)]:
        np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-4, atol=1e-4)


def test_without_numba_every_call_takes_the_numpy_routes() -> None:
    code = textwrap.dedent("""
        import sys
        sys.modules["numba"] = None
        import numpy as np
        import convgrad as cg
        from convgrad._geometry import conv_geometry
        from convgrad.engine import dispatch, jit
        geom = conv_geometry((2, 4, 9, 9), (4, 1, 3, 3), padding=1, groups=4)
        assert not jit.available()
        assert jit.choose(geom, np.dtype("float32"), "auto", "forward", exact=False, finite=True) is None
        x, w = np.ones((2, 4, 9, 9), np.float32), np.ones((4, 1, 3, 3), np.float32)
        assert dispatch.route(geom, np.dtype("float32")) == "depthwise"
        assert float(cg.conv(x, w, padding=1, groups=4)[0, 0, 4, 4]) == 9.0
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_importing_the_module_does_not_import_numba() -> None:
    code = "import sys, convgrad.engine.jit as j; j.available(); print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_set_num_threads_is_one_setting() -> None:
    old = state.set_num_threads(1)
    try:
        assert state.get_num_threads() == state.copy_threads() == 1
        geom = conv_geometry((2, 3, 8, 8), (3, 1, 3, 3), padding=1, groups=3)
        x = np.ones((2, 3, 8, 8))
        assert float(jit.depthwise_forward(x, np.ones((3, 1, 3, 3)), geom)[0, 0, 3, 3]) == 9.0
        with pytest.raises(ValueError, match="positive integer"):
            state.set_num_threads(0)
    finally:
        state.set_num_threads(old)
    assert state.get_num_threads() == old


# ----------------------------------------------------------------------------- the dense input gradient ("jit_dense")


@st.composite
def dense_cases(draw: Any) -> tuple[Geometry, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Dense geometries (groups, strides, dilations, crops) for the compiled fold; the kernel takes any stride."""
    d = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    c, o, n = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3)), draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    sizes, padding = [], []
    for k, dl in zip(kernel, dilation):
        lo, hi = draw(st.integers(-1, 2)), draw(st.integers(-1, 2))
        span = dl * (k - 1) + 1
        sizes.append(max(1, span - lo - hi) + draw(st.integers(0, 6 if d < 3 else 3)))
        padding.append((lo, hi))
    kw: dict[str, Any] = {"stride": stride, "dilation": dilation, "padding": tuple(padding), "groups": groups,
                          "padding_mode": "zeros"}
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, c, *sizes))
    w = rng.standard_normal((o, c // groups, *kernel))
    geom = conv_geometry(x.shape, w.shape, **kw)
    g = rng.standard_normal(geom.output_shape)
    return geom, x, w, g, kw


@given(dense_cases(), st.integers(1, 9))
def test_dense_input_grad_matches_the_gemm_route_and_torch(case: Any, positions: int) -> None:
    """Tiny blocks (``positions`` output positions each, so blocks start and end mid-row) against the gemm route
    and PyTorch float64."""
    geom, x, w, g, kw = case
    expected = dispatch.ROUTES["input"]["gemm"](g, w, geom)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jit, "block_positions", lambda *args: positions)
        got = jit.dense_input_grad(g, w, geom)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, _torch_reference(x, w, g, kw)[1], rtol=1e-10, atol=1e-10)


def test_dense_input_grad_in_float32_and_with_nonfinite_values() -> None:
    geom = conv_geometry((2, 3, 20, 19), (5, 3, 3, 3), padding=((1, 2), (-1, 1)), dilation=(1, 2))
    rng = np.random.default_rng(4)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal(geom.output_shape).astype(np.float32)
    np.testing.assert_allclose(jit.dense_input_grad(g, w, geom), dispatch.ROUTES["input"]["gemm"](g, w, geom),
                               rtol=1e-5, atol=1e-5)
    w[1, 2, 0, 1], g[0, 3, 4, 5], g[1, 0, 0, 0] = np.inf, np.nan, -np.inf
    with np.errstate(invalid="ignore"):
        got, ref = jit.dense_input_grad(g, w, geom), dispatch.ROUTES["input"]["gemm"](g, w, geom)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-5, atol=1e-5)


def test_choose_dense() -> None:
    f32, f64 = np.dtype("float32"), np.dtype("float64")
    conv3d = conv_geometry((2, 16, 16, 32, 32), (32, 16, 3, 3, 3), padding=1)
    assert jit.choose(conv3d, f32, "auto", "input", exact=False, finite=True) == "jit_dense"
    assert jit.choose(conv3d, f64, "direct", "input", exact=False, finite=True) == "jit_dense"
    for op in ("forward", "weight"):  # NumPy's im2col of a block was as fast as a compiled one
        assert jit.choose(conv3d, f32, "auto", op, exact=False, finite=True) is None
    assert jit.choose(conv3d, f32, "auto", "input", exact=False, finite=False) is None
    assert jit.choose(conv3d, np.dtype("int64"), "auto", "input", exact=True, finite=True) is None
    strided = conv_geometry((8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)
    reflect = conv_geometry((1, 4, 32, 32), (4, 4, 3, 3), padding=1, padding_mode="reflect")
    small = conv_geometry((8, 64, 7, 7), (64, 64, 3, 3), padding=1)
    pointwise = conv_geometry((2, 8, 32, 32), (4, 8, 1, 1))
    for geom in (strided, reflect, small, pointwise):
        assert jit.choose(geom, f32, "auto", "input", exact=False, finite=True) is None
    position = 16 * 27 * 4
    with cg.workspace_budget(position - 1):  # one position's windows over the budget: the gemm route splits
        assert jit.choose(conv3d, f32, "auto", "input", exact=False, finite=True) is None
    with cg.workspace_budget(position):
        assert jit.choose(conv3d, f32, "auto", "input", exact=False, finite=True) == "jit_dense"


def test_dense_input_grad_keeps_to_a_small_budget() -> None:
    geom = conv_geometry((2, 6, 30, 33), (4, 6, 3, 3), padding=1)
    rng = np.random.default_rng(8)
    w, g = rng.standard_normal((4, 6, 3, 3)), rng.standard_normal(geom.output_shape)
    expected = dispatch.ROUTES["input"]["gemm"](g, w, geom)
    budget = 6 * 9 * 8 * 5  # five positions' windows
    state.release_workspace()
    with cg.workspace_budget(budget):
        got = jit.dense_input_grad(g, w, geom)
        assert state.release_workspace() <= budget
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_public_input_grad_takes_the_dense_route(jit_dispatch: list[str]) -> None:
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 5, 24, 20)).astype(np.float32)
    w = rng.standard_normal((6, 5, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 6, 24, 20)).astype(np.float32)
    gx = cg.conv_input_grad(g, w, input_shape=x.shape, padding=1)
    assert "jit_dense" in jit_dispatch
    wt = torch.from_numpy(w.astype(np.float64))
    ref = torch.nn.grad.conv2d_input(x.shape, wt, torch.from_numpy(g.astype(np.float64)), padding=1)
    np.testing.assert_allclose(gx, ref.numpy(), rtol=1e-4, atol=1e-4)


def test_transposed_geometries_whose_output_padding_leaves_inputs_unread() -> None:
    """A transposed convolution's geometry can have fewer outputs than ``P − κ + 1`` (output padding): the
    row layout must not assume output rows as wide as input rows (it wrote past the gradient before: heap
    corruption, caught by a reference comparison). 1-d and 2-d, all three contractions, against the gemm route."""
    from convgrad._geometry import transpose_geometry

    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(600):
        d, c, n = int(rng.integers(1, 3)), int(rng.integers(2, 4)), int(rng.integers(1, 3))
        size = tuple(int(rng.integers(1, 7)) for _ in range(d))
        k = tuple(int(rng.integers(1, 4)) for _ in range(d))
        st = tuple(int(rng.integers(1, 3)) for _ in range(d))
        dl = tuple(int(rng.integers(1, 3)) for _ in range(d))
        out_pad = tuple(int(rng.integers(0, 3)) for _ in range(d))
        try:
            geom = transpose_geometry((n, c) + size, (c, 1) + k, stride=st, dilation=dl, output_padding=out_pad,
                                      groups=c)
        except ValueError:
            continue
        if jit.choose(geom, np.dtype("float64"), "auto", "input", exact=False, finite=True) is None:
            continue
        checked += 1
        x = rng.standard_normal((n, c) + geom.in_size)
        w = rng.standard_normal((c, 1) + k)
        g = rng.standard_normal((n, c) + geom.out_size)
        for op, a, b, ref in (("forward", x, w, gemm.gemm_forward), ("input", g, w, gemm.gemm_input_grad),
                              ("weight", g, x, gemm.gemm_weight_grad)):
            np.testing.assert_allclose(jit.ROUTES[op]["jit_depthwise"](a, b, geom), ref(a, b, geom), atol=1e-10,
                                       err_msg=f"{op} {geom}")
        _check_fused(geom, x, w, g, _jit_routes(geom, x, w, g))
    assert checked > 100
    w = np.random.default_rng(0).standard_normal((2, 1, 1, 1))
    x = np.random.default_rng(1).standard_normal((2, 1, 1))
    y = cg.conv_transpose(x, w, groups=2, dilation=(1, 2), output_padding=(0, 1))
    np.testing.assert_array_equal(y[:, :, 1], 0)
    np.testing.assert_allclose(y[:, 0, 0], x[:, 0, 0] * w[:, 0, 0, 0])


# ----------------------------------------------------------------------------- the fused bias and backward pass


@pytest.mark.parametrize("kw", [{"padding": 1}, {"padding": 1, "stride": 2}, {"padding": 2, "dilation": 2},
                                {"padding": "same"}])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_public_forward_with_bias_and_backward_take_the_fused_kernels(
        jit_dispatch: list[str], monkeypatch: pytest.MonkeyPatch, kw: dict[str, Any], dtype: Any) -> None:
    """``conv`` with a bias and ``conv_backward`` on a depthwise layer: the bias joins the compiled forward pass and
    the three gradients come from one fused pass; results against float64 PyTorch, dtypes kept, inputs untouched,
    results not aliased."""
    calls: list[str] = []
    fused, forward = jit.depthwise_backward, jit.depthwise_forward
    monkeypatch.setattr(jit, "depthwise_backward", lambda *a: calls.append("backward") or fused(*a))
    monkeypatch.setattr(jit, "depthwise_forward", lambda *a: calls.append(f"forward{len(a)}") or forward(*a))
    rng = np.random.default_rng(17)
    x = rng.standard_normal((3, 6, 11, 10)).astype(dtype)
    w = rng.standard_normal((6, 1, 3, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    old_threads = state.set_num_threads(2)  # the fused pass wants two channels per thread: 6 channels, 2 threads
    try:
        y = cg.conv(x, w, b, groups=6, **kw)
        g = rng.standard_normal(y.shape).astype(dtype)
        saved = [a.copy() for a in (x, w, b, g)]
        grads = cg.conv_backward(g, x, w, groups=6, **kw)
    finally:
        state.set_num_threads(old_threads)
    assert calls == ["forward4", "backward"]
    for a, before in zip((x, w, b, g), saved):
        np.testing.assert_array_equal(a, before)
    xt, wt, bt = (torch.from_numpy(a.astype(np.float64)).requires_grad_() for a in (x, w, b))
    yt = F.conv2d(xt, wt, bt, groups=6, **kw)
    refs = torch.autograd.grad(yt, (xt, wt, bt), torch.from_numpy(g.astype(np.float64)))
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for ours, ref in zip((y, *grads), (yt.detach(), *refs)):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, ref.numpy(), rtol=tol, atol=tol)
    for r in grads:
        assert not any(np.shares_memory(r, a) for a in (x, w, b, g))


def test_the_backward_pass_fuses_only_where_both_gradients_are_compiled(jit_dispatch: list[str],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Other padding modes, input dilation, integers, complex data and dense layers take the gradients one by
    one (``engine.backward`` declines), with the same results as before."""
    from convgrad import engine

    monkeypatch.setattr(jit, "depthwise_backward", lambda *a: pytest.fail("fused"))
    rng = np.random.default_rng(19)
    x, w = rng.standard_normal((2, 4, 9, 9)), rng.standard_normal((4, 1, 3, 3))
    for kw in ({"padding": 1, "padding_mode": "reflect"}, {"padding": 1, "input_dilation": 2}):
        g = rng.standard_normal(cg.conv(x, w, groups=4, **kw).shape)
        got = cg.conv_backward(g, x, w, groups=4, **kw)
        np.testing.assert_allclose(got.input, cg.conv_input_grad(g, w, input_shape=x.shape, groups=4, **kw))
        np.testing.assert_allclose(got.bias, g.sum(axis=(0, 2, 3)))
    geom = conv_geometry(x.shape, w.shape, groups=4, padding=1)
    g = rng.standard_normal(geom.output_shape)
    assert engine.backward(g.astype(np.int64), x.astype(np.int64), w.astype(np.int64), geom, exact=True) is None
    assert engine.backward(g + 0j, x + 0j, w + 0j, geom) is None
    with monkeypatch.context() as mp:
        mp.setattr(jit, "choose", lambda *args, **kwargs: None)  # the NumPy routes: nothing to fuse
        mp.setattr(jit, "choose_direct", lambda *args, **kwargs: None)
        assert engine.backward(g, x, w, geom) is None
    state.clear_caches()  # (the NumPy route was remembered for this geometry)
    old_threads = state.set_num_threads(2)
    try:
        assert jit.backward_fuses(geom, 8)  # 4 channels, 2 threads
        assert not jit.backward_fuses(conv_geometry((2, 3, 9, 9), (3, 1, 3, 3), groups=3, padding=1), 8)
        with cg.workspace_budget(2 * jit.scratch_bytes(geom, 8) - 1):  # both gradients' buffers at once
            assert not jit.backward_fuses(geom, 8)
            assert engine.backward(g, x, w, geom) is None
        state.set_num_threads(4)
        assert not jit.backward_fuses(geom, 8)  # one channel per thread: the separate kernels split the samples
    finally:
        state.set_num_threads(old_threads)
    b32 = np.ones(4, dtype=np.float32)  # a bias of another dtype: added after, in the common dtype
    with monkeypatch.context() as mp:
        mp.setattr(jit, "depthwise_forward", lambda *a: pytest.fail("fused") if len(a) == 4 else None)
        y = engine.forward_bias(x, w, b32, geom)
    assert y.dtype == np.float64
    dense = conv_geometry((2, 4, 9, 9), (4, 4, 3, 3), padding=1)
    assert engine.backward(rng.standard_normal(dense.output_shape), x, rng.standard_normal((4, 4, 3, 3)),
                           dense) is None
    gi, xi, wi = (np.round(3 * a).astype(np.int64) for a in (g, x, w))
    grads = cg.conv_backward(gi, xi, wi, groups=4, padding=1)  # exact: integers take the NumPy routes
    np.testing.assert_array_equal(grads.weight, cg.conv_weight_grad(gi, xi, weight_shape=w.shape, groups=4,
                                                                    padding=1))
    np.testing.assert_array_equal(grads.bias, gi.sum(axis=(0, 2, 3)))


def test_fused_backward_float32_bias_and_threads() -> None:
    """The fused pass in float32 (the bias gradient summed per channel in float32 partial sums added in float64:
    within NumPy's reduction's error, or 1e-6 of the sum) and from several threads at once (each call its own
    buffers)."""
    import concurrent.futures

    rng = np.random.default_rng(23)
    x = rng.standard_normal((8, 32, 28, 28)).astype(np.float32)
    w = rng.standard_normal((32, 1, 3, 3)).astype(np.float32)
    geom = conv_geometry(x.shape, w.shape, groups=32, padding=1)
    g = (rng.standard_normal(geom.output_shape) + 3).astype(np.float32)
    gx, gw, gb = jit.depthwise_backward(g, x, w, geom)
    exact = g.astype(np.float64).sum(axis=(0, 2, 3))
    assert np.abs(gb - exact).max() <= max(np.abs(g.sum(axis=(0, 2, 3)) - exact).max(), 1e-6 * np.abs(exact).max())
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: jit.depthwise_backward(g, x, w, geom), range(8)))
    for r in results:
        for a, want in zip(r, (gx, gw, gb)):
            np.testing.assert_array_equal(a, want)


# ----------------------------------------------------------------------------- thin dense layers ("jit_direct")


@st.composite
def direct_cases(draw: Any) -> tuple[Geometry, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Stride-1 dense 2-d and 3-d geometries with zero padding up to the kernel's span (the kernels' domain; any
    channel count, so the partial blocks of four channels are drawn too)."""
    d = draw(st.integers(2, 3))
    c, o, n = draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(d))
    sizes, padding = [], []
    for k, dl in zip(kernel, dilation):
        span = dl * (k - 1)
        lo, hi = draw(st.integers(0, span)), draw(st.integers(0, span))
        sizes.append(max(1, span + 1 - lo - hi) + draw(st.integers(0, 7 if d < 3 else 3)))
        padding.append((lo, hi))
    kw: dict[str, Any] = {"stride": 1, "dilation": dilation, "padding": tuple(padding), "groups": 1,
                          "padding_mode": "zeros"}
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, c, *sizes))
    w = rng.standard_normal((o, c, *kernel))
    geom = conv_geometry(x.shape, w.shape, **kw)
    g = rng.standard_normal(geom.output_shape)
    return geom, x, w, g, kw


def _direct_routes(geom: Geometry, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    return [jit.direct_forward(x, w, geom), jit.direct_input_grad(g, w, geom), jit.direct_weight_grad(g, x, geom)]


def _gemm_routes(geom: Geometry, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    return [dispatch.ROUTES["forward"]["gemm"](x, w, geom), dispatch.ROUTES["input"]["gemm"](g, w, geom),
            dispatch.ROUTES["weight"]["gemm"](g, x, geom)]


@given(direct_cases(), st.sampled_from([1, 5, 64, 1536]))
def test_direct_kernels_match_the_gemm_route_and_torch(case: Any, span: int) -> None:
    """Blocks of every size (``DIRECT_SPAN`` of 1 and 5: one output row per block; 64: a few rows, the last
    block shorter), against the gemm route and PyTorch float64."""
    geom, x, w, g, kw = case
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jit, "DIRECT_SPAN", span)
        jit._direct_blocks.cache_clear()
        ours = _direct_routes(geom, x, w, g)
    jit._direct_blocks.cache_clear()
    for got, want in zip(ours, _gemm_routes(geom, x, w, g)):
        assert got.shape == want.shape and got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    for got, want in zip(ours, _torch_reference(x, w, g, kw)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_direct_kernels_in_float32() -> None:
    """float32 within a few times the gemm route's error against float64 (the weight gradient's sums: float32
    lanes over one block, then float64), and the inputs left as they were."""
    rng = np.random.default_rng(31)
    x = rng.standard_normal((2, 16, 10, 18, 17)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3, 3)).astype(np.float32)
    geom = conv_geometry(x.shape, w.shape, padding=1)
    g = rng.standard_normal(geom.output_shape).astype(np.float32)
    before = [a.copy() for a in (x, w, g)]
    ours = _direct_routes(geom, x, w, g)
    refs = _gemm_routes(geom, x.astype(np.float64), w.astype(np.float64), g.astype(np.float64))
    for got, numpy_route, ref in zip(ours, _gemm_routes(geom, x, w, g), refs):
        assert got.dtype == np.float32
        scale = np.abs(ref).max()
        assert np.abs(got - ref).max() / scale <= max(3 * np.abs(numpy_route - ref).max() / scale, 1e-6)
    for a, b in zip((x, w, g), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("c_in", [12, 13, 30, 32])
def test_direct_forward_sums_in_groups_of_channels(c_in: int) -> None:
    """2-d 3×3: the forward kernel adds into ``y`` after each twelve input channels (at most 128 products), the
    last group partial or not; float64 against the gemm route."""
    rng = np.random.default_rng(c_in)
    x, w = rng.standard_normal((2, c_in, 9, 11)), rng.standard_normal((6, c_in, 3, 3))
    geom = conv_geometry(x.shape, w.shape, padding=1)
    g = rng.standard_normal(geom.output_shape)
    for got, want in zip(_direct_routes(geom, x, w, g), _gemm_routes(geom, x, w, g)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_choose_direct() -> None:
    f32, f64 = np.dtype("float32"), np.dtype("float64")
    conv3d = conv_geometry((2, 16, 16, 32, 32), (32, 16, 3, 3, 3), padding=1)
    for op in OPS:
        assert jit.choose_direct(conv3d, f32, "auto", op, exact=False, finite=True) == "jit_direct"
        assert jit.choose_direct(conv3d, f64, "direct", op, exact=False, finite=True) == "jit_direct"
        assert dispatch.route(conv3d, f32, "auto", op) == "jit_direct"
        for method in ("gemm", "winograd", "fft", "implicit"):
            assert jit.choose_direct(conv3d, f32, method, op, exact=False, finite=True) is None
    assert jit.choose_direct(conv3d, f32, "auto", "forward", exact=False, finite=False) is None
    assert "jit_direct" in dispatch.FINITE_ONLY
    assert jit.choose_direct(conv3d, np.dtype("int64"), "auto", "forward", exact=True, finite=True) is None
    for dtype in ("complex64", "float16"):
        assert jit.choose_direct(conv3d, np.dtype(dtype), "auto", "forward", exact=False, finite=True) is None
    declined = [
        conv_geometry((2, 16, 16, 32, 32), (32, 8, 3, 3, 3), padding=1, groups=2),      # grouped
        conv_geometry((2, 16, 16, 32, 32), (32, 16, 3, 3, 3), padding=1, stride=2),     # strided
        conv_geometry((2, 16, 32, 32), (32, 16, 3, 3), padding=1, padding_mode="reflect"),
        conv_geometry((2, 16, 32, 32), (32, 16, 3, 3), padding=((1, -1), 1)),           # a crop
        conv_geometry((2, 16, 32, 32), (32, 16, 3, 3), padding=3),                      # more than the span
        conv_geometry((2, 16, 32, 32), (32, 16, 3, 3), padding=1, input_dilation=2),
        conv_geometry((2, 4, 32, 32), (32, 4, 3, 3), padding=1),                        # too few channels
        conv_geometry((2, 16, 32, 32), (64, 16, 3, 3), padding=1),                      # too many
        conv_geometry((2, 16, 24, 24), (32, 16, 3, 3), padding=1),                      # too few positions
        conv_geometry((2, 16, 4096), (32, 16, 9), padding=4),                           # 1-d
        conv_geometry((2, 16, 32, 32), (32, 16, 1, 3), padding=(0, 1)),                 # three offsets
        conv_geometry((0, 16, 32, 32), (32, 16, 3, 3), padding=1),                      # no samples
    ]
    for geom in declined:
        assert jit.choose_direct(geom, f32, "auto", "forward", exact=False, finite=True) is None, geom
    sample = 32 * 18 * 34 * 34 * 4  # one sample's larger grid: g's 32 channels, padded for the input gradient
    assert jit.direct_sample_bytes(conv3d, 4) == sample
    with cg.workspace_budget(sample - 1):
        assert jit.choose_direct(conv3d, f32, "auto", "weight", exact=False, finite=True) is None
    with cg.workspace_budget(sample):
        assert jit.choose_direct(conv3d, f32, "auto", "weight", exact=False, finite=True) == "jit_direct"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jit, "DIRECT_ROUTE", False)
        assert jit.choose_direct(conv3d, f32, "auto", "forward", exact=False, finite=True) is None


def test_direct_route_splits_samples_to_the_budget() -> None:
    """A budget of one sample's padded input: the samples run one chunk at a time, with the same results."""
    rng = np.random.default_rng(32)
    x, w = rng.standard_normal((3, 8, 6, 12, 13)), rng.standard_normal((9, 8, 3, 3, 3))
    geom = conv_geometry(x.shape, w.shape, padding=1)
    g = rng.standard_normal(geom.output_shape)
    whole = _direct_routes(geom, x, w, g)
    with cg.workspace_budget(8 * 8 * 14 * 15 * 8):
        assert list(state.batch_chunks(3, 8 * 8 * 14 * 15 * 8)) == [(0, 1), (1, 2), (2, 3)]
        parts = _direct_routes(geom, x, w, g)
    for a, b in zip(parts, whole):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_public_functions_take_the_direct_route_and_match_torch() -> None:
    """conv, conv_backward (its bias summed without the BLAS, whose spinning threads would slow the kernels that
    run next) and the single gradients on a thin 3-d layer, float32 against PyTorch float64."""
    rng = np.random.default_rng(33)
    x = rng.standard_normal((2, 8, 8, 16, 16)).astype(np.float32)
    w = rng.standard_normal((12, 8, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32)
    geom = conv_geometry(x.shape, w.shape, padding=1)
    assert [dispatch.route(geom, np.float32, "auto", op) for op in OPS] == ["jit_direct"] * 3
    g = rng.standard_normal(geom.output_shape).astype(np.float32)
    y = cg.conv(x, w, b, padding=1)
    grads = cg.conv_backward(g, x, w, padding=1)
    assert not cg.engine.bias_by_blas(g, geom)
    assert cg.engine.bias_by_blas(g, conv_geometry((2, 64, 8, 16, 16), (64, 64, 3, 3, 3), padding=1))
    xt, wt, bt = (torch.from_numpy(a.astype(np.float64)).requires_grad_() for a in (x, w, b))
    yt = F.conv3d(xt, wt, bt, padding=1)
    refs = torch.autograd.grad(yt, (xt, wt, bt), torch.from_numpy(g.astype(np.float64)))
    for ours, ref in [(y, yt.detach()), (grads.input, refs[0]), (grads.weight, refs[1]), (grads.bias, refs[2])]:
        np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cg.conv_input_grad(g, w, input_shape=x.shape, padding=1), grads.input, rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(cg.conv_weight_grad(g, x, weight_shape=w.shape, padding=1), grads.weight,
                               rtol=1e-6, atol=1e-6)


def test_direct_route_with_nonfinite_values_takes_the_numpy_routes() -> None:
    """NaN and infinity in any operand: the dispatcher's finiteness check sends the call to the NumPy routes,
    whose results PyTorch's match (the kernels would multiply them by the padding's and the junk's zeros)."""
    rng = np.random.default_rng(34)
    x = rng.standard_normal((2, 8, 6, 16, 16))
    w = rng.standard_normal((8, 8, 3, 3, 3))
    geom = conv_geometry(x.shape, w.shape, padding=1)
    g = rng.standard_normal(geom.output_shape)
    x[0, 1, 2, 0, 0], w[3, 2, 0, 1, 1], g[1, 4, 5, 15, 15] = np.nan, np.inf, -np.inf
    kw = {"stride": 1, "dilation": 1, "padding": ((1, 1),) * 3, "groups": 1, "padding_mode": "zeros"}
    refs = _torch_reference(x, w, g, {**kw, "dilation": (1, 1, 1), "stride": (1, 1, 1)})
    with np.errstate(invalid="ignore"):
        ours = [cg.conv(x, w, padding=1), *cg.conv_backward(g, x, w, padding=1)[:2]]
    for got, ref in zip(ours, refs):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
        finite = np.isfinite(ref)
        np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-10, atol=1e-10)


def test_direct_route_from_several_threads_and_on_one() -> None:
    import concurrent.futures

    rng = np.random.default_rng(35)
    x = rng.standard_normal((2, 8, 6, 20, 20)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 16, 6, 20, 20)).astype(np.float32)

    def run(_: int) -> list[np.ndarray]:
        return [cg.conv(x, w, padding=1), *cg.conv_backward(g, x, w, padding=1)]

    want = run(0)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(8)))
    old = state.set_num_threads(1)
    try:
        results.append(run(0))
    finally:
        state.set_num_threads(old)
    for r in results:
        for a, b in zip(r, want):
            np.testing.assert_array_equal(a, b)
    # float64: the threads' partial sums are added in the blocks' order, so every call gives the same bits
    geom = conv_geometry(x.shape, w.shape, padding=1)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    first = jit.direct_weight_grad(g64, x64, geom)
    for _ in range(5):
        np.testing.assert_array_equal(jit.direct_weight_grad(g64, x64, geom), first)


def test_direct_route_on_a_transposed_layer_with_output_padding() -> None:
    """A stride-1 transposed layer with dilation 2 and ``output_padding=1``: its geometry leaves the last input
    positions unread (``u = 1``), and all three of its contractions take the direct kernels; against PyTorch."""
    from convgrad._geometry import transpose_geometry

    rng = np.random.default_rng(36)
    x = rng.standard_normal((2, 16, 36, 40))
    w = rng.standard_normal((16, 12, 3, 3))
    b = rng.standard_normal(12)
    kw = {"stride": 1, "padding": 1, "dilation": 2, "output_padding": 1}
    geom = transpose_geometry(x.shape, w.shape, **kw)
    unread = geom.padded_size[0] - 1 - 2 * (3 - 1) - (geom.out_size[0] - 1)
    assert unread == 1
    assert [dispatch.route(geom, np.float64, "auto", op) for op in OPS] == ["jit_direct"] * 3
    y = cg.conv_transpose(x, w, b, **kw)
    g = rng.standard_normal(y.shape)
    grads = cg.conv_transpose_backward(g, x, w, **kw)
    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    yt = F.conv_transpose2d(xt, wt, bt, **kw)
    refs = torch.autograd.grad(yt, (xt, wt, bt), torch.from_numpy(g))
    for ours, ref in [(y, yt.detach()), (grads.input, refs[0]), (grads.weight, refs[1]), (grads.bias, refs[2])]:
        assert ours.shape == tuple(ref.shape)
        np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-10, atol=1e-10)


def _direct_child(queue: Any, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> None:
    queue.put([cg.conv(x, w, padding=1), *cg.conv_backward(g, x, w, padding=1)])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs the fork start method")
def test_direct_route_in_a_forked_child() -> None:
    """A child forked after the parent ran the kernels on its thread pool gets the same results."""
    import multiprocessing

    rng = np.random.default_rng(37)
    x = rng.standard_normal((2, 8, 6, 16, 16)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 16, 6, 16, 16)).astype(np.float32)
    assert dispatch.route(conv_geometry(x.shape, w.shape, padding=1), np.float32, "auto", "weight") == "jit_direct"
    want = [cg.conv(x, w, padding=1), *cg.conv_backward(g, x, w, padding=1)]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_direct_child, args=(queue, x, w, g))
    child.start()
    got = queue.get(timeout=60)
    child.join(30)
    assert child.exitcode == 0
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_numba_is_looked_up_once_per_process() -> None:
    """``available()`` walks the import path once (it had cost about 30 µs on every convolution of a process
    without Numba imported) and still honours ``sys.modules['numba'] = None`` on every call."""
    code = textwrap.dedent("""
        import importlib.util, sys
        calls = []
        find_spec = importlib.util.find_spec
        def counting(name, *args):
            calls.append(name)
            return find_spec(name, *args)
        importlib.util.find_spec = counting
        import numpy as np
        import convgrad as cg
        from convgrad.engine import jit
        x, w = np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))
        for _ in range(20):
            cg.conv_backward(np.ones((1, 1, 3, 3)), x, w)
            cg.conv(x, w)
        first = jit.available()
        assert calls.count("numba") == 1, calls
        sys.modules["numba"] = None
        assert not jit.available()
        del sys.modules["numba"]
        assert jit.available() == first and calls.count("numba") == 1
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
