"""Fast routes for special geometries, and the rule that picks a route.

Every route computes exactly what the general im2col + GEMM route of
:mod:`convgrad._conv` computes (``forward``, ``input_grad``, ``weight_grad``,
same arguments, same dtypes); only the order of the arithmetic differs.

The rule (:func:`route`), in order:

1. ``"fft"`` — ``method="fft"``, or ``method="auto"`` and the FFT cost model
   of :func:`convgrad._fft.fft_is_cheaper` says so (large kernels).
2. ``"pointwise"`` — every kernel size is 1 and there is no padding: each
   output is a plain matrix product of the channels (strided slice of ``x``
   for stride > 1), no windows at all.
3. ``"depthwise"`` — one input and one output channel per group
   (``groups == C == O > 1``): a multiply-accumulate over the kernel offsets,
   channel by channel, in cache-sized blocks; no GEMM.
4. ``"gemm"`` — everything else: im2col and one GEMM per group and chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ._fft import fft_is_cheaper
from ._padding import pad, pad_adjoint
from ._validate import Geometry, prod
from ._windows import kernel_offsets, taps

Array = npt.NDArray[Any]

METHODS = ("auto", "direct", "fft")
"""``method=`` values: ``"auto"`` (the cost model), ``"direct"`` (never FFT), ``"fft"`` (always FFT)."""

BLOCK_BYTES = 256 * 1024
"""Target size of one depthwise block (input, output and a temporary): a fraction of a core's L2 cache."""


def check_method(method: object) -> str:
    """``method`` must be one of :data:`METHODS`."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    return method


def is_pointwise(geom: Geometry) -> bool:
    """Every kernel size is 1 and nothing is padded."""
    return all(k == 1 for k in geom.kernel) and not geom.has_padding


def is_depthwise(geom: Geometry) -> bool:
    """One input and one output channel per group, and more than one group: ``groups == C == O > 1``.

    (A single channel is one GEMV, which the general route does with less Python overhead.)
    """
    return geom.c_in == geom.c_out == geom.groups > 1


def route(geom: Geometry, dtype: np.dtype[Any], method: str = "auto") -> str:
    """The route for one contraction: ``"fft"``, ``"pointwise"``, ``"depthwise"`` or ``"gemm"``."""
    if method == "fft" or (method == "auto" and fft_is_cheaper(geom, dtype)):
        return "fft"
    if is_pointwise(geom):
        return "pointwise"
    if is_depthwise(geom):
        return "depthwise"
    return "gemm"


# ----------------------------------------------------------------------------- pointwise: a GEMM per sample


def _strided_input(x: Array, geom: Geometry) -> Array:
    """``x[n, γ, c, q] = x[n, γ·C/G + c, q·s]`` as a contiguous ``(nb, G, C/G, Q)`` array."""
    taps = tuple(slice(0, (q - 1) * s + 1, s) for q, s in zip(geom.out_size, geom.stride))
    xs = np.ascontiguousarray(x[(slice(None), slice(None)) + taps])
    return xs.reshape(x.shape[0], geom.groups, geom.c_in // geom.groups, prod(geom.out_size))


def _grouped(a: Array, geom: Geometry, channels: int) -> Array:
    """``(nb, channels, *Q)`` -> ``(nb, G, channels / G, Q)``."""
    return a.reshape(a.shape[0], geom.groups, channels // geom.groups, prod(geom.out_size))


def pointwise_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """1×1 kernel, no padding: ``y[n, o, q] = Σ_c w[o, c] · x[n, c, q·s]``."""
    # (G, O/G, C/G) @ (nb, G, C/G, Q) -> (nb, G, O/G, Q)
    y: Array = np.matmul(w.reshape(geom.groups, geom.c_out // geom.groups, -1), _strided_input(x, geom))
    return y.reshape((x.shape[0], geom.c_out) + geom.out_size)


def pointwise_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """1×1 kernel, no padding: ``gw[o, c] = Σ_{n,q} g[n, o, q] · x[n, c, q·s]``."""
    # (nb, G, O/G, Q) @ (nb, G, Q, C/G) -> (nb, G, O/G, C/G), summed over nb
    gw: Array = np.matmul(_grouped(g, geom, geom.c_out), _strided_input(x, geom).swapaxes(-1, -2)).sum(axis=0)
    return gw.reshape(geom.weight_shape)


def pointwise_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """1×1 kernel, no padding: ``gx[n, c, q·s] = Σ_o w[o, c] · g[n, o, q]``, zero between strides."""
    n = g.shape[0]
    w_t = w.reshape(geom.groups, geom.c_out // geom.groups, -1).swapaxes(1, 2)
    # (G, C/G, O/G) @ (nb, G, O/G, Q) -> (nb, G, C/G, Q)
    gxs: Array = np.matmul(w_t, _grouped(g, geom, geom.c_out)).reshape((n, geom.c_in) + geom.out_size)
    if geom.out_size == geom.in_size:
        return gxs
    gx = np.zeros((n, geom.c_in) + geom.in_size, dtype=gxs.dtype)
    taps = tuple(slice(0, (q - 1) * s + 1, s) for q, s in zip(geom.out_size, geom.stride))
    gx[(slice(None), slice(None)) + taps] = gxs
    return gx


# ----------------------------------------------------------------------------- depthwise: multiply-accumulate


def _plane_blocks(planes: int, plane_bytes: int) -> Iterator[tuple[int, int]]:
    """``[p0, p1)`` ranges of (sample, channel) planes of about :data:`BLOCK_BYTES` each."""
    step = max(1, BLOCK_BYTES // max(1, plane_bytes))
    for p0 in range(0, planes, step):
        yield p0, min(planes, p0 + step)


def _planes(a: Array) -> Array:
    """``(nb, C, *S)`` -> ``(nb·C, *S)`` (a view when possible)."""
    return a.reshape((-1,) + a.shape[2:])


def _plane_weights(w: Array, n: int, geom: Geometry) -> Array:
    """``w (C, 1, *K)`` -> ``(nb·C, K)``: each plane's kernel, as a column per offset."""
    return np.tile(w.reshape(geom.c_out, -1), (n, 1))


def _column(wp: Array, p0: int, p1: int, i: int, d: int) -> Array:
    """Offset ``i``'s weight for planes ``p0..p1``, shaped to broadcast over ``d`` spatial axes."""
    return wp[p0:p1, i].reshape((p1 - p0,) + (1,) * d)


def depthwise_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``groups == C == O``: ``y[n, c, q] = Σ_k w[c, k] · pad(x)[n, c, q·s + k·δ]``, one offset at a time."""
    n, d = x.shape[0], geom.d
    dtype = np.result_type(x, w)
    xp = _planes(pad(x, geom))
    wp = _plane_weights(w, n, geom)
    y = np.empty((n * geom.c_out,) + geom.out_size, dtype=dtype)
    plane_bytes = (prod(geom.padded_size) + 2 * prod(geom.out_size)) * dtype.itemsize
    tmp = np.empty_like(y[: BLOCK_BYTES // max(1, plane_bytes) + 1])
    for p0, p1 in _plane_blocks(n * geom.c_out, plane_bytes):
        yb, tb = y[p0:p1], tmp[: p1 - p0]
        for i, (_, sl) in enumerate(taps(geom)):
            src = xp[(slice(p0, p1),) + sl]
            if i == 0:
                np.multiply(src, _column(wp, p0, p1, i, d), out=yb)
            else:
                np.multiply(src, _column(wp, p0, p1, i, d), out=tb)
                yb += tb
    return y.reshape((n, geom.c_out) + geom.out_size)


def depthwise_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``groups == C == O``: ``gw[c, k] = Σ_{n,q} g[n, c, q] · pad(x)[n, c, q·s + k·δ]``."""
    n = x.shape[0]
    dtype = np.result_type(g, x)
    xp = _planes(pad(x, geom))
    gp = _planes(g)
    offsets = kernel_offsets(geom)
    gw = np.empty((n * geom.c_out, len(offsets)), dtype=dtype)
    plane_bytes = (prod(geom.padded_size) + 2 * prod(geom.out_size)) * dtype.itemsize
    tmp = np.empty((BLOCK_BYTES // max(1, plane_bytes) + 1,) + geom.out_size, dtype=dtype)
    for p0, p1 in _plane_blocks(n * geom.c_out, plane_bytes):
        gb, tb = gp[p0:p1], tmp[: p1 - p0]
        for i, (_, sl) in enumerate(taps(geom)):
            np.multiply(gb, xp[(slice(p0, p1),) + sl], out=tb)
            gw[p0:p1, i] = tb.reshape(p1 - p0, -1).sum(axis=1)
    total: Array = gw.reshape((n, geom.c_out, len(offsets))).sum(axis=0)
    return total.reshape(geom.weight_shape)


def depthwise_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``groups == C == O``: ``gx = pad_adjoint(Σ_k scatter_k(w[c, k] · g))``, one offset at a time."""
    n, d = g.shape[0], geom.d
    dtype = np.result_type(g, w)
    gp = _planes(g)
    wp = _plane_weights(w, n, geom)
    gxp = np.zeros((n * geom.c_in,) + geom.padded_size, dtype=dtype)
    plane_bytes = (prod(geom.padded_size) + 2 * prod(geom.out_size)) * dtype.itemsize
    tmp = np.empty((BLOCK_BYTES // max(1, plane_bytes) + 1,) + geom.out_size, dtype=dtype)
    for p0, p1 in _plane_blocks(n * geom.c_in, plane_bytes):
        gb, tb = gp[p0:p1], tmp[: p1 - p0]
        for i, (_, sl) in enumerate(taps(geom)):
            np.multiply(gb, _column(wp, p0, p1, i, d), out=tb)
            gxp[(slice(p0, p1),) + sl] += tb
    return np.ascontiguousarray(pad_adjoint(gxp.reshape((n, geom.c_in) + geom.padded_size), geom))
