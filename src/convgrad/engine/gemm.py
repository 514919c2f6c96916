"""The general route: im2col + one GEMM per group, for any geometry.

One chunk of ``nb`` samples at a time, ``m = (n, q)`` running over ``nb·Q``,
``j = (c, k)`` over ``(C/G)·K``::

    cols[γ, j, m] = U[n, γ·C/G + c, q, k]                      (im2col, the one big copy)
    forward       y[γ, o, m]  = Σ_j w[γ, o, j] · cols[γ, j, m]
    weight grad   gw[γ, o, j] = Σ_m g[γ, o, m] · cols[γ, j, m]   (summed as gwᵀ[γ, j, o] if O/G < 256)
    input grad    Z[γ, j, m]  = Σ_o w[γ, o, j] · g[γ, o, m],  then gx = pad_adjoint(fold(Z))

Each is one GEMM per group whose long side is ``nb·Q``; these orientations
measured fastest with OpenBLAS (the weight gradient's depends on the layer's
width, :data:`WIDE_OUTPUT`). The forward result is written with
``m = (n, q)`` last, so putting it in place is one contiguous copy per
``(n, o)`` row (first layer N=8 3→64 224² k7 s2: 135 -> 66 ms for the forward
pass against the transposed product).

The window matrix of a chunk is the route's workspace, ``C·K·Q`` elements per
sample. Chunks hold as many samples as one *block* allows: about
:data:`~convgrad.engine.cost.BLOCK_BYTES` of windows
(:func:`~convgrad.engine.cost.block_positions`, never more than the budget),
so that each block is copied and consumed by its GEMM while it is still in
the cache (the first layer N=8 3→64 224² k7 s2, per contraction, from 27 /
36 / 31 ms to 23 / 27 / 25 ms, forward / input / weight). A single sample
that does not fit in a block is split over its output positions (rows of the
first spatial dimension, then of the next, ...), each piece a convolution of a
slice of the padded input. One output position's windows, ``C·K`` elements (fewer
than the weight has), are the floor: a smaller budget still gets pieces of one
output position.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry, prod
from .cost import block_positions, gemm_position_bytes, gemm_sample_bytes
from .padding import pad, pad_adjoint
from .state import batch_chunks, get_workspace_budget, scratch
from .windows import fold, im2col

Array = npt.NDArray[Any]


def _cols(xp: Array, geom: Geometry, dtype: np.dtype[Any]) -> Array:
    """im2col of a chunk into the workspace, viewed as ``(G, (C/G)·K, nb·Q)`` matrices."""
    nb = xp.shape[0]
    cols = scratch((geom.c_in,) + geom.kernel + (nb,) + geom.out_size, dtype)
    im2col(xp, geom, cols)
    return cols.reshape(geom.groups, -1, nb * prod(geom.out_size))


def _weight_matrices(w: Array, geom: Geometry) -> Array:
    """``w (O, C/G, *K)`` -> ``(G, O/G, (C/G)·K)``, a view."""
    return w.reshape(geom.groups, geom.c_out // geom.groups, -1)


def channel_rows(a: Array, groups: int) -> Array:
    """``a (nb, channels, *Q)`` -> ``(G, channels/G, nb·Q)``, each group's rows contiguous (a copy, except for one
    sample already laid out so)."""
    nb, per_group, q = a.shape[0], a.shape[1] // groups, prod(a.shape[2:])
    rows = a.reshape(nb, groups, per_group, q).transpose(1, 2, 0, 3)
    return np.ascontiguousarray(rows).reshape(groups, per_group, nb * q)


# ----------------------------------------------------------------------------- splitting one sample


Piece = tuple[Geometry, tuple[slice, ...], tuple[slice, ...]]


def _piece_geometry(geom: Geometry, out_sl: tuple[slice, ...], in_sl: tuple[slice, ...]) -> Geometry:
    """The geometry of one piece: a slice of the padded input, no padding, the outputs ``out_sl``."""
    return Geometry(
        batched=True, n=1, c_in=geom.c_in, c_out=geom.c_out, groups=geom.groups,
        in_size=tuple(sl.stop - sl.start for sl in in_sl), kernel=geom.kernel,
        out_size=tuple(sl.stop - sl.start for sl in out_sl), stride=geom.stride, dilation=geom.dilation,
        pad_lo=(0,) * geom.d, pad_hi=(0,) * geom.d, padding_mode="zeros",
    )


def _pieces(geom: Geometry, itemsize: int, budget: int) -> Iterator[Piece]:
    """Pieces of one sample's output positions whose windows fit in ``budget``: ``(geometry, out, padded in)``."""
    position = gemm_position_bytes(geom, itemsize)

    def split(i: int, out_sl: tuple[slice, ...], in_sl: tuple[slice, ...]) -> Iterator[Piece]:
        rest = position * prod(geom.out_size[i + 1 :])  # one row of dimension i
        rows = max(1, budget // rest)
        s, span, q_i = geom.stride[i], geom.span[i], geom.out_size[i]
        full_out = tuple(slice(0, q) for q in geom.out_size[i + 1 :])
        full_in = tuple(slice(0, p) for p in geom.padded_size[i + 1 :])
        for q0 in range(0, q_i, rows):
            q1 = min(q_i, q0 + rows)
            o, a = out_sl + (slice(q0, q1),), in_sl + (slice(q0 * s, (q1 - 1) * s + span),)
            if rest > budget and i + 1 < geom.d:
                yield from split(i + 1, o, a)
            else:
                yield _piece_geometry(geom, o + full_out, a + full_in), o + full_out, a + full_in

    return split(0, (), ())


def _split_sample(geom: Geometry, dtype: np.dtype[Any], budget: int) -> bool:
    return gemm_sample_bytes(geom, dtype.itemsize) > budget


def _block_budget(geom: Geometry, dtype: np.dtype[Any]) -> int:
    """Bytes of window matrix per chunk or piece: one block (:func:`~.cost.block_positions`), within the budget."""
    return block_positions(geom, dtype.itemsize, get_workspace_budget()) * gemm_position_bytes(geom, dtype.itemsize)


def _spatial(a: Array, sl: tuple[slice, ...]) -> Array:
    return a[(slice(None), slice(None)) + sl]


# ----------------------------------------------------------------------------- the three contractions


def gemm_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``y = conv(x, w)`` by im2col and one GEMM per group and chunk."""
    n, og = x.shape[0], geom.c_out // geom.groups
    dtype = np.result_type(x, w)
    y = np.empty((n, geom.c_out) + geom.out_size, dtype=dtype)
    w_mat = _weight_matrices(w, geom)  # (G, O/G, j)
    budget = _block_budget(geom, dtype)
    if _split_sample(geom, dtype, budget):
        for n0 in range(n):
            xp = pad(x[n0 : n0 + 1], geom)
            for sub, out_sl, in_sl in _pieces(geom, dtype.itemsize, budget):
                y_g = np.matmul(w_mat, _cols(_spatial(xp, in_sl), sub, dtype))  # (G, O/G, Q_piece)
                _spatial(y[n0 : n0 + 1], out_sl)[...] = y_g.reshape((1, geom.c_out) + sub.out_size)
        return y
    for n0, n1 in batch_chunks(n, gemm_sample_bytes(geom, dtype.itemsize), budget):
        nb = n1 - n0
        cols = _cols(pad(x[n0:n1], geom), geom, dtype)
        # (G, O/G, j) @ (G, j, m) -> (G, O/G, m)
        y_g = np.matmul(w_mat, cols).reshape(geom.groups, og, nb, -1)
        # (G, O/G, nb, Q) -> (nb, G, O/G, Q)
        y[n0:n1].reshape(nb, geom.groups, og, -1)[...] = y_g.transpose(2, 0, 1, 3)
    return y


WIDE_OUTPUT = 256
"""Output channels per group from which a weight gradient is accumulated as ``(O/G, j)`` rather than ``(j, O/G)``.

Measured with OpenBLAS on 2 threads, float32, gemm route, narrow → wide orientation: 512→512 7² 26.6 → 10.1 ms
(the final transpose of ``(j, O/G)`` had cost as much as the GEMMs), 256→256 14² 12.0 → 10.3 ms; but
128→128 28² 12.5 → 12.8, 64→128 56² stride 2 8.4 → 9.4, 64→64 56² 15.6 → 17.4, 16→32 conv3d 14.2 → 16.0 ms:
on narrower layers the skinny ``(O/G, m) @ (m, j)`` product is the slower one and the transpose is small.
"""


class WeightSum:
    """``Σ_blocks rows @ colsᵀ``: the weight gradient summed block by block, in the faster orientation.

    ``rows`` is a block of the output gradient, ``(G, O/G, m)``; ``cols`` its windows, ``(G, j, m)``.
    Transposed operands are passed to the BLAS as views, never copied.
    """

    def __init__(self, geom: Geometry, dtype: np.dtype[Any]) -> None:
        og, j = geom.c_out // geom.groups, (geom.c_in // geom.groups) * prod(geom.kernel)
        self.geom = geom
        self.wide = og >= WIDE_OUTPUT
        self.total: Array = np.zeros((geom.groups, og, j) if self.wide else (geom.groups, j, og), dtype=dtype)
        self.part: Array | None = None

    def add(self, rows: Array, cols: Array) -> None:
        """Add ``rows @ colsᵀ`` (one block's products) to the sum."""
        if self.part is None:
            self.part = np.empty_like(self.total)
        if self.wide:
            self.total += np.matmul(rows, cols.swapaxes(1, 2), out=self.part)
        else:
            self.total += np.matmul(cols, rows.swapaxes(1, 2), out=self.part)

    def result(self) -> Array:
        """The sum as a weight, ``(O, C/G, *K)``."""
        gw = self.total if self.wide else np.ascontiguousarray(self.total.swapaxes(1, 2))
        return gw.reshape(self.geom.weight_shape)


def gemm_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``gw[o, c, k] = Σ_{n,q} g[n, o, q] · U[n, c, q, k]`` by im2col and one GEMM per group and chunk."""
    dtype = np.result_type(g, x)
    gw = WeightSum(geom, dtype)
    budget = _block_budget(geom, dtype)
    if _split_sample(geom, dtype, budget):
        for n0 in range(x.shape[0]):
            xp = pad(x[n0 : n0 + 1], geom)
            for sub, out_sl, in_sl in _pieces(geom, dtype.itemsize, budget):
                cols = _cols(_spatial(xp, in_sl), sub, dtype)
                gw.add(channel_rows(_spatial(g[n0 : n0 + 1], out_sl), geom.groups), cols)
    else:
        for n0, n1 in batch_chunks(x.shape[0], gemm_sample_bytes(geom, dtype.itemsize), budget):
            cols = _cols(pad(x[n0:n1], geom), geom, dtype)
            gw.add(channel_rows(g[n0:n1], geom.groups), cols)
    return gw.result()


def _fold_chunk(g: Array, w_t: Array, geom: Geometry, dtype: np.dtype[Any]) -> Array:
    """``fold(wᵀ g)`` of a chunk: ``(nb, C, *P)``, the windows' scatter-add in padded coordinates."""
    nb = g.shape[0]
    z = scratch((geom.c_in,) + geom.kernel + (nb,) + geom.out_size, dtype)
    # (G, j, O/G) @ (G, O/G, m) -> (G, j, m)
    np.matmul(w_t, channel_rows(g, geom.groups), out=z.reshape(geom.groups, -1, nb * prod(geom.out_size)))
    return fold(z, geom)


def gemm_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``gx = pad_adjoint(fold(Z))``, ``Z = wᵀ g`` per group, by one GEMM per group and chunk."""
    n = g.shape[0]
    dtype = np.result_type(g, w)
    gx = np.empty((n, geom.c_in) + geom.in_size, dtype=dtype)
    w_t = _weight_matrices(w, geom).swapaxes(1, 2)  # (G, j, O/G)
    budget = _block_budget(geom, dtype)
    if _split_sample(geom, dtype, budget):
        for n0 in range(n):
            gxp = np.zeros((1, geom.c_in) + geom.padded_size, dtype=dtype)
            for sub, out_sl, in_sl in _pieces(geom, dtype.itemsize, budget):
                _spatial(gxp, in_sl)[...] += _fold_chunk(_spatial(g[n0 : n0 + 1], out_sl), w_t, sub, dtype)
            gx[n0 : n0 + 1] = pad_adjoint(gxp, geom)
        return gx
    for n0, n1 in batch_chunks(n, gemm_sample_bytes(geom, dtype.itemsize), budget):
        gx[n0:n1] = pad_adjoint(_fold_chunk(g[n0:n1], w_t, geom, dtype), geom)
    return gx
