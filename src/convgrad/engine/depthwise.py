"""The depthwise route: one input and one output channel per group (``groups == C == O > 1``).

The input gradient is a multiply-accumulate over the kernel offsets, plane by
plane in cache-sized blocks, or channel by channel on the flattened grid of
:mod:`convgrad.engine.grid` at stride 1; no GEMM and no fold. (The forward
pass went the same way at first and measured 1.3–1.7× *slower* than the gemm
route's batched GEMV over the window matrix, so the forward pass takes that.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry, prod
from .padding import pad_adjoint
from .state import split_run
from .windows import taps

Array = npt.NDArray[Any]

BLOCK_BYTES = 256 * 1024
"""Target size of one depthwise block (input, output and a temporary): a fraction of a core's L2 cache."""


def _plane_blocks(planes: int, plane_bytes: int) -> Iterator[tuple[int, int]]:
    """``[p0, p1)`` ranges of (sample, channel) planes of about :data:`BLOCK_BYTES` each."""
    step = max(1, BLOCK_BYTES // max(1, plane_bytes))
    for p0 in range(0, planes, step):
        yield p0, min(planes, p0 + step)


def depthwise_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``groups == C == O``: ``gx = pad_adjoint(Σ_k scatter_k(w[c, k] · g))``, one offset at a time.

    At stride 1 the dispatcher takes :func:`convgrad.engine.grid.grid_depthwise_input_grad` instead:
    the same multiply-adds on whole contiguous rows of the flattened grid (N=8 128ch 56² k3: 72 -> 43 ms).
    """
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
