"""The workspace budget holds on every route, for any shape (peak memory measured with tracemalloc).

NumPy reports its allocations to :mod:`tracemalloc`, so the peak of a call is
the scratch memory it used plus its results and copies of its inputs. Each
test bounds that peak by the budget plus a small multiple of the sizes of the
call's own arrays — never by the window matrix (``C·K·Q``) or the padded grid
(``C·K·P``) that made the shapes below ask for gigabytes.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import convgrad as cg
from convgrad._geometry import conv_geometry
from convgrad.engine import dispatch, implicit, state

MiB = 1 << 20


def _peak(call: Callable[[], Any]) -> tuple[int, Any]:
    """Peak traced bytes during ``call()``, the thread's scratch buffer released first."""
    cg.release_workspace()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = call()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()
        cg.release_workspace()


def _nbytes(*arrays: np.ndarray) -> int:
    return sum(a.nbytes for a in arrays)


def test_a_kernel_as_large_as_the_input_is_one_window_not_the_grid() -> None:
    """x (1,1,300,300) with w (1,1,300,300): one output, 90,000 taps (the grid route asked for 60 GiB)."""
    x, w = np.ones((1, 1, 300, 300)), np.ones((1, 1, 300, 300))
    peak, y = _peak(lambda: cg.conv(x, w))
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 90_000
    assert peak < 4 * _nbytes(x) + MiB
    peak, grads = _peak(lambda: cg.conv_backward(np.ones((1, 1, 1, 1)), x, w))
    assert grads.input.sum() == 90_000 and grads.weight.sum() == 90_000
    assert peak < 6 * _nbytes(x) + MiB


@pytest.mark.parametrize("method", ["auto", "direct"])
def test_a_3d_layer_with_a_kernel_as_large_as_its_input(method: str) -> None:
    """x (2,16,33,33,33), w (1,16,33,33,33): MemoryError for 154 GiB before; now one window per sample."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 16, 33, 33, 33)).astype(np.float32)
    w = rng.standard_normal((1, 16, 33, 33, 33)).astype(np.float32)
    peak, y = _peak(lambda: cg.conv(x, w, method=method))
    ref = F.conv3d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-2)
    assert peak < 3 * _nbytes(x) + 4 * MiB
    g = np.ones(y.shape, np.float32)
    peak, grads = _peak(lambda: cg.conv_backward(g, x, w, method=method))
    assert grads.input.shape == x.shape and grads.weight.shape == w.shape
    assert peak < 6 * _nbytes(x) + 4 * MiB


def test_many_filters_as_large_as_the_input_do_not_take_the_grid() -> None:
    """x (32,1,64,64), w (32,1,62,62): 9 outputs per plane over 4,096 padded positions; and the same filters
    depthwise, over 32 channels, do not take the depthwise route's phase grid either."""
    dense = conv_geometry((32, 1, 64, 64), (32, 1, 62, 62))
    depthwise = conv_geometry((32, 32, 64, 64), (32, 1, 62, 62), groups=32)
    for geom in (dense, depthwise):
        for op in ("forward", "input", "weight"):
            assert dispatch.route(geom, np.dtype(np.float32), "auto", op) not in ("grid", "depthwise")


@pytest.mark.parametrize("budget", [64 * 1024, MiB])
def test_a_single_sample_larger_than_the_budget_is_split_over_output_positions(budget: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 16, 64, 64))
    w = rng.standard_normal((8, 16, 5, 5))
    kw: dict[str, Any] = {"padding": 2, "stride": (1, 2), "method": "direct"}
    expected = [cg.conv(x, w, **kw), *cg.conv_backward(np.ones((2, 8, 64, 32)), x, w, **kw)]
    assert 16 * 25 * 64 * 32 * 8 > budget  # one sample's windows do not fit
    with cg.workspace_budget(budget):
        peak_f, y = _peak(lambda: cg.conv(x, w, **kw))
        peak_b, grads = _peak(lambda: cg.conv_backward(np.ones((2, 8, 64, 32)), x, w, **kw))
    for ours, ref in zip((y, *grads), expected):
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-10)
    own = _nbytes(x, w, y)
    assert peak_f < budget + 3 * own + MiB
    assert peak_b < budget + 4 * own + MiB


def test_the_fft_weight_gradient_keeps_to_the_budget() -> None:
    """x (2,64,48,48), w (64,64,15,15), method="fft", 16 MiB: the spectra no longer grow with O·C·F unbounded."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 64, 48, 48)).astype(np.float32)
    w_shape = (64, 64, 15, 15)
    g = rng.standard_normal((2, 64, 48, 48)).astype(np.float32)
    budget = 16 * MiB
    with cg.workspace_budget(budget):
        peak, gw = _peak(lambda: cg.conv_weight_grad(g, x, weight_shape=w_shape, padding=7, method="fft"))
    assert peak < budget + 3 * _nbytes(x, g, gw) + 2 * MiB
    ref = torch.nn.grad.conv2d_weight(torch.tensor(x, dtype=torch.float64), w_shape,
                                      torch.tensor(g, dtype=torch.float64), padding=7).numpy()
    np.testing.assert_allclose(gw, ref, rtol=1e-3, atol=1e-2 * float(np.abs(ref).max()))


@pytest.mark.parametrize("n", [8, 96])
def test_the_1x1_weight_gradient_is_one_gemm_not_one_product_per_sample(n: int) -> None:
    """x (N,1024,2,2) float32, 16 MiB: 418 MiB peak for N = 96 before (an (O, C) product per sample)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, 1024, 2, 2)).astype(np.float32)
    g = rng.standard_normal((n, 1024, 2, 2)).astype(np.float32)
    with cg.workspace_budget(16 * MiB):
        peak, gw = _peak(lambda: cg.conv_weight_grad(g, x, weight_shape=(1024, 1024, 1, 1)))
    assert peak < 16 * MiB + 3 * _nbytes(x, g, gw)
    ref = np.einsum("nop,ncp->oc", g.astype(np.float64).reshape(n, 1024, 4), x.astype(np.float64).reshape(n, 1024, 4))
    np.testing.assert_allclose(gw[:, :, 0, 0], ref, rtol=1e-4, atol=1e-3)


def test_the_grid_route_is_used_only_where_one_sample_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(implicit, "choose", lambda *args, **kwargs: None)  # (its own budget rule: test_implicit)
    state.clear_caches()
    geom = conv_geometry((1, 64, 128, 128), (64, 64, 3, 3), padding=1)
    f64 = np.dtype(np.float64)
    assert dispatch.route(geom, f64, "direct", "forward") == "grid"
    with cg.workspace_budget(MiB):
        assert dispatch.route(geom, f64, "direct", "forward") == "gemm"
