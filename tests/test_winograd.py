"""The Winograd routes F(2×2, 3×3), F(4×4, 3×3) and F(2×2×2, 3×3×3) (dilated layers by polyphase grids) against
the NumPy routes and PyTorch, and ``method="winograd"``.

Every variant (tile size 2 or 4) is run with the NumPy transforms and, where Numba is installed, with the
compiled ones (:mod:`convgrad.engine.winograd_jit`); one test runs the route in a process where Numba cannot be
imported. The route is also called through the dispatcher (monkeypatched to consult
:func:`convgrad.engine.winograd.choose`, as the engine does once the route is registered).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad._geometry import Geometry, conv_geometry
from convgrad.engine import cost, dispatch, implicit, state, winograd

torch = pytest.importorskip("torch")
F = torch.nn.functional

OPS = ("forward", "input", "weight")
HAVE_NUMBA = importlib.util.find_spec("numba") is not None
VARIANTS = [(m, compiled) for m in winograd.TILES for compiled in ((False, True) if HAVE_NUMBA else (False,))]
"""(tile, compiled transforms) pairs to test."""


def _gemm(geom: Geometry, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    return [dispatch.ROUTES["forward"]["gemm"](x, w, geom), dispatch.ROUTES["input"]["gemm"](g, w, geom),
            dispatch.ROUTES["weight"]["gemm"](g, x, geom)]


def _wino(geom: Geometry, x: np.ndarray, w: np.ndarray, g: np.ndarray, m: int | None = None,
          compiled: bool | None = None) -> list[np.ndarray]:
    return [winograd.winograd_forward(x, w, geom, m, compiled), winograd.winograd_input_grad(g, w, geom, m, compiled),
            winograd.winograd_weight_grad(g, x, geom, m, compiled)]


def _torch(x: np.ndarray, w: np.ndarray, g: np.ndarray, lo: tuple[int, int], hi: tuple[int, int],
           mode: str = "zeros") -> list[np.ndarray]:
    xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    torch_mode = {"zeros": "constant"}.get(mode, mode)
    yt = F.conv2d(F.pad(xt, [lo[1], hi[1], lo[0], hi[0]], mode=torch_mode), wt)
    gxt, gwt = torch.autograd.grad(yt, (xt, wt), torch.from_numpy(g))
    return [yt.detach().numpy(), gxt.numpy(), gwt.numpy()]


def _torch3d(x: np.ndarray, w: np.ndarray, g: np.ndarray, lo: tuple[int, ...], hi: tuple[int, ...], mode: str = "zeros",
             dilation: int = 1) -> list[np.ndarray]:
    xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    pads = [p for i in (2, 1, 0) for p in (lo[i], hi[i])]
    yt = F.conv3d(F.pad(xt, pads, mode={"zeros": "constant"}.get(mode, mode)), wt, dilation=dilation)
    gxt, gwt = torch.autograd.grad(yt, (xt, wt), torch.from_numpy(g))
    return [yt.detach().numpy(), gxt.numpy(), gwt.numpy()]


def _traced(call: Callable[[], Any], budget: int) -> tuple[np.ndarray, int]:
    """``call()`` under ``budget``, with the peak of traced memory (the thread's scratch released before and after)."""
    cg.release_workspace()
    with cg.workspace_budget(budget):
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            out = call()
            return out, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            cg.release_workspace()


def test_the_matrices_give_the_correlation() -> None:
    """``y = Aᵀ [(G w) ⊙ (Bᵀ d)]`` is the valid 1-d correlation, for every variant (float64, exact to rounding)."""
    rng = np.random.default_rng(0)
    for m in winograd.TILES:
        mat = winograd.matrices(m)
        d, w = rng.standard_normal(m + 2), rng.standard_normal(3)
        want = np.array([d[i : i + 3] @ w for i in range(m)])
        np.testing.assert_allclose(mat.at @ ((mat.g @ w) * (mat.bt @ d)), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("m", "compiled"), VARIANTS)
@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 3), c=st.integers(1, 9), o=st.integers(1, 9), h=st.integers(1, 13), wd=st.integers(1, 13),
    lo=st.tuples(st.integers(0, 2), st.integers(0, 2)), hi=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    mode=st.sampled_from(["zeros", "zeros", "zeros", "reflect", "replicate", "circular"]),
    seed=st.integers(0, 2**16),
)
def test_matches_the_gemm_route_and_torch(m: int, compiled: bool, n: int, c: int, o: int, h: int, wd: int,
                                          lo: tuple[int, int], hi: tuple[int, int], mode: str, seed: int) -> None:
    if mode != "zeros":  # torch's non-zero modes need the padding below the size
        lo = (min(lo[0], h - 1), min(lo[1], wd - 1))
        hi = (min(hi[0], h - 1), min(hi[1], wd - 1))
    if h + lo[0] + hi[0] < 3 or wd + lo[1] + hi[1] < 3:
        return
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((n, c, h, wd)), rng.standard_normal((o, c, 3, 3))
    padding = ((lo[0], hi[0]), (lo[1], hi[1]))
    geom = conv_geometry(x.shape, w.shape, padding=padding, padding_mode=mode)
    g = rng.standard_normal(geom.output_shape)
    ours = _wino(geom, x, w, g, m, compiled)
    tol = 1e-10 if m == 2 else 1e-9
    for got, want in zip(ours, _gemm(geom, x, w, g)):
        assert got.dtype == np.float64 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    for got, ref in zip(ours, _torch(x, w, g, lo, hi, mode)):
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize(("m", "compiled"), VARIANTS)
@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 2), c=st.integers(1, 5), o=st.integers(1, 5), h=st.integers(5, 15), wd=st.integers(5, 15),
    dil=st.tuples(st.integers(1, 3), st.integers(1, 3)), pad=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    mode=st.sampled_from(["zeros", "zeros", "reflect"]), seed=st.integers(0, 2**16),
)
def test_dilated_layers_by_polyphase_grids(m: int, compiled: bool, n: int, c: int, o: int, h: int, wd: int,
                                           dil: tuple[int, int], pad: tuple[int, int], mode: str, seed: int) -> None:
    """A dilated 3×3 layer as ``δ1·δ2`` undilated ones on its polyphase grids, against the gemm route and torch."""
    if any(2 * d + 1 > s + 2 * p for d, s, p in zip(dil, (h, wd), pad)):
        return
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((n, c, h, wd)), rng.standard_normal((o, c, 3, 3))
    geom = conv_geometry(x.shape, w.shape, padding=pad, dilation=dil, padding_mode=mode)
    assert winograd.applies(geom)
    g = rng.standard_normal(geom.output_shape)
    ours = _wino(geom, x, w, g, m, compiled)
    for got, want in zip(ours, _gemm(geom, x, w, g)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    torch_mode = {"zeros": "constant"}.get(mode, mode)
    yt = F.conv2d(F.pad(xt, [pad[1], pad[1], pad[0], pad[0]], mode=torch_mode), wt, dilation=dil)
    refs = [yt.detach().numpy(), *(r.numpy() for r in torch.autograd.grad(yt, (xt, wt), torch.from_numpy(g)))]
    for got, ref in zip(ours, refs):
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9)


def test_stacked_geometry() -> None:
    geom = conv_geometry((4, 8, 64, 64), (8, 8, 3, 3), padding=2, dilation=2)
    inner = winograd.stacked(geom)
    assert inner.input_shape == (16, 8, 34, 34) and inner.dilation == (1, 1) and not inner.has_padding
    plain = conv_geometry((4, 8, 64, 64), (8, 8, 3, 3), padding=1)
    assert winograd.stacked(plain) is plain
    f32 = np.dtype("float32")
    for op in OPS:
        assert winograd.choose(geom, f32, "winograd", op, exact=False, finite=True) == "winograd"
    big = conv_geometry((4, 64, 64, 64), (64, 64, 3, 3), padding=2, dilation=2)  # the benchmark's dilated layer
    for op in OPS:  # forced only: measured slower than the direct routes with the polyphase copies
        assert winograd.choose(big, f32, "auto", op, exact=False, finite=True) is None


@pytest.mark.parametrize("compiled", [False, True])
@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 2), c=st.integers(1, 6), o=st.integers(1, 6),
    size=st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9)),
    lo=st.tuples(st.integers(-1, 2), st.integers(-1, 2), st.integers(-1, 2)),
    hi=st.tuples(st.integers(-1, 2), st.integers(-1, 2), st.integers(-1, 2)),
    seed=st.integers(0, 2**16),
)
def test_3d_matches_the_gemm_route_and_torch(compiled: bool, n: int, c: int, o: int, size: tuple[int, int, int],
                                             lo: tuple[int, int, int], hi: tuple[int, int, int], seed: int) -> None:
    """F(2×2×2, 3×3×3), zero padding 0–2 per side (asymmetric) or a crop of one; ``compiled=True`` asks for the
    compiled transforms, which 3-d layers decline (the NumPy ones are used)."""
    if any(s + a + b < 3 or s + min(a, 0) + min(b, 0) < 1 for s, a, b in zip(size, lo, hi)):
        return
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((n, c) + size), rng.standard_normal((o, c, 3, 3, 3))
    geom = conv_geometry(x.shape, w.shape, padding=tuple(zip(lo, hi)))
    assert winograd.applies(geom) and winograd.variant(geom, np.dtype("float32"), "forward") == 2
    g = rng.standard_normal(geom.output_shape)
    ours = _wino(geom, x, w, g, None, compiled)
    for got, want in zip(ours, _gemm(geom, x, w, g)):
        assert got.dtype == np.float64 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    for got, ref in zip(ours, _torch3d(x, w, g, lo, hi)):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("kw", "mode"), [({"padding": 2, "dilation": 2}, "zeros"), ({"padding": 1}, "reflect"),
                                          ({"padding": 3, "dilation": 3}, "replicate"),
                                          ({"padding": ((1, 0), (0, 2), (2, 1)), "input_dilation": 2}, "zeros")])
def test_3d_dilation_and_padding_modes(kw: dict[str, Any], mode: str) -> None:
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 7, 8, 6)), rng.standard_normal((4, 3, 3, 3, 3))
    geom = conv_geometry(x.shape, w.shape, padding_mode=mode, **kw)
    assert winograd.applies(geom)
    g = rng.standard_normal(geom.output_shape)
    ours = _wino(geom, x, w, g)
    for got, want in zip(ours, _gemm(geom, x, w, g)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    if "input_dilation" not in kw:
        pad = kw["padding"]
        for got, ref in zip(ours, _torch3d(x, w, g, (pad,) * 3, (pad,) * 3, mode, kw.get("dilation", 1))):
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


def test_3d_float32_error_stays_within_the_documented_factor() -> None:
    w64 = np.random.default_rng(5).standard_normal((32, 32, 3, 3, 3)) / np.sqrt(864)
    _check_float32_error((1, 32, 10, 11, 12), w64, lambda op: winograd.ERROR_FACTOR_BY_DIM[3][2][op], {})


def test_3d_choose_and_variant() -> None:
    f32 = np.dtype("float32")
    small = conv_geometry((2, 4, 6, 6, 6), (4, 4, 3, 3, 3), padding=1)
    for op in OPS:
        assert winograd.choose(small, f32, "winograd", op, exact=False, finite=True) == "winograd"
        assert winograd.choose(small, f32, "winograd", op, exact=False, finite=False) is None
        assert winograd.choose(small, f32, "auto", op, exact=False, finite=True) is None  # too small
        assert winograd.variant(small, f32, op, compiled=True) == 2
    assert not winograd.compiled_available(3)
    for shape, kw in [((4, 4, 3, 3, 3), {"stride": 2}), ((4, 2, 3, 3, 3), {"groups": 2}),
                      ((4, 4, 3, 3, 5), {}), ((4, 4, 5, 5, 5), {})]:
        other = conv_geometry((2, 4, 9, 9, 9), shape, **kw)
        assert winograd.choose(other, f32, "winograd", "forward", exact=False, finite=True) is None
    with pytest.raises(ValueError, match="tile must be one of"):
        winograd.winograd_forward(np.ones((1, 1, 4, 4, 4)), np.ones((1, 1, 3, 3, 3)),
                                  conv_geometry((1, 1, 4, 4, 4), (1, 1, 3, 3, 3)), tile=4)
    # the benchmark's 3-d layers: the U-Net stage takes it for the forward pass and the weight gradient (measured
    # faster there), not for the input gradient (its full correlation has 1.6× the tiles; measured slower); the
    # few-channel conv3d layer never (the transforms dominate)
    unet7 = conv_geometry((1, 256, 12, 13, 13), (256, 256, 3, 3, 3))
    unet8 = conv_geometry((1, 256, 10, 11, 11), (512, 256, 3, 3, 3))
    few = conv_geometry((2, 16, 16, 32, 32), (32, 16, 3, 3, 3), padding=1)
    for geom in (unet7, unet8):
        picks = [winograd.choose(geom, f32, "auto", op, exact=False, finite=True) for op in OPS]
        assert picks == ["winograd", None, "winograd"]
    assert all(winograd.choose(few, f32, "auto", op, exact=False, finite=True) is None for op in OPS)


def test_3d_workspace_stays_within_the_budget() -> None:
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((6, 4, 8, 8, 8)), rng.standard_normal((4, 4, 3, 3, 3))
    geom = conv_geometry(x.shape, w.shape, padding=1)
    g = rng.standard_normal(geom.output_shape)
    budget = 512 * 1024  # below one call's whole workspace (about 2 MiB), above one sample's
    assert 6 * winograd._sample_bytes("forward", 4, 4, geom.out_size, 2, 8, False) > budget
    want = _gemm(geom, x, w, g)
    for i, call in enumerate([lambda: winograd.winograd_forward(x, w, geom),
                              lambda: winograd.winograd_input_grad(g, w, geom),
                              lambda: winograd.winograd_weight_grad(g, x, geom)]):
        out, peak = _traced(call, budget)
        np.testing.assert_allclose(out, want[i], rtol=1e-9, atol=1e-9)
        assert peak <= budget + 3 * x.nbytes + 64 * 1024, (i, peak)


@pytest.mark.parametrize(("m", "compiled"), VARIANTS)
def test_crops_and_input_dilation(m: int, compiled: bool) -> None:
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 8, 9)), rng.standard_normal((2, 3, 3, 3))
    for kw in ({"padding": ((-1, 2), (2, -2))}, {"padding": 1, "input_dilation": 2}, {"padding": 5},
               {"padding": ((0, 1), (2, 0))}):
        geom = conv_geometry(x.shape, w.shape, **kw)
        g = rng.standard_normal(geom.output_shape)
        for got, want in zip(_wino(geom, x, w, g, m, compiled), _gemm(geom, x, w, g)):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("m", "compiled"), VARIANTS)
def test_float32_error_stays_within_the_documented_factor(m: int, compiled: bool) -> None:
    """Float32 against a float64 result: within the variant's :data:`ERROR_FACTOR` of the direct route's
    error (with 1.5× slack for this smaller layer)."""
    w64 = np.random.default_rng(5).standard_normal((32, 32, 3, 3)) / np.sqrt(288)
    _check_float32_error((2, 32, 20, 20), w64, lambda op: winograd.ERROR_FACTOR[m][op], {"tile": m, "compiled": compiled})


def _check_float32_error(x_shape: tuple[int, ...], w64: np.ndarray, documented: Callable[[str], float],
                         options: dict[str, Any]) -> None:
    """Each Winograd contraction in float32 against the float64 gemm route: within 1.5× the documented factor
    (at least 2) of the float32 error of the route ``method="direct"`` takes (the factors' reference)."""
    rng = np.random.default_rng(4)
    x64 = rng.standard_normal(x_shape)
    geom = conv_geometry(x64.shape, w64.shape, padding=1)
    g64 = rng.standard_normal(geom.output_shape)
    x, w, g = (a.astype(np.float32) for a in (x64, w64, g64))
    routes = {"forward": winograd.winograd_forward, "input": winograd.winograd_input_grad,
              "weight": winograd.winograd_weight_grad}
    for op, args32, args64 in [("forward", (x, w), (x64, w64)), ("input", (g, w), (g64, w64)),
                               ("weight", (g, x), (g64, x64))]:
        ref = dispatch.ROUTES[op]["gemm"](*args64, geom)
        scale = np.abs(ref).max()
        route = dispatch.route(geom, np.float32, "direct", op)
        direct = np.abs(dispatch.ROUTES[op][route](*args32, geom) - ref).max() / scale
        got = routes[op](*args32, geom, **options)
        assert got.dtype == np.float32
        factor = 1.5 * max(documented(op), 2.0)
        assert np.abs(got - ref).max() / scale <= factor * max(direct, 1e-7)


def test_choose() -> None:
    f32 = np.dtype("float32")
    geom = conv_geometry((2, 8, 12, 12), (8, 8, 3, 3), padding=1)
    assert winograd.choose(geom, f32, "winograd", "input", exact=False, finite=True) == "winograd"
    assert winograd.choose(geom, f32, "winograd", "input", exact=False, finite=False) is None
    assert winograd.choose(geom, np.dtype("int64"), "winograd", "input", exact=True, finite=True) is None
    assert winograd.choose(geom, f32, "direct", "forward", exact=False, finite=True) is None
    assert winograd.choose(geom, f32, "fft", "forward", exact=False, finite=True) is None
    for shape, kw in [((8, 8, 3, 3), {"stride": 2}), ((4, 4, 3, 3), {"groups": 2}), ((8, 8, 5, 5), {})]:
        other = conv_geometry((2, 8, 12, 12), shape, **kw)
        assert winograd.choose(other, f32, "winograd", "forward", exact=False, finite=True) is None
    with cg.workspace_budget(1024):
        assert winograd.choose(geom, f32, "winograd", "forward", exact=False, finite=True) is None
    # auto follows the cost model and the error rule, for each contraction
    big = conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    compiled = winograd.use_compiled()  # the compiled transforms on one thread only
    for op in OPS:
        auto = winograd.choose(big, f32, "auto", op, exact=False, finite=True)
        m = winograd.variant(big, f32, op)
        assert winograd.ERROR_FACTOR[m][op] <= winograd.MAX_ERROR_FACTOR
        direct = min(cost.gemm_cost(big), cost.grid_cost(big))
        if op != "weight" and implicit.choose(big, f32, "auto", op, exact=False, finite=True):
            direct = min(direct, implicit.op_cost(big, op))  # the implicit route counts among the direct ones
        cheaper = winograd.variant_cost(big, m, op, compiled) < direct
        assert (auto == "winograd") == cheaper
    # a tiny layer is never worth it under auto
    assert winograd.choose(geom, f32, "auto", "forward", exact=False, finite=True) is None


def test_variant_follows_the_error_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    f32 = np.dtype("float32")
    big = conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    assert winograd.variant(big, f32, "input", compiled=True) == 2  # F(4×4) is over the factor there
    monkeypatch.setattr(winograd, "MAX_ERROR_FACTOR", 100.0)  # both allowed: the cheaper one
    for op in OPS:
        for compiled in (False, True):
            costs = {m: winograd.variant_cost(big, m, op, compiled) for m in winograd.TILES}
            assert winograd.variant(big, f32, op, compiled) == min(costs, key=costs.__getitem__)
    monkeypatch.setattr(winograd, "MAX_ERROR_FACTOR", 3.0)
    assert winograd.variant(big, f32, "forward", compiled=True) == 2
    monkeypatch.setattr(winograd, "MAX_ERROR_FACTOR", 0.5)  # none is within it: F(2×2, 3×3), the most accurate
    assert winograd.variant(big, f32, "forward", compiled=True) == 2


@pytest.mark.parametrize(("m", "compiled"), VARIANTS)
def test_workspace_stays_within_the_budget(m: int, compiled: bool) -> None:
    """Peak traced memory: the budget plus the call's own arrays (the samples are chunked)."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((6, 8, 24, 24)), rng.standard_normal((8, 8, 3, 3))
    geom = conv_geometry(x.shape, w.shape, padding=1)
    g = rng.standard_normal(geom.output_shape)
    budget = 256 * 1024  # below one call's whole workspace (about 1.3 MiB), above one sample's
    want = _gemm(geom, x, w, g)
    for i, call in enumerate([lambda: winograd.winograd_forward(x, w, geom, m, compiled),
                              lambda: winograd.winograd_input_grad(g, w, geom, m, compiled),
                              lambda: winograd.winograd_weight_grad(g, x, geom, m, compiled)]):
        call()  # compile outside the traced call
        out, peak = _traced(call, budget)
        np.testing.assert_allclose(out, want[i], rtol=1e-9, atol=1e-9)
        assert peak <= budget + 3 * x.nbytes + 64 * 1024, (i, peak)


def test_without_numba_the_numpy_transforms_are_used() -> None:
    """In a process where ``import numba`` fails, the route runs on the NumPy transforms (and is correct)."""
    script = textwrap.dedent("""
        import sys
        sys.modules["numba"] = None
        import numpy as np
        from convgrad._geometry import conv_geometry
        from convgrad.engine import dispatch, winograd
        assert not winograd.compiled_available()
        rng = np.random.default_rng(0)
        x, w = rng.standard_normal((2, 3, 11, 9)), rng.standard_normal((4, 3, 3, 3))
        geom = conv_geometry(x.shape, w.shape, padding=1)
        g = rng.standard_normal(geom.output_shape)
        for op, a, b in (("forward", x, w), ("input", g, w), ("weight", g, x)):
            got = winograd.ROUTES[op]["winograd"](a, b, geom)
            want = dispatch.ROUTES[op]["gemm"](a, b, geom)
            assert np.allclose(got, want, rtol=1e-9, atol=1e-9), op
        assert winograd.choose(geom, np.dtype("float32"), "winograd", "forward", exact=False, finite=True)
        x3, w3 = rng.standard_normal((2, 3, 5, 6, 7)), rng.standard_normal((4, 3, 3, 3, 3))
        geom3 = conv_geometry(x3.shape, w3.shape, padding=((1, 0), (2, 1), (0, 2)))
        g3 = rng.standard_normal(geom3.output_shape)
        for op, a, b in (("forward", x3, w3), ("input", g3, w3), ("weight", g3, x3)):
            got = winograd.ROUTES[op]["winograd"](a, b, geom3)
            assert np.allclose(got, dispatch.ROUTES[op]["gemm"](a, b, geom3), rtol=1e-9, atol=1e-9), op
        assert "numba" not in sys.modules or sys.modules["numba"] is None
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.skipif(not HAVE_NUMBA, reason="needs Numba")
def test_compiled_transforms_are_timed_once() -> None:
    from convgrad.engine import winograd_jit

    x, w = np.ones((1, 2, 6, 6), dtype=np.float32), np.ones((2, 2, 3, 3), dtype=np.float32)
    geom = conv_geometry(x.shape, w.shape, padding=1)
    winograd.winograd_weight_grad(winograd.winograd_forward(x, w, geom, 4, True), x, geom, 4, True)
    assert {"input[float32]", "output[float32]", "grad[float32]"} <= set(winograd_jit.COMPILE_SECONDS)


@pytest.fixture
def winograd_dispatch(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The dispatcher consulting :func:`winograd.choose`, as registered; records the routes taken."""
    taken: list[str] = []
    for op in OPS:
        monkeypatch.setitem(dispatch.ROUTES, op, {**dispatch.ROUTES[op], **winograd.ROUTES[op]})
    original = dispatch.route

    def route(geom: Geometry, dtype: Any, method: str = "auto", op: str = "forward", *, exact: bool = False,
              finite: bool = True) -> str:
        name = winograd.choose(geom, np.dtype(dtype), method, op, exact=exact, finite=finite)
        chosen = name or original(geom, dtype, "auto" if method == "winograd" else method, op, exact=exact,
                                  finite=finite)
        taken.append(chosen)
        return chosen

    def run(op: str, a: np.ndarray, b: np.ndarray, geom: Geometry, method: str = "auto", *,
            exact: bool = False) -> np.ndarray:
        dtype = np.result_type(a, b)
        finite = bool(np.isfinite(a).all() and np.isfinite(b).all())
        name = route(geom, dtype, method, op, exact=exact, finite=finite)
        with np.errstate(invalid="ignore"):
            out: np.ndarray = dispatch.ROUTES[op][name](a, b, geom)
        return out

    monkeypatch.setattr(dispatch, "route", route)
    monkeypatch.setattr(dispatch, "run", run)
    state.clear_caches()
    return taken


def test_method_winograd_forces_it_on_every_public_path(winograd_dispatch: list[str]) -> None:
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    g = rng.standard_normal((2, 4, 9, 8))
    y = cg.conv(x, w, b, padding=1, method="winograd")
    gx, gw, gb = cg.conv_backward(g, x, w, padding=1, method="winograd")
    assert winograd_dispatch == ["winograd"] * 3
    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    yt = F.conv2d(xt, wt, bt, padding=1)
    refs = torch.autograd.grad(yt, (xt, wt, bt), torch.from_numpy(g))
    for ours, ref in zip((y, gx, gw, gb), (yt.detach(), *refs)):
        np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-10, atol=1e-10)
    # a NaN takes a direct route (it would spread over its tile), with PyTorch's answer
    x[0, 0, 2, 2] = np.nan
    y_nan = cg.conv(x, w, padding=1, method="winograd")
    assert winograd_dispatch[-1] in ("gemm", "grid", "small")
    assert np.isnan(y_nan[0, :, 1:4, 1:4]).all() and not np.isnan(y_nan[0, :, 5:, 5:]).any()
    # 3-d likewise: forced, and a NaN falls back to a direct route
    x3, w3 = rng.standard_normal((2, 3, 5, 6, 4)), rng.standard_normal((4, 3, 3, 3, 3))
    g3 = rng.standard_normal((2, 4, 5, 6, 4))
    y3 = cg.conv(x3, w3, padding=1, method="winograd")
    gx3, gw3, _ = cg.conv_backward(g3, x3, w3, padding=1, method="winograd")
    assert winograd_dispatch[-3:] == ["winograd"] * 3
    for ours, ref in zip((y3, gx3, gw3), _torch3d(x3, w3, g3, (1, 1, 1), (1, 1, 1))):
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)
    x3[1, 2, 2, 3, 1] = np.inf
    y3_inf = cg.conv(x3, w3, padding=1, method="winograd")
    assert winograd_dispatch[-1] != "winograd"
    assert np.isfinite(y3_inf[0]).all() and np.isfinite(y3_inf[1, :, 4:, :, :]).all()
    # where it does not apply, method="winograd" computes as "auto" does
    y5 = cg.conv(x[:, :, :, :5], np.ones((2, 3, 5, 5)), method="winograd")
    assert y5.shape == (2, 2, 5, 1)


def test_method_is_accepted_and_checked() -> None:
    from convgrad._arguments import METHODS, check_method
    assert check_method("winograd") == "winograd" and METHODS[-1] == "winograd"
    with pytest.raises(ValueError, match=r"method must be one of \('auto', 'direct', 'fft', 'winograd'\)"):
        check_method("fast")


def test_torch_bridge_passes_method_through(winograd_dispatch: list[str]) -> None:
    import convgrad.torch as cgt

    x = torch.randn(2, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    y = cgt.conv(x, w, padding=1, method="winograd")
    (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    (gw2,) = torch.autograd.grad(gx.sum(), w)
    assert set(winograd_dispatch) == {"winograd"} and len(winograd_dispatch) >= 4
    xr, wr = x.detach().requires_grad_(), w.detach().requires_grad_()
    yr = F.conv2d(xr, wr, padding=1)
    (gxr,) = torch.autograd.grad(yr.square().sum(), xr, create_graph=True)
    (gw2r,) = torch.autograd.grad(gxr.sum(), wr)
    torch.testing.assert_close(y, yr)
    torch.testing.assert_close(gw2, gw2r)
    layer = cgt.Conv2d(3, 4, 3, padding=1, method="winograd").double()
    assert layer.method == "winograd" and "method='winograd'" in repr(layer)
    layer(x)
    assert winograd_dispatch[-1] == "winograd"
    with pytest.raises(ValueError, match="method must be one of"):
        cgt.conv(x, w, method="fast")


def test_overlapping_calls_restore_the_blas_thread_count() -> None:
    """Two threads in the parallel-chunk path at once: the BLAS limit is shared, and the count the process had
    before comes back when the last call leaves (each call restoring its own would leave it at 1 for good)."""
    pytest.importorskip("threadpoolctl")
    import threading

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 8, 20, 20)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    expected = cg.conv(x, w, padding=1, method="direct")
    cg.conv(x, w, padding=1, method="winograd")  # loads the compiled transforms (and whatever Numba loads)
    before = _blas_threads()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(6):
                np.testing.assert_allclose(cg.conv(x, w, padding=1, method="winograd"), expected, rtol=1e-4,
                                           atol=1e-4)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert _blas_threads() == before
    assert state._blas_users == 0 and state._blas_limiter is None


def test_the_shared_blas_limit_is_refcounted() -> None:
    """The first caller sets the limit, the last restores it, also when a caller raises."""
    calls: list[str] = []

    class Limiter:
        def restore_original_limits(self) -> None:
            calls.append("restore")

    class Controller:
        def limit(self, limits: int, user_api: str) -> Limiter:
            calls.append(f"limit {limits} {user_api}")
            return Limiter()

    with state.single_threaded_blas(Controller()):
        with pytest.raises(RuntimeError):
            with state.single_threaded_blas(Controller()):
                raise RuntimeError("inner")
        assert calls == ["limit 1 blas"]
    assert calls == ["limit 1 blas", "restore"]


@pytest.mark.parametrize("kw", [{"dilation": 2, "padding": 2}, {"padding": 1, "padding_mode": "reflect"}])
def test_whole_array_copies_count_against_the_budget(kw: dict[str, Any]) -> None:
    """Dilated layers and padding modes other than zeros copy the whole (padded) input before the chunks: the
    route is declined where those copies do not fit, and the call stays within budget + its own arrays."""
    geom = conv_geometry((32, 32, 64, 64), (32, 32, 3, 3), **kw)
    f32 = np.dtype(np.float32)
    with state.workspace_budget(4 << 20):  # the input alone is 16 MiB
        assert winograd.choose(geom, f32, "winograd", "forward", exact=False, finite=True) is None
        assert winograd.choose(geom, f32, "auto", "weight", exact=False, finite=True) is None
        rng = np.random.default_rng(1)
        x = rng.standard_normal((32, 32, 64, 64)).astype(np.float32)
        w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
        cg.release_workspace()
        tracemalloc.start()
        try:
            y = cg.conv(x, w, **kw)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            cg.release_workspace()
        assert peak < (4 << 20) + 2 * x.nbytes + y.nbytes
    with state.workspace_budget(1 << 30):
        assert winograd.choose(geom, f32, "winograd", "forward", exact=False, finite=True) == "winograd"


def test_compiled_transforms_on_any_number_of_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiled transforms for 2-d layers wherever Numba is installed: on one thread, and on several where whole
    chunks can run one per thread (threadpoolctl installed: the BLAS is limited to one thread meanwhile)."""
    old = cg.set_num_threads(2)
    try:
        assert winograd.use_compiled() == winograd.compiled_available()
        assert not winograd.use_compiled(3)  # 3-d layers take the NumPy transforms
        monkeypatch.setattr(winograd, "blas_controller", lambda: None)  # without threadpoolctl
        assert not winograd.use_compiled()
        cg.set_num_threads(1)
        assert winograd.use_compiled() == winograd.compiled_available()
    finally:
        cg.set_num_threads(old)


def _blas_threads() -> list[int]:
    """The thread counts of NumPy's BLAS (the one NumPy's wheels bundle, else every BLAS loaded: importing Numba
    may load another library's BLAS, which convgrad never calls and does not limit)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = [info for info in threadpoolctl.ThreadpoolController().info() if info["user_api"] == "blas"]
    bundled = [info for info in blas if "numpy.libs" in info["filepath"] or ".dylibs" in info["filepath"]]
    return [info["num_threads"] for info in (bundled or blas)]


@pytest.mark.skipif(not HAVE_NUMBA, reason="the parallel chunks need the compiled transforms (Numba)")
@pytest.mark.parametrize("op", OPS)
def test_every_blas_call_of_a_parallel_call_is_single_threaded(op: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the chunks run in parallel, the weight transform before them and the weight gradient's inverse
    transform after them run on a one-thread BLAS too (a multi-threaded GEMM there leaves the BLAS's threads
    spinning next to the chunk threads); the count the process had comes back afterwards."""
    before = _blas_threads()
    seen: list[list[int]] = []
    transform, kron_g = winograd.weight_transform, winograd._kron_g

    def recording_transform(*args: Any, **kwargs: Any) -> np.ndarray:
        seen.append(_blas_threads())
        return transform(*args, **kwargs)

    def recording_kron_g(*args: Any) -> np.ndarray:
        seen.append(_blas_threads())
        return kron_g(*args)

    plans: list[bool] = []
    run_chunks = winograd._run_chunks

    def recording_run_chunks(chunks: Any, parallel: bool, run: Any) -> None:
        plans.append(parallel)
        run_chunks(chunks, parallel, run)

    monkeypatch.setattr(winograd, "weight_transform", recording_transform)
    monkeypatch.setattr(winograd, "_kron_g", recording_kron_g)
    monkeypatch.setattr(winograd, "_run_chunks", recording_run_chunks)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 8, 12, 12)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    g = rng.standard_normal((4, 8, 12, 12)).astype(np.float32)
    geom = conv_geometry(x.shape, w.shape, padding=1)
    a, b = {"forward": (x, w), "input": (g, w), "weight": (g, x)}[op]
    expected = _gemm(geom, x, w, g)[OPS.index(op)]
    old = cg.set_num_threads(2)
    try:
        got = winograd.ROUTES[op]["winograd"](a, b, geom)
        cg.set_num_threads(1)  # one thread: the chunks run one after another
        seen_one_thread = len(seen)
        got_one = winograd.ROUTES[op]["winograd"](a, b, geom)
    finally:
        cg.set_num_threads(old)
    assert plans == [True, False]  # two threads: whole chunks in parallel; one thread: one after another
    assert seen[:seen_one_thread] and all(counts and set(counts) == {1} for counts in seen[:seen_one_thread])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_one, expected, rtol=1e-4, atol=1e-4)
    assert _blas_threads() == before
    assert state._blas_users == 0 and state._blas_limiter is None


def test_bias_gradient_stays_off_the_blas_where_the_compiled_transforms_run() -> None:
    """``conv_backward`` sums the bias without the multi-threaded BLAS where the weight gradient takes Winograd
    with the compiled transforms (its spinning threads would share the cores with the next call's chunk
    threads), and by the BLAS where the transforms are NumPy's; the bias matches PyTorch either way."""
    geom = conv_geometry((8, 64, 28, 28), (64, 64, 3, 3), padding=1)
    assert dispatch.lookup(geom, np.dtype("float32"), "auto", "weight") == "winograd"
    rng = np.random.default_rng(5)
    g = rng.standard_normal(geom.output_shape).astype(np.float32)
    assert g.size >= cg.engine.GEMV_MIN_ELEMENTS
    x = rng.standard_normal(geom.input_shape).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    asked: list[bool] = []
    bias_grad = cg.engine.bias_grad

    def recording(g: np.ndarray, *, blas: bool = True) -> np.ndarray:
        asked.append(blas)
        return bias_grad(g, blas=blas)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cg.engine, "bias_grad", recording)
        grads = cg.conv_backward(g, x, w, padding=1)
        mp.setattr(winograd, "use_compiled", lambda d=2: False)  # the NumPy transforms: the GEMV is fine
        state.clear_caches()
        cg.conv_backward(g, x, w, padding=1)
    state.clear_caches()
    assert asked == [not winograd.use_compiled(), True]
    np.testing.assert_allclose(grads.bias, g.astype(np.float64).sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-3)


@pytest.mark.skipif(not HAVE_NUMBA, reason="the direct kernels need Numba")
def test_thin_layers_take_the_direct_kernels_before_winograd() -> None:
    """A thin 2-d 3×3 layer (8–32 channels) takes the compiled direct kernels, asked before Winograd, whose 16–36
    GEMMs are thin there (forward + backward, 16→32 at 56²: 7.95 ms direct against 10.6 ms Winograd; 32→32 at
    112², 49.8 against 45.6, the one layer measured where Winograd was faster)."""
    geom = conv_geometry((8, 32, 112, 112), (32, 32, 3, 3), padding=1)
    assert [dispatch.lookup(geom, np.dtype("float32"), "auto", op) for op in OPS] == ["jit_direct"] * 3
    assert [dispatch.lookup(geom, np.dtype("float32"), "winograd", op) for op in OPS] == ["winograd"] * 3


@pytest.mark.skipif(not HAVE_NUMBA, reason="the bias is fused into the compiled output transform only")
@pytest.mark.parametrize("threads", [1, 2])
def test_bias_is_added_by_the_compiled_output_transform(threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``conv(x, w, b)`` on Winograd with the compiled transforms adds the bias as each plane is written: the same
    bits as ``y + b`` afterwards (one rounding either way), no second pass over ``y``; PyTorch's result in float64."""
    rng = np.random.default_rng(21)
    x = rng.standard_normal((3, 8, 13, 11)).astype(np.float32)
    w = rng.standard_normal((6, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    geom = conv_geometry(x.shape, w.shape, padding=1)
    seen: list[bool] = []
    transform = winograd.winograd_jit.output_transform

    def recording(*args: Any, **kwargs: Any) -> None:
        seen.append(len(args) > 5 and args[5] is not None)
        transform(*args, **kwargs)

    monkeypatch.setattr(winograd.winograd_jit, "output_transform", recording)
    old = cg.set_num_threads(threads)
    try:
        for m in winograd.TILES:
            seen.clear()
            fused = winograd.winograd_forward(x, w, geom, m, True, bias=b)
            assert seen and all(seen)  # every chunk's output transform got the bias
            seen.clear()
            plain = winograd.winograd_forward(x, w, geom, m, True)
            assert seen and not any(seen)
            np.testing.assert_array_equal(fused, plain + b[:, None, None])
            assert winograd.winograd_forward(x, w, geom, m, True, bias=b.astype(np.float64)).dtype == np.float64
        seen.clear()
        y = cg.conv(x, w, b, padding=1, method="winograd")  # the public path takes the fused transform
        assert seen and all(seen)
    finally:
        cg.set_num_threads(old)
    ref = F.conv2d(*(torch.from_numpy(a.astype(np.float64)) for a in (x, w, b)), padding=1).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    # forced on a dilated layer (polyphase grids): added afterwards, same result
    dil = conv_geometry(x.shape, w.shape, padding=2, dilation=2)
    np.testing.assert_allclose(winograd.winograd_forward(x, w, dil, 2, True, bias=b),
                               dispatch.ROUTES["forward"]["gemm"](x, w, dil) + b[:, None, None], rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not HAVE_NUMBA, reason="the bias is fused into the compiled output transform only")
def test_fused_bias_with_non_finite_data_lands_where_torch_puts_it() -> None:
    """A NaN in ``x`` sends ``conv(x, w, b)`` to a route for any data (the fused path is not taken); a NaN in the
    bias fills its channel, as in PyTorch."""
    rng = np.random.default_rng(22)
    x = rng.standard_normal((2, 8, 12, 12))
    w = rng.standard_normal((8, 8, 3, 3))
    b = rng.standard_normal(8)
    fused: list[bool] = []
    forward = winograd.winograd_forward

    def recording(*args: Any, **kwargs: Any) -> np.ndarray:
        fused.append(kwargs.get("bias") is not None)
        return forward(*args, **kwargs)

    for which in ("x", "b"):
        xx, bb = x.copy(), b.copy()
        if which == "x":
            xx[1, 2, 5, 6] = np.nan
        else:
            bb[3] = np.nan
        fused.clear()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(winograd, "winograd_forward", recording)
            y = cg.conv(xx, w, bb, padding=1, method="winograd")
        assert fused == ([] if which == "x" else [True])  # a NaN in x: a direct route; in the bias: fused
        ref = F.conv2d(*(torch.from_numpy(a) for a in (xx, w, bb)), padding=1).numpy()
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
        np.testing.assert_allclose(y[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=1e-9, atol=1e-9)


def test_auto_leaves_one_sample_to_the_direct_routes_on_several_threads() -> None:
    """With one sample there are no chunks to run one per thread: ``auto`` keeps the forward pass and the input
    gradient on the direct routes when several threads compute (the weight gradient may still take Winograd);
    one thread, or two samples, as before; ``method="winograd"`` forces it anyway."""
    f32 = np.dtype("float32")
    one = conv_geometry((1, 64, 224, 224), (64, 64, 3, 3), padding=1)
    two = conv_geometry((2, 64, 224, 224), (64, 64, 3, 3), padding=1)
    old = cg.set_num_threads(2)
    try:
        for op in ("forward", "input"):
            assert winograd.choose(one, f32, "auto", op, exact=False, finite=True) is None
            assert winograd.choose(one, f32, "winograd", op, exact=False, finite=True) == "winograd"
            assert winograd.choose(two, f32, "auto", op, exact=False, finite=True) == "winograd"
        assert winograd.choose(one, f32, "auto", "weight", exact=False, finite=True) == "winograd"
        cg.set_num_threads(1)
        assert winograd.choose(one, f32, "auto", "forward", exact=False, finite=True) == "winograd"
    finally:
        cg.set_num_threads(old)


@pytest.mark.parametrize(("m", "d"), [(2, 2), (4, 2), (2, 3)])
def test_weight_transform_flip_and_its_adjoint(m: int, d: int) -> None:
    """``flip`` transforms the reversed kernel without copying it (the input gradient's ``U[α]ᵀ`` is that of the
    reversed, channel-swapped kernel), and :func:`inverse_weight_transform` is the adjoint of the transform, the
    parts added after it."""
    rng = np.random.default_rng(11)
    w = rng.standard_normal((5, 3) + (3,) * d)
    f64 = np.dtype("float64")
    reversed_kernel = np.ascontiguousarray(w[(slice(None), slice(None)) + (slice(None, None, -1),) * d].swapaxes(0, 1))
    np.testing.assert_allclose(winograd.weight_transform(w, f64, m, flip=True).swapaxes(1, 2),
                               winograd.weight_transform(reversed_kernel, f64, m), rtol=1e-13, atol=1e-13)
    parts = [rng.standard_normal(((m + 2) ** d, 5, 3)) for _ in range(3)]
    u = winograd.weight_transform(w, f64, m)
    adjoint = winograd.inverse_weight_transform(parts, m, d)
    assert adjoint.shape == w.shape
    assert np.vdot(u, sum(parts)) == pytest.approx(np.vdot(w, adjoint), rel=1e-12)
    np.testing.assert_allclose(adjoint, winograd.inverse_weight_transform([sum(parts)], m, d), rtol=1e-12, atol=1e-12)


def test_weight_transforms_split_over_the_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """``split=True`` runs one GEMM per range of output channels on the engine's threads, with the results of the
    single GEMM (float32: to rounding); the inputs are left as they were."""
    monkeypatch.setattr(state, "PARALLEL_MIN_ELEMENTS", 1)
    ranges: list[tuple[int, int]] = []
    original = winograd.split_run

    def recording_split_run(total: int, elements: int, work: Callable[[int, int], None]) -> None:
        def recorded(a: int, b: int) -> None:
            ranges.append((a, b))
            work(a, b)

        original(total, elements, recorded)

    monkeypatch.setattr(winograd, "split_run", recording_split_run)
    rng = np.random.default_rng(12)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    parts = [rng.standard_normal((36, 16, 8)).astype(np.float32) for _ in range(2)]
    w_before, parts_before = w.copy(), [p.copy() for p in parts]
    f32 = np.dtype("float32")
    old = cg.set_num_threads(2)
    try:
        for flip in (False, True):
            one = winograd.weight_transform(w, f32, 4, flip=flip)
            ranges.clear()
            split = winograd.weight_transform(w, f32, 4, flip=flip, split=True)
            assert sorted(ranges) == [(0, 8), (8, 16)]
            np.testing.assert_allclose(split, one, rtol=1e-6, atol=1e-6)
        one = winograd.inverse_weight_transform(parts, 4, 2)
        ranges.clear()
        split = winograd.inverse_weight_transform(parts, 4, 2, split=True)
        assert sorted(ranges) == [(0, 8), (8, 16)]
        np.testing.assert_allclose(split, one, rtol=1e-6, atol=1e-6)
    finally:
        cg.set_num_threads(old)
    np.testing.assert_array_equal(w, w_before)
    for p, before in zip(parts, parts_before):
        np.testing.assert_array_equal(p, before)


def test_parallel_chunks_hold_twice_the_transformed_weight(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parallel chunks grow to twice the transformed weight's bytes (its GEMMs read all of ``U`` per chunk), within
    the budget less a weight-gradient accumulator; small weights keep :data:`CHUNK_BYTES`."""
    pytest.importorskip("threadpoolctl")
    mib = 1 << 20
    old = cg.set_num_threads(2)
    try:
        per_sample = int(1.6 * mib)  # 256→256 at 14², F(2×2): U is 4 MiB
        assert winograd._plan(8, per_sample, True, 4 * mib) == ([(0, 4), (4, 8)], True)
        assert winograd._plan(8, per_sample, True, 4 * mib, True) == ([(0, 4), (4, 8)], True)
        assert winograd._plan(8, per_sample, True, mib // 2) == ([(0, 2), (2, 4), (4, 6), (6, 8)], True)
        with cg.workspace_budget(10 * mib):  # 5 MiB per thread, less the 4 MiB accumulator: one sample per chunk
            chunks, parallel = winograd._plan(8, per_sample // 2, True, 4 * mib, True)
            assert parallel and chunks == [(i, i + 1) for i in range(8)]
        assert winograd._plan(8, per_sample, False, 4 * mib)[1] is False  # NumPy transforms: one chunk at a time
    finally:
        cg.set_num_threads(old)
