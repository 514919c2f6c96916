"""Integer and bool inputs give exact results on every route ``method="auto"`` picks.

The results are float64 (as for every integer input), and every entry is the
exact integer sum: integer data is never sent to the FFT, whose rounding would
leave most outputs a little off an integer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import convgrad as cg
from convgrad._geometry import conv_geometry
from convgrad.engine import dispatch
from reference import ref_conv, ref_conv_grads


def test_the_reported_large_integer_kernel_is_exact() -> None:
    """x (8, 16, 4096), w (16, 16, 63), padding 31: the cost model would pick the FFT for floats."""
    rng = np.random.default_rng(0)
    x = rng.integers(-50, 50, (8, 16, 4096))
    w = rng.integers(-50, 50, (16, 16, 63))
    geom = conv_geometry(x.shape, w.shape, padding=31)
    assert dispatch.route(geom, np.dtype(np.float64), "auto", "forward") == "fft"  # for float data
    y = cg.conv(x, w, padding=31)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, np.round(y))
    exact = cg.conv(x.astype(np.float64), w.astype(np.float64), padding=31, method="direct")
    np.testing.assert_array_equal(y, exact)
    g = rng.integers(-3, 4, y.shape)
    grads = cg.conv_backward(g, x, w, padding=31)
    for a in grads:
        np.testing.assert_array_equal(a, np.round(a))


CASES: list[tuple[str, tuple[int, ...], tuple[int, ...], dict[str, Any]]] = [
    ("gemm", (2, 3, 9, 8), (4, 3, 3, 3), {"stride": 2, "padding": 1}),
    ("grid", (3, 8, 24, 24), (8, 8, 3, 3), {"padding": 1}),
    ("pointwise", (2, 4, 6, 5), (3, 4, 1, 1), {"stride": 2}),
    ("depthwise", (2, 6, 20, 20), (6, 1, 3, 3), {"groups": 6, "padding": 1}),
    ("depthwise strided", (2, 6, 20, 20), (6, 1, 3, 3), {"groups": 6, "padding": 1, "stride": 2}),
    ("large kernel 1-d", (4, 8, 600), (8, 8, 41), {"padding": 20}),
    ("large kernel 2-d", (2, 4, 40, 40), (4, 4, 15, 15), {"padding": 7}),
    ("reflect", (2, 3, 12, 12), (2, 3, 3, 3), {"padding": 2, "padding_mode": "reflect"}),
]


@pytest.mark.parametrize(("name", "x_shape", "w_shape", "kw"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.int16, np.bool_])
def test_integer_inputs_are_exact_on_every_route(
    name: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...], kw: dict[str, Any], dtype: Any
) -> None:
    rng = np.random.default_rng(1)
    high = 2 if dtype == np.bool_ else 9
    x = rng.integers(0, high, x_shape).astype(dtype)
    w = rng.integers(0, high, w_shape).astype(dtype)
    y = cg.conv(x, w, **kw)
    g = rng.integers(0, high, y.shape).astype(dtype)
    grads = cg.conv_backward(g, x, w, **kw)
    assert all(a.dtype == np.float64 for a in (y, *grads))
    x64, w64, g64 = (a.astype(np.int64) for a in (x, w, g))
    exact = cg.conv(x64.astype(np.float64), w64.astype(np.float64), **kw, method="direct")
    np.testing.assert_array_equal(y, exact)
    exact_grads = cg.conv_backward(g64.astype(np.float64), x64.astype(np.float64), w64.astype(np.float64), **kw,
                                   method="direct")
    for ours, ref in zip(grads, exact_grads):
        np.testing.assert_array_equal(ours, ref)
    if np.prod(x_shape) * np.prod(w_shape[1:]) < 20_000:  # the loop reference, exact in int64 (small cases)
        d, p = len(w_shape) - 2, kw.get("padding", 0)
        ref_kw: dict[str, Any] = dict(stride=(kw.get("stride", 1),) * d, lo=(p,) * d, hi=(p,) * d, dilation=(1,) * d,
                                      groups=kw.get("groups", 1), mode=kw.get("padding_mode", "zeros"))
        np.testing.assert_array_equal(y, ref_conv(x64, w64, None, **ref_kw))
        for ours, ref in zip(grads, ref_conv_grads(g64, x64, w64, **ref_kw)):
            np.testing.assert_array_equal(ours, ref)


def test_transposed_and_double_backward_integers_are_exact() -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(-9, 10, (4, 8, 300))
    w = rng.integers(-9, 10, (8, 8, 31))
    y = cg.conv_transpose(x, w, stride=2, padding=3)
    np.testing.assert_array_equal(y, cg.conv_transpose(x * 1.0, w * 1.0, stride=2, padding=3, method="direct"))
    g = rng.integers(-9, 10, y.shape)
    for a, b in zip(cg.conv_transpose_backward(g, x, w, stride=2, padding=3),
                    cg.conv_transpose_backward(g * 1.0, x * 1.0, w * 1.0, stride=2, padding=3, method="direct")):
        np.testing.assert_array_equal(a, b)
