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
   (``groups == C == O > 1``), input gradient, and weight gradient where the
   grid route applies: the input gradient is a multiply-accumulate over the
   kernel offsets, plane by plane in cache-sized blocks, or channel by channel
   on the flattened grid of :mod:`convgrad._grid` at stride 1; the weight
   gradient one dot product of contiguous grid rows per (channel, offset)
   (N=8 128ch 56² k3: 33 -> 22 ms). No GEMM and no fold. (The forward pass
   went the same way at first, and measured 1.3–1.7× *slower* than the
   general route's batched GEMV over the im2col matrix, so it uses that; so
   did a channels-last variant, whose two transposes alone cost as much as
   the GEMV.)
4. ``"grid"`` — stride 1 in every dimension, not tiny: im2col and fold on the
   flattened padded grid (:mod:`convgrad._grid`), where every kernel offset
   is a contiguous shift, then one GEMM per group and chunk.
5. ``"gemm"`` — everything else: im2col (strided copies) and one GEMM per
   group and chunk.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ._config import split_run
from ._fft import fft_is_cheaper
from ._grid import grid_depthwise_input_grad, use_grid
from ._padding import pad_adjoint
from ._validate import Geometry, prod
from ._windows import taps, window_starts

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


@functools.lru_cache(maxsize=512)
def route(geom: Geometry, dtype: np.dtype[Any], method: str = "auto", op: str = "forward") -> str:
    """The route for one contraction ``op`` (``"forward"``, ``"input"`` or ``"weight"``), remembered per geometry.

    Returns ``"fft"``, ``"pointwise"``, ``"depthwise"`` (gradients only), ``"grid"`` or ``"gemm"``.
    """
    if method == "fft" or (method == "auto" and fft_is_cheaper(geom, dtype)):
        return "fft"
    if is_pointwise(geom):
        return "pointwise"
    if is_depthwise(geom) and (op == "input" or (op == "weight" and use_grid(geom))):
        return "depthwise"
    if use_grid(geom):
        return "grid"
    return "gemm"


# ----------------------------------------------------------------------------- pointwise: a GEMM per sample


def _strided_input(x: Array, geom: Geometry) -> Array:
    """``x[n, γ, c, q] = x[n, γ·C/G + c, q·s]`` as a contiguous ``(nb, G, C/G, Q)`` array."""
    xs = np.ascontiguousarray(x[(slice(None), slice(None)) + window_starts(geom)])
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
    gx[(slice(None), slice(None)) + window_starts(geom)] = gxs
    return gx


# ----------------------------------------------------------------------------- depthwise input gradient: multiply-add
#
# Each (sample, channel) plane of the padded input gradient receives one scaled copy of the plane of
# g per kernel offset. Planes are processed in blocks that stay in cache, the blocks split over the
# cores (NumPy releases the GIL in the multiplies and adds).


def _plane_blocks(planes: int, plane_bytes: int) -> Iterator[tuple[int, int]]:
    """``[p0, p1)`` ranges of (sample, channel) planes of about :data:`BLOCK_BYTES` each."""
    step = max(1, BLOCK_BYTES // max(1, plane_bytes))
    for p0 in range(0, planes, step):
        yield p0, min(planes, p0 + step)


def depthwise_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``groups == C == O``: ``gx = pad_adjoint(Σ_k scatter_k(w[c, k] · g))``, one offset at a time.

    Where the grid route applies (stride 1, not tiny) the same multiply-adds run on the flattened grid
    (:func:`convgrad._grid.grid_depthwise_input_grad`): whole contiguous rows instead of short rows of
    one plane (N=8 128ch 56² k3: 72 -> 43 ms).
    """
    if use_grid(geom):
        return grid_depthwise_input_grad(g, w, geom)
    n, d = g.shape[0], geom.d
    dtype = np.result_type(g, w)
    planes = n * geom.c_in
    gp = g.reshape((planes,) + geom.out_size)
    wp = np.tile(w.reshape(geom.c_out, -1), (n, 1))  # (nb·C, K): each plane's kernel
    gxp = np.zeros((planes,) + geom.padded_size, dtype=dtype)
    plane_bytes = (prod(geom.padded_size) + 2 * prod(geom.out_size)) * dtype.itemsize

    def work(a: int, b: int) -> None:
        tmp = np.empty((BLOCK_BYTES // plane_bytes + 1,) + geom.out_size, dtype=dtype)
        for p0, p1 in _plane_blocks(b - a, plane_bytes):
            p0, p1 = a + p0, a + p1
            tb = tmp[: p1 - p0]
            for i, (_, sl) in enumerate(taps(geom)):
                np.multiply(gp[p0:p1], wp[p0:p1, i].reshape((p1 - p0,) + (1,) * d), out=tb)
                gxp[(slice(p0, p1),) + sl] += tb

    split_run(planes, planes * prod(geom.kernel) * prod(geom.out_size), work)
    return np.ascontiguousarray(pad_adjoint(gxp.reshape((n, geom.c_in) + geom.padded_size), geom))
