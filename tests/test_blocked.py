"""The window matrix in cache-sized blocks (gemm and grid routes) against the unblocked routes and PyTorch float64.

:data:`convgrad.engine.cost.BLOCK_BYTES` sets the size of one block of the
window matrix; ``0`` turns blocking off (one block per chunk, the routes as
they were). The tests force tiny blocks (a few positions each, so every block
boundary, sample boundary and halo is crossed) and compare every contraction
with the unblocked route on the same geometry and with PyTorch's float64
autograd, over 1-d, 2-d and 3-d geometries with strides, dilations, groups and
paddings (negative ones crop).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad._geometry import Geometry, conv_geometry
from convgrad.engine import cost, dispatch, gemm, grid, implicit, jit, state

Array = np.ndarray
Contraction = Callable[[Array, Array, Geometry], Array]
GEMM: dict[str, Contraction] = {
    "forward": gemm.gemm_forward, "input": gemm.gemm_input_grad, "weight": gemm.gemm_weight_grad,
}
GRID: dict[str, Contraction] = {
    "forward": grid.grid_forward, "input": grid.grid_input_grad, "weight": grid.grid_weight_grad,
}
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


@pytest.fixture(autouse=True)
def _numpy_routes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The blocked NumPy routes only (the compiled ones and the implicit one, which has no blocks of windows, have
    their own tests); caches emptied around each test."""
    monkeypatch.setattr(jit, "choose", lambda *args, **kwargs: None)
    monkeypatch.setattr(jit, "choose_direct", lambda *args, **kwargs: None)
    monkeypatch.setattr(implicit, "choose", lambda *args, **kwargs: None)
    state.clear_caches()
    yield
    state.clear_caches()


@contextlib.contextmanager
def _blocks(block_bytes: int, min_positions: int) -> Iterator[None]:
    """The routes use blocks of ``block_bytes`` (at least ``min_positions`` positions) inside the block."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cost, "BLOCK_BYTES", block_bytes)
        mp.setattr(cost, "MIN_BLOCK_POSITIONS", min_positions)
        yield


@st.composite
def geometries(draw: st.DrawFn, stride_one: bool = False) -> tuple[Geometry, tuple[int, ...], tuple[int, ...]]:
    """A geometry with its ``x`` and ``w`` shapes: 1-3 dims, groups, strides, dilations, crops and paddings."""
    d = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    n = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(d))
    stride = tuple(1 if stride_one else draw(st.integers(1, 3)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(d))
    lo = tuple(draw(st.integers(-1, 2)) for _ in range(d))
    hi = tuple(draw(st.integers(-1, 2)) for _ in range(d))
    size = tuple(
        max(1, (k - 1) * dl + 1 - a - b) + draw(st.integers(0, 6 if d < 3 else 3))
        for k, dl, a, b in zip(kernel, dilation, lo, hi)
    )
    x_shape, w_shape = (n, c_in) + size, (c_out, c_in // groups) + kernel
    geom = conv_geometry(x_shape, w_shape, stride=stride, dilation=dilation, groups=groups,
                         padding=tuple(zip(lo, hi)))
    return geom, x_shape, w_shape


def _torch(geom: Geometry, x: Array, w: Array, g: Array) -> tuple[Array, Array, Array]:
    """``y``, ``gx``, ``gw`` by PyTorch float64 autograd (the padding, crops included, through ``F.pad``)."""
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    pads: list[int] = []
    for a, b in zip(reversed(geom.pad_lo), reversed(geom.pad_hi)):
        pads += [a, b]
    yt = _CONV[geom.d](F.pad(xt, pads), wt, stride=geom.stride, dilation=geom.dilation, groups=geom.groups)
    gx, gw = torch.autograd.grad(yt, (xt, wt), torch.tensor(g, dtype=torch.float64))
    return yt.detach().numpy(), gx.numpy(), gw.numpy()


def _run_all(routes: dict[str, Contraction], geom: Geometry, x: Array, w: Array, g: Array) -> list[Array]:
    return [routes["forward"](x, w, geom), routes["input"](g, w, geom), routes["weight"](g, x, geom)]


def _data(geom: Geometry, x_shape: tuple[int, ...], w_shape: tuple[int, ...], seed: int,
          dtype: Any = np.float64) -> tuple[Array, Array, Array]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    g = rng.standard_normal((x_shape[0], w_shape[0]) + geom.out_size).astype(dtype)
    return x, w, g


def _close(a: Array, b: Array, rtol: float = 1e-10) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


@settings(max_examples=60, deadline=None)
@given(geometries(), st.integers(1, 5), st.integers(0, 2**16))
def test_gemm_blocks_match_unblocked_and_torch(case: Any, positions: int, seed: int) -> None:
    geom, x_shape, w_shape = case
    x, w, g = _data(geom, x_shape, w_shape, seed)
    with _blocks(0, 1):
        whole = _run_all(GEMM, geom, x, w, g)
    with _blocks(1, positions):  # blocks of `positions` output positions
        blocked = _run_all(GEMM, geom, x, w, g)
    for a, b, ref in zip(blocked, whole, _torch(geom, x, w, g)):
        _close(a, b)
        _close(a, ref)


@settings(max_examples=60, deadline=None)
@given(geometries(stride_one=True), st.integers(1, 7), st.integers(0, 2**16))
def test_grid_blocks_match_unblocked_and_torch(case: Any, positions: int, seed: int) -> None:
    geom, x_shape, w_shape = case
    x, w, g = _data(geom, x_shape, w_shape, seed)
    with _blocks(0, 1):
        whole = _run_all(GRID, geom, x, w, g)
    with _blocks(1, positions):
        blocked = _run_all(GRID, geom, x, w, g)
    for a, b, ref in zip(blocked, whole, _torch(geom, x, w, g)):
        _close(a, b)
        _close(a, ref)


@pytest.mark.parametrize("routes", [GEMM, GRID], ids=["gemm", "grid"])
@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_integer_and_bool_data_stay_exact_in_blocks(routes: dict[str, Contraction], dtype: Any) -> None:
    geom = conv_geometry((3, 4, 9, 10), (6, 2, 3, 2), padding=1, groups=2)
    rng = np.random.default_rng(5)
    x = rng.integers(-3, 4, (3, 4, 9, 10)).astype(dtype)
    w = rng.integers(-3, 4, (6, 2, 3, 2)).astype(dtype)
    g = rng.integers(-3, 4, (3, 6) + geom.out_size).astype(dtype)
    with _blocks(0, 1):
        whole = _run_all(routes, geom, x, w, g)
    with _blocks(1, 7):
        blocked = _run_all(routes, geom, x, w, g)
    for a, b in zip(blocked, whole):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("routes", [GEMM, GRID], ids=["gemm", "grid"])
def test_nan_and_inf_land_where_the_unblocked_route_puts_them(routes: dict[str, Contraction]) -> None:
    """A NaN in ``x`` and an infinity in ``w``: the junk columns of a block must not spread them."""
    geom = conv_geometry((2, 3, 8, 9), (4, 3, 3, 3), padding=1)
    x, w, g = _data(geom, (2, 3, 8, 9), (4, 3, 3, 3), 7)
    x[0, 1, 2, 8] = np.nan
    x[1, 0, 7, 0] = np.inf
    w[2, 1, 0, 2] = -np.inf
    with np.errstate(invalid="ignore"):
        with _blocks(0, 1):
            whole = _run_all(routes, geom, x, w, g)
        with _blocks(1, 5):
            blocked = _run_all(routes, geom, x, w, g)
    for a, b in zip(blocked, whole):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_array_equal(np.isinf(a), np.isinf(b))
        finite = np.isfinite(b)
        _close(a[finite], b[finite])


def test_block_positions_follow_the_block_size_and_the_budget() -> None:
    geom = conv_geometry((8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)
    position = cost.gemm_position_bytes(geom, 4)
    assert cost.block_positions(geom, 4, 256 << 20) == max(cost.MIN_BLOCK_POSITIONS, cost.BLOCK_BYTES // position)
    assert cost.block_positions(geom, 4, 10 * position) == 10  # never over the budget
    assert cost.block_positions(geom, 4, 1) == 1  # one position is the floor
    with _blocks(0, 1):
        assert cost.block_positions(geom, 4, 256 << 20) == (256 << 20) // position


@pytest.mark.parametrize("budget", [64 * 1024, 1 << 20])
def test_blocks_keep_to_a_small_budget(budget: int) -> None:
    """A block never asks for more scratch than the budget (the scratch buffer is the measure)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 16, 40, 40))
    w = rng.standard_normal((8, 16, 3, 3))
    expected = [cg.conv(x, w, padding=1), *cg.conv_backward(np.ones((2, 8, 40, 40)), x, w, padding=1)]
    for method in ("direct", "auto"):
        cg.release_workspace()
        with cg.workspace_budget(budget):
            got = [cg.conv(x, w, padding=1, method=method),
                   *cg.conv_backward(np.ones((2, 8, 40, 40)), x, w, padding=1, method=method)]
            held = cg.release_workspace()
        assert held <= budget
        for a, b in zip(got, expected):
            _close(a, b)


def test_the_dispatcher_still_picks_grid_and_gemm() -> None:
    """Blocking changes how a route runs, not which route runs (the implicit route, which has no window matrix to
    block, is out of these tests)."""
    f32 = np.dtype(np.float32)
    conv3d = conv_geometry((2, 16, 16, 32, 32), (32, 16, 3, 3, 3), padding=1)
    first = conv_geometry((8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)
    assert dispatch.route(conv3d, f32, "direct", "forward") == "grid"
    assert dispatch.route(first, f32, "direct", "forward") == "gemm"
