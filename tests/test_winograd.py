"""The Winograd route F(2×2, 3×3) against the NumPy routes and PyTorch, and ``method="winograd"``.

The route is called directly and through the dispatcher (monkeypatched to consult
:func:`convgrad.engine.winograd.choose`, as the engine does once the route is registered).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convgrad as cg
from convgrad._geometry import Geometry, conv_geometry
from convgrad.engine import dispatch, state, winograd

torch = pytest.importorskip("torch")
F = torch.nn.functional

OPS = ("forward", "input", "weight")


def _gemm(geom: Geometry, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    return [dispatch.ROUTES["forward"]["gemm"](x, w, geom), dispatch.ROUTES["input"]["gemm"](g, w, geom),
            dispatch.ROUTES["weight"]["gemm"](g, x, geom)]


def _wino(geom: Geometry, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    return [winograd.winograd_forward(x, w, geom), winograd.winograd_input_grad(g, w, geom),
            winograd.winograd_weight_grad(g, x, geom)]


@given(
    n=st.integers(1, 2), c=st.integers(1, 4), o=st.integers(1, 4), h=st.integers(1, 9), wd=st.integers(1, 9),
    lo=st.tuples(st.integers(0, 3), st.integers(0, 3)), hi=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    mode=st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]), seed=st.integers(0, 2**16),
)
def test_matches_the_gemm_route_and_torch(n: int, c: int, o: int, h: int, wd: int, lo: tuple[int, int],
                                          hi: tuple[int, int], mode: str, seed: int) -> None:
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
    ours = _wino(geom, x, w, g)
    for got, want in zip(ours, _gemm(geom, x, w, g)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    torch_mode = {"zeros": "constant"}.get(mode, mode)
    yt = F.conv2d(F.pad(xt, [lo[1], hi[1], lo[0], hi[0]], mode=torch_mode), wt)
    gxt, gwt = torch.autograd.grad(yt, (xt, wt), torch.from_numpy(g))
    for got, ref in zip(ours, (yt.detach(), gxt, gwt)):
        np.testing.assert_allclose(got, ref.numpy(), rtol=1e-10, atol=1e-10)


def test_crops_and_input_dilation() -> None:
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 8, 9)), rng.standard_normal((2, 3, 3, 3))
    for kw in ({"padding": ((-1, 2), (2, -2))}, {"padding": 1, "input_dilation": 2}, {"padding": 5}):
        geom = conv_geometry(x.shape, w.shape, **kw)
        g = rng.standard_normal(geom.output_shape)
        for got, want in zip(_wino(geom, x, w, g), _gemm(geom, x, w, g)):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_float32_error_stays_within_the_documented_factor() -> None:
    rng = np.random.default_rng(4)
    x64, w64 = rng.standard_normal((2, 32, 20, 20)), rng.standard_normal((32, 32, 3, 3)) / np.sqrt(288)
    geom = conv_geometry(x64.shape, w64.shape, padding=1)
    g64 = rng.standard_normal(geom.output_shape)
    x, w, g = (a.astype(np.float32) for a in (x64, w64, g64))
    for op, args32, args64 in [("forward", (x, w), (x64, w64)), ("input", (g, w), (g64, w64)),
                               ("weight", (g, x), (g64, x64))]:
        ref = dispatch.ROUTES[op]["gemm"](*args64, geom)
        scale = np.abs(ref).max()
        direct = np.abs(dispatch.ROUTES[op]["gemm"](*args32, geom) - ref).max() / scale
        wino = winograd.ROUTES[op]["winograd"](*args32, geom)
        assert wino.dtype == np.float32
        assert np.abs(wino - ref).max() / scale <= winograd.MAX_ERROR_FACTOR * max(direct, 1e-7)


def test_choose() -> None:
    f32 = np.dtype("float32")
    geom = conv_geometry((2, 8, 12, 12), (8, 8, 3, 3), padding=1)
    assert winograd.choose(geom, f32, "winograd", "input", exact=False, finite=True) == "winograd"
    assert winograd.choose(geom, f32, "winograd", "input", exact=False, finite=False) is None
    assert winograd.choose(geom, np.dtype("int64"), "winograd", "input", exact=True, finite=True) is None
    assert winograd.choose(geom, f32, "direct", "forward", exact=False, finite=True) is None
    for shape, kw in [((8, 8, 3, 3), {"stride": 2}), ((8, 8, 3, 3), {"dilation": 2}), ((4, 4, 3, 3), {"groups": 2}),
                      ((8, 8, 5, 5), {})]:
        other = conv_geometry((2, 8, 12, 12), shape, **kw)
        assert winograd.choose(other, f32, "winograd", "forward", exact=False, finite=True) is None
    with cg.workspace_budget(1024):
        assert winograd.choose(geom, f32, "winograd", "forward", exact=False, finite=True) is None
    big = conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    # auto follows the cost model (with NumPy transforms it is not cheaper on this layer)
    auto = winograd.choose(big, f32, "auto", "forward", exact=False, finite=True)
    from convgrad.engine import cost
    assert (auto == "winograd") == (cost.winograd_cost(big) < min(cost.gemm_cost(big), cost.grid_cost(big)))


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
    assert winograd_dispatch[-1] == "gemm" or winograd_dispatch[-1] == "grid"
    assert np.isnan(y_nan[0, :, 1:4, 1:4]).all() and not np.isnan(y_nan[0, :, 5:, 5:]).any()
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
