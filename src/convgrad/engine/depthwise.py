"""The depthwise route's input gradient for layers the grid does not take (strided ones): ``groups == C == O > 1``.

A multiply-accumulate over the kernel offsets, plane by plane in cache-sized
blocks; no GEMM and no fold. At stride 1 all three contractions take the same
multiply-adds on whole rows of the flattened grid
(:func:`convgrad.engine.grid.grid_depthwise_forward` and its two gradients).
The forward pass of a strided layer takes the gemm route's batched GEMV over
the window matrix: plane by plane, it measured 1.3–1.7× *slower* than that."""

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

BLOCK_BYTES = 1536 * 1024
"""Target size of one depthwise block: the rows it reads and writes and its temporary, about three-quarters of a
core's 2 MiB L2 cache. Measured (float32, 2 threads, N=8, 3×3; ms for 0.5 / 1 / 1.5 / 2 MiB): the stride-2 input
gradient of 128 channels at 56², 9.8 / 8.0 / 7.7 / 8.2 (15.3–16.6 with the 256 KiB blocks used before); the
forward pass on the grid of 128 channels at 56², 22.6 / 16.5 / 15.9 / 16.7, and of 256 channels at 28², 6.8 / 5.0 /
4.5 / 4.8."""


def row_blocks(r0: int, r1: int, row_bytes: int) -> Iterator[tuple[int, int]]:
    """``[a, b)`` ranges of rows ``[r0, r1)`` (planes, or channels of the grid) of about :data:`BLOCK_BYTES` each."""
    step = block_rows(row_bytes)
    for a in range(r0, r1, step):
        yield a, min(r1, a + step)


def block_rows(row_bytes: int) -> int:
    """Rows in one block of :func:`row_blocks` (at least one)."""
    return max(1, BLOCK_BYTES // max(1, row_bytes))


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
        tmp = np.empty((min(b - a, block_rows(plane_bytes)),) + geom.out_size, dtype=dtype)
        for p0, p1 in row_blocks(a, b, plane_bytes):
            tb = tmp[: p1 - p0]
            for i, (_, sl) in enumerate(taps(geom)):
                np.multiply(gp[p0:p1], wp[p0:p1, i].reshape((p1 - p0,) + (1,) * d), out=tb)
                gxp[(slice(p0, p1),) + sl] += tb

    split_run(planes, planes * prod(geom.kernel) * prod(geom.out_size), work)
    return np.ascontiguousarray(pad_adjoint(gxp.reshape((n, geom.c_in) + geom.padded_size), geom))
