"""NaN and infinity land where PyTorch puts them, on every route, each route forced.

The rule: an entry of a result is non-finite exactly when PyTorch's is (the
exact sum has a non-finite term), and an infinity stays an infinity of the same
sign where PyTorch gives one. Every route is forced (the cost model lifted or
``method="fft"``) and checked to be the route taken, then one NaN, +inf or
−inf is planted in ``x``, ``w`` or ``g`` at a corner, the centre and the last
element, and the non-finite pattern of ``y``, ``gx``, ``gw`` and ``gb`` is
compared with ``torch.autograd.grad`` in float64.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import convgrad as cg
from convgrad._geometry import conv_geometry
from convgrad.engine import cost, dispatch, jit, small, state, winograd

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

# (route name expected for forward/input/weight, x shape, w shape, kwargs, method)
CASES: list[tuple[str, tuple[str, str, str], tuple[int, ...], tuple[int, ...], dict[str, Any], str]] = [
    ("gemm", ("gemm", "gemm", "gemm"), (2, 3, 9, 8), (4, 3, 3, 3), {"stride": 2, "padding": 1}, "direct"),
    ("gemm small fold", ("gemm", "gemm", "gemm"), (1, 1, 8, 8), (1, 1, 3, 3), {}, "direct"),
    ("grid", ("grid", "grid", "grid"), (2, 3, 8, 7), (4, 3, 3, 2), {"padding": 1, "dilation": (1, 2)}, "direct"),
    ("pointwise", ("pointwise",) * 3, (2, 4, 6, 5), (3, 4, 1, 1), {"stride": 2}, "direct"),
    ("depthwise", ("depthwise",) * 3, (2, 3, 9, 9), (3, 1, 3, 3), {"groups": 3, "stride": 2,
                                                                             "padding": 1}, "direct"),
    ("depthwise stride 1", ("depthwise",) * 3, (2, 3, 8, 8), (3, 1, 3, 3),
     {"groups": 3, "padding": 1}, "direct"),
    ("fft requested", ("gemm", "gemm", "gemm"), (2, 2, 40), (3, 2, 11), {"padding": 3, "stride": 2}, "fft"),
    ("jit depthwise", ("depthwise",) * 3, (2, 3, 9, 9), (3, 1, 3, 3), {"groups": 3, "stride": 2, "padding": 1},
     "direct"),
    ("grid 1-d reflect", ("grid", "grid", "grid"), (2, 2, 12), (2, 2, 4), {"padding": 2, "padding_mode": "reflect"},
     "direct"),
    ("taps", ("taps",) * 3, (2, 3, 300), (4, 3, 3), {"padding": 1, "dilation": 2}, "direct"),
    ("small", ("small",) * 3, (2, 3, 6, 5), (4, 3, 3, 2), {"padding": 1, "stride": (1, 2)}, "direct"),
    ("small grouped reflect", ("small",) * 3, (1, 4, 6, 6), (4, 2, 3, 3),
     {"groups": 2, "padding": 1, "padding_mode": "reflect"}, "auto"),
]


@contextmanager
def _routes_forced(grid: bool = True, small_route: bool = False) -> Iterator[None]:
    """With ``grid``, the grid routes apply wherever the stride allows: the size threshold and cost comparison lifted."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jit, "choose", lambda *args, **kwargs: None)  # the NumPy routes (the JIT's are tested below)
        mp.setattr(jit, "choose_direct", lambda *args, **kwargs: None)
        if not small_route:
            mp.setattr(small, "SMALL_WINDOWS", -1)  # these small cases stand for the larger problems' routes
        if grid:
            mp.setattr(cost, "GRID_MIN_ELEMENTS", 0)
            mp.setattr(cost, "grid_cost", lambda geom: 0.0)
            mp.setattr(dispatch, "grid_op", lambda geom, op: True)
        state.clear_caches()
        try:
            yield
        finally:
            state.clear_caches()


@contextmanager
def _jit_routes() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(small, "SMALL_WINDOWS", -1)  # the small cases stand for the compiled routes
        state.clear_caches()
        try:
            yield
        finally:
            state.clear_caches()


def _torch(x: np.ndarray, w: np.ndarray, b: np.ndarray, g: np.ndarray, kw: dict[str, Any]) -> list[np.ndarray]:
    kw = dict(kw)
    mode = kw.pop("padding_mode", "zeros")
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    d = w.ndim - 2
    if mode != "zeros":
        p = kw.pop("padding")
        yt = _CONV[d](F.pad(xt, [p] * (2 * d), mode=mode), wt, bt, **kw)
    else:
        yt = _CONV[d](xt, wt, bt, **kw)
    grads = torch.autograd.grad(yt, (xt, wt, bt), torch.tensor(g))
    return [yt.detach().numpy()] + [t.numpy() for t in grads]


def _same_pattern(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    assert ours.shape == ref.shape, what
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref), err_msg=f"NaN pattern of {what}")
    np.testing.assert_array_equal(np.isposinf(ours), np.isposinf(ref), err_msg=f"+inf pattern of {what}")
    np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(ref), err_msg=f"-inf pattern of {what}")
    finite = np.isfinite(ref)
    np.testing.assert_allclose(ours[finite], ref[finite], rtol=1e-9, atol=1e-9, err_msg=what)


def _positions(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    return [(0,) * len(shape), tuple(s // 2 for s in shape), tuple(s - 1 for s in shape)]


@pytest.mark.parametrize(("name", "expected", "x_shape", "w_shape", "kw", "method"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_values_land_where_torch_puts_them(
    name: str, expected: tuple[str, str, str], x_shape: tuple[int, ...], w_shape: tuple[int, ...],
    kw: dict[str, Any], method: str, value: float,
) -> None:
    rng = np.random.default_rng(7)
    x0, w0 = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    if name.startswith("jit") and not jit.available():
        pytest.skip("the compiled routes need Numba (pip install 'convgrad[jit]')")
    forced = _routes_forced("grid" in name, name.startswith("small")) if not name.startswith("jit") else _jit_routes()
    with forced:
        y_shape = cg.conv(x0, w0, **kw).shape
        geom = conv_geometry(x_shape, w_shape, **kw)
        g0 = rng.standard_normal(y_shape)
        for op, route in zip(("forward", "input", "weight"), expected):
            assert dispatch.route(geom, np.dtype(np.float64), method, op, finite=False) == route, (name, op)
        for target in ("x", "w", "g"):
            base = {"x": x0, "w": w0, "g": g0}[target]
            for pos in _positions(base.shape):
                arrays = {"x": x0.copy(), "w": w0.copy(), "g": g0.copy()}
                arrays[target][pos] = value
                x, w, g = arrays["x"], arrays["w"], arrays["g"]
                ours = [cg.conv(x, w, b, **kw, method=method), *cg.conv_backward(g, x, w, **kw, method=method)]
                for what, o, r in zip(("y", "gx", "gw", "gb"), ours, _torch(x, w, b, g, kw)):
                    _same_pattern(o, r, f"{what} with {value} in {target}{list(pos)} on route {name}")


def test_the_reported_fold_case() -> None:
    """One NaN in the upstream gradient reaches the 9 inputs its window covers, not the whole plane."""
    w = np.ones((1, 1, 3, 3))
    g = np.ones((1, 1, 6, 6))
    g[0, 0, 0, 0] = np.nan
    gx = cg.conv_input_grad(g, w, input_shape=(1, 1, 8, 8))
    assert int(np.isnan(gx).sum()) == 9
    y = cg.conv_transpose(g, w)
    assert int(np.isnan(y).sum()) == 9


def test_nan_in_last_pixel_gives_one_nan_tap_in_the_weight_gradient() -> None:
    """On the grid routes the junk positions meet g's zeros: they must not turn a NaN into 9 taps."""
    x = np.ones((1, 1, 16, 16))
    x[0, 0, -1, -1] = np.nan
    with _routes_forced():
        for w_shape, groups in (((1, 1, 3, 3), 1), ((1, 1, 3, 3), 1)):
            gw = cg.conv_weight_grad(np.ones((1, 1, 14, 14)), x, weight_shape=w_shape, groups=groups)
            assert int(np.isnan(gw).sum()) == 1 and np.isnan(gw[0, 0, 2, 2])
        xd = np.ones((1, 2, 16, 16))
        xd[0, 1, -1, -1] = np.nan
        gw = cg.conv_weight_grad(np.ones((1, 2, 14, 14)), xd, weight_shape=(2, 1, 3, 3), groups=2)
        assert int(np.isnan(gw).sum()) == 1 and np.isnan(gw[1, 0, 2, 2])


def test_fft_is_never_chosen_for_non_finite_data() -> None:
    """A NaN in one block of the FFT would spread over the block: such data takes a direct route."""
    geom = conv_geometry((8, 64, 4096), (64, 64, 63), padding=31)
    f32 = np.dtype(np.float32)
    assert dispatch.route(geom, f32, "auto", "forward") == "fft"
    assert dispatch.route(geom, f32, "auto", "forward", finite=False) != "fft"
    assert dispatch.route(geom, f32, "fft", "weight", finite=False) != "fft"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 300))
    x[0, 1, 150] = np.inf
    w = rng.standard_normal((2, 2, 41))
    y = cg.conv(x, w, method="fft")
    ref = F.conv1d(torch.tensor(x), torch.tensor(w)).numpy()
    _same_pattern(y, ref, "y by method='fft' with an infinity")


WEIGHT_CHECKED = [
    ("fft", (2, 3, 40), (4, 3, 11), {"padding": 5}, "fft"),
    ("winograd", (4, 4, 9, 10), (3, 4, 3, 3), {"padding": 1}, "winograd"),
    ("winograd numpy transforms", (4, 4, 9, 10), (3, 4, 3, 3), {"padding": 1}, "winograd"),
    ("winograd 3-d", (2, 3, 6, 7, 5), (2, 3, 3, 3, 3), {"padding": 1}, "winograd"),
    ("jit_direct", (2, 8, 10, 12, 12), (8, 8, 3, 3, 3), {"padding": 1}, "auto"),
]


@pytest.mark.parametrize(("name", "x_shape", "w_shape", "kw", "method"), WEIGHT_CHECKED, ids=[c[0] for c in WEIGHT_CHECKED])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("threads", [1, 2])
def test_weight_gradient_checks_its_result_and_falls_back(
    name: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...], kw: dict[str, Any], method: str, value: float,
    threads: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The weight gradient of a route for finite data runs first and checks its (small) result instead of both
    operands: a non-finite value in ``g`` or ``x`` makes that result non-finite, the call is then computed again on
    a route for any data, and the pattern is PyTorch's; finite data is computed once. Winograd with the compiled
    and the NumPy transforms, 2-d and 3-d, on one thread and on two (whole chunks in parallel)."""
    route = name.split()[0]
    if route == "jit_direct" and not jit.available():
        pytest.skip("the direct kernels need Numba (pip install 'convgrad[jit]')")
    if name == "winograd numpy transforms":
        monkeypatch.setattr(winograd, "use_compiled", lambda d=2: False)
    old_threads = cg.set_num_threads(threads)
    monkeypatch.setattr(state, "PARALLEL_MIN_ELEMENTS", 1)  # small arrays still split over the threads
    try:
        _weight_check(route, x_shape, w_shape, kw, method, value, monkeypatch)
    finally:
        cg.set_num_threads(old_threads)


def _weight_check(route: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...], kw: dict[str, Any], method: str,
                  value: float, monkeypatch: pytest.MonkeyPatch) -> None:
    geom = conv_geometry(x_shape, w_shape, **kw)
    f64 = np.dtype(np.float64)
    assert dispatch.route(geom, f64, method, "weight") == route
    fallback = dispatch.route(geom, f64, method, "weight", finite=False)
    assert fallback not in dispatch.FINITE_ONLY
    calls: list[str] = []
    for name in (route, fallback):
        original = dispatch.ROUTES["weight"][name]
        monkeypatch.setitem(dispatch.ROUTES["weight"], name,
                            lambda a, b, geom, _f=original, _n=name: (calls.append(_n), _f(a, b, geom))[1])
    rng = np.random.default_rng(11)
    x0, w0 = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    g0 = rng.standard_normal(geom.output_shape)
    clean = cg.conv_weight_grad(g0, x0, weight_shape=w_shape, **kw, method=method)
    assert calls == [route]
    np.testing.assert_allclose(clean, _torch(x0, w0, b, g0, kw)[2], rtol=1e-9, atol=1e-9)
    for target in ("x", "g"):
        base = {"x": x0, "g": g0}[target]
        for pos in _positions(base.shape):
            arrays = {"x": x0.copy(), "g": g0.copy()}
            arrays[target][pos] = value
            calls.clear()
            gw = cg.conv_weight_grad(arrays["g"], arrays["x"], weight_shape=w_shape, **kw, method=method)
            assert calls == [route, fallback], (target, pos)
            _same_pattern(gw, _torch(arrays["x"], w0, b, arrays["g"], kw)[2], f"gw with {value} in {target}{list(pos)}")


def test_weight_gradient_that_overflows_is_computed_again() -> None:
    """Finite data whose weight gradient overflows on a route for finite data: computed again on a route for any
    data, which gives the infinities of the exact sum."""
    geom = conv_geometry((1, 1, 40), (1, 1, 11), padding=5)
    assert dispatch.route(geom, np.dtype(np.float32), "fft", "weight") == "fft"
    x = np.full((1, 1, 40), 3e38, dtype=np.float32)
    g = np.full((1, 1, 40), 3e38, dtype=np.float32)
    with np.errstate(over="ignore"):  # the products overflow: the data's, as in PyTorch
        gw = cg.conv_weight_grad(g, x, weight_shape=(1, 1, 11), padding=5, method="fft")
        direct = cg.conv_weight_grad(g, x, weight_shape=(1, 1, 11), padding=5, method="direct")
    np.testing.assert_array_equal(gw, direct)
    assert np.isposinf(gw).all()
