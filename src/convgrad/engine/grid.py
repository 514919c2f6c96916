"""Stride 1: im2col and fold on the flattened padded grid, where every kernel offset is a plain shift.

Lay the padded input out as ``(C, nb·P)``: channel by channel, the padded
samples flattened one after another (``P = P_1·…·P_d``). With stride 1 the
window tap ``k`` of output position ``q`` is padded position ``q + δ·k``, and
on the flattened grid that is ``m + off(k)`` with ``m`` the flat position of
``q`` and ``off(k) = Σ_i δ_i·k_i·P_{i+1}·…·P_d``: the same shift for every
``m``. So

* im2col is one contiguous block copy per kernel offset,
  ``cols[c, k, m] = grid[c, m + off(k)]``, instead of a strided copy of short rows;
* fold (the input gradient) is one contiguous block add per offset,
  ``gxp[c, m + off(k)] += Z[c, k, m]``.

The price is computing at every grid position ``m`` (``P`` per sample
instead of ``Q``): the positions ``q_i ≥ Q_i`` are junk and dropped from the
output; in the gradients ``g`` is zero there, so they contribute nothing.
A position ``m`` with every ``q_i < Q_i`` only reaches ``m + off(k) ≤`` the
last position of its own sample, so samples never mix.

Each chunk's grid positions are taken in blocks of about
:data:`~convgrad.engine.cost.BLOCK_BYTES` of windows
(:func:`~convgrad.engine.cost.block_positions`): a block's window matrix is
copied into one reused scratch buffer and consumed by its GEMM (or, for the
input gradient, produced by its GEMM and folded) while it is still in the
cache, instead of the whole chunk's matrix going out to memory and back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry, prod
from .cost import block_positions, grid_sample_bytes
from .depthwise import block_rows, row_blocks
from .gemm import WeightSum
from .padding import pad, pad_adjoint
from .state import batch_chunks, cache, get_workspace_budget, scratch, split_run
from .windows import kernel_offsets

Array = npt.NDArray[Any]


@cache(maxsize=128)
def _offsets(geom: Geometry) -> tuple[int, ...]:
    """``off(k)`` for every kernel offset, in C order, computed once per geometry (~12 µs of Python).

    The last, largest one is the room a grid needs after its last sample.
    """
    flat = [prod(geom.padded_size[i + 1 :]) for i in range(geom.d)]
    return tuple(sum(k * dl * f for k, dl, f in zip(ks, geom.dilation, flat)) for ks in kernel_offsets(geom))


def _per_sample_bytes(geom: Geometry, dtype: np.dtype[Any]) -> int:
    return grid_sample_bytes(geom, np.dtype(dtype).itemsize)


def _valid(geom: Geometry) -> tuple[slice, ...]:
    """The grid positions that are outputs: ``q_i < Q_i``."""
    return tuple(slice(0, q) for q in geom.out_size)


def _zero_junk_range(a: Array, geom: Geometry, m0: int, m1: int) -> None:
    """Set the junk positions (some ``q_i ≥ Q_i``) among grid positions ``[m0, m1)`` of ``a (..., m1 − m0)`` to zero.

    Needed only where the junk holds a NaN or an infinity: multiplied by the
    zero of ``g`` there it would give NaN instead of nothing.
    """
    junk = ~_valid_mask(geom, 1)
    p = junk.size
    first, last = m0 // p, -(-m1 // p)
    mask = np.tile(junk, last - first)[m0 - first * p : m1 - first * p]
    a[..., mask] = 0


def _valid_mask(geom: Geometry, nb: int) -> npt.NDArray[np.bool_]:
    """``True`` at the output positions of the flattened grid of ``nb`` samples."""
    mask = np.zeros((nb,) + geom.padded_size, dtype=bool)
    mask[(slice(None),) + _valid(geom)] = True
    return mask.reshape(-1)


def _grid_input(x: Array, geom: Geometry, dtype: np.dtype[Any]) -> Array:
    """``pad(x)`` laid out ``(C, nb·P + tail)``, the tail zero."""
    nb, m = x.shape[0], x.shape[0] * prod(geom.padded_size)
    grid = np.empty((geom.c_in, m + _offsets(geom)[-1]), dtype=dtype)
    grid[:, m:] = 0
    body = grid[:, :m].reshape((geom.c_in, nb) + geom.padded_size)
    if geom.padding_mode == "zeros" and geom.plain_padding:
        body[...] = 0
        inner = tuple(slice(lo, lo + s) for lo, s in zip(geom.pad_lo, geom.in_size))
        body[(slice(None), slice(None)) + inner] = x.swapaxes(0, 1)
    else:
        body[...] = pad(x, geom).swapaxes(0, 1)
    return grid


def _grid_grad(g: Array, geom: Geometry, front: int = 0) -> Array:
    """``g`` on the grid, zero at the junk positions: ``(G, O/G, front + nb·P)``, each row after ``front`` zeros."""
    nb = g.shape[0]
    m = nb * prod(geom.padded_size)
    rows = np.zeros((geom.c_out, front + m), dtype=g.dtype)
    body = rows[:, front:].reshape((geom.c_out, nb) + geom.padded_size)
    body[(slice(None), slice(None)) + _valid(geom)] = g.swapaxes(0, 1)
    return rows.reshape(geom.groups, geom.c_out // geom.groups, -1)


def _cols(grid: Array, geom: Geometry, m0: int, m1: int) -> Array:
    """im2col of grid positions ``[m0, m1)``: ``cols[c, k, m] = grid[c, m0 + m + off(k)]``, as ``(G, (C/G)·K, m)``."""
    offsets = _offsets(geom)
    m = m1 - m0
    cols = scratch((geom.c_in, len(offsets), m), grid.dtype)

    def copy(c0: int, c1: int) -> None:
        for i, off in enumerate(offsets):
            cols[c0:c1, i] = grid[c0:c1, m0 + off : m1 + off]

    split_run(geom.c_in, cols.size, copy)
    return cols.reshape(geom.groups, -1, m)


def _blocks(geom: Geometry, m: int, itemsize: int) -> list[tuple[int, int]]:
    """``[m0, m1)`` ranges of the flattened grid whose window matrix is about :data:`~.cost.BLOCK_BYTES`.

    See :func:`convgrad.engine.cost.block_positions`; the blocks are
    consumed by the GEMM while they are still in the cache.
    """
    step = block_positions(geom, itemsize, get_workspace_budget())
    return [(m0, min(m, m0 + step)) for m0 in range(0, m, step)]


def grid_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``y = conv(x, w)`` at stride 1: grid im2col and one GEMM per group, chunk and block."""
    n, dtype = x.shape[0], np.result_type(x, w)
    y = np.empty((n, geom.c_out) + geom.out_size, dtype=dtype)
    og = geom.c_out // geom.groups
    w_mat = w.reshape(geom.groups, og, -1)  # (G, O/G, j)
    for n0, n1 in batch_chunks(n, _per_sample_bytes(geom, dtype)):
        nb = n1 - n0
        m = nb * prod(geom.padded_size)
        grid = _grid_input(x[n0:n1], geom, dtype)
        y_grid = np.empty((geom.groups, og, m), dtype=dtype)
        for m0, m1 in _blocks(geom, m, dtype.itemsize):
            # (G, O/G, j) @ (G, j, m) -> (G, O/G, m): m last, so the copy below moves whole rows
            np.matmul(w_mat, _cols(grid, geom, m0, m1), out=y_grid[:, :, m0:m1])
        y_valid = y_grid.reshape((geom.groups, og, nb) + geom.padded_size)[(slice(None),) * 3 + _valid(geom)]
        y[n0:n1].reshape((nb, geom.groups, og) + geom.out_size)[...] = np.moveaxis(y_valid, 2, 0)
    return y


def grid_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``gw[o, c, k] = Σ_{n,m} g[n, o, m] · cols[c, k, m]`` at stride 1, summed over chunks and blocks."""
    dtype = np.result_type(g, x)
    gw = WeightSum(geom, dtype)
    for n0, n1 in batch_chunks(x.shape[0], _per_sample_bytes(geom, dtype)):
        m = (n1 - n0) * prod(geom.padded_size)
        grid = _grid_input(x[n0:n1], geom, dtype)
        finite = bool(np.isfinite(x[n0:n1]).all())
        g_grid = _grid_grad(g[n0:n1].astype(dtype, copy=False), geom)  # (G, O/G, m)
        for m0, m1 in _blocks(geom, m, dtype.itemsize):
            cols = _cols(grid, geom, m0, m1)
            if not finite:
                _zero_junk_range(cols, geom, m0, m1)
            gw.add(g_grid[:, :, m0:m1], cols)
    return gw.result()


def grid_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``gx = pad_adjoint(fold(wᵀ g))`` at stride 1, the fold one contiguous add per offset and block."""
    n, dtype = g.shape[0], np.result_type(g, w)
    gx = np.empty((n, geom.c_in) + geom.in_size, dtype=dtype)
    w_t = w.reshape(geom.groups, geom.c_out // geom.groups, -1).swapaxes(1, 2)  # (G, j, O/G)
    offsets = _offsets(geom)
    w_finite = bool(np.isfinite(w).all())
    for n0, n1 in batch_chunks(n, _per_sample_bytes(geom, dtype)):
        nb = n1 - n0
        m = nb * prod(geom.padded_size)
        g_grid = _grid_grad(g[n0:n1].astype(dtype, copy=False), geom)
        folded = np.zeros((geom.c_in, m + offsets[-1]), dtype=dtype)
        for m0, m1 in _blocks(geom, m, dtype.itemsize):
            z = scratch((geom.c_in, len(offsets), m1 - m0), dtype)
            # (G, j, O/G) @ (G, O/G, m) -> (G, j, m)
            np.matmul(w_t, g_grid[:, :, m0:m1], out=z.reshape(geom.groups, -1, m1 - m0))
            if not w_finite:
                _zero_junk_range(z, geom, m0, m1)

            def add(c0: int, c1: int, z: Array = z, folded: Array = folded, m0: int = m0, m1: int = m1) -> None:
                for i, off in enumerate(offsets):
                    folded[c0:c1, m0 + off : m1 + off] += z[c0:c1, i]

            split_run(geom.c_in, z.size, add)
        gxp = folded[:, :m].reshape((geom.c_in, nb) + geom.padded_size).swapaxes(0, 1)
        gx[n0:n1] = pad_adjoint(gxp, geom)
    return gx


# ----------------------------------------------------------------------------- depthwise layers (groups == C == O)
#
# Each channel is its own convolution: multiply-adds of whole rows of the flattened grid, one per kernel offset,
# taken in blocks of channels of about depthwise.BLOCK_BYTES so that the rows a block reads and writes stay in the
# cache for all its offsets (one Python call per block and offset, not per channel and offset: 512 channels at 14²
# spent most of their time in the calls). The input gradient is the same correlation as the forward pass, of g on
# its grid with the offsets reversed: each output row is written once, where adding into a zeroed fold read and
# wrote it once per offset (128 channels at 56²: 12.0–13.6 → 10.7–11.7 ms). Measured against the routes these
# replaced (the gemm route's batched GEMV over the window matrix; the fold and the dots channel by channel), float32,
# 2 threads, N=8, 3×3, ms for forward / input / weight gradient, old and new code in alternating processes:
# 128 channels at 56², 20.8–21.7 / 15.5–15.9 / 10.7–12.0 → 8.9–9.6 / 9.1–9.5 / 8.0–8.9; 512 channels at 14²,
# 6.1–6.3 / 12.9–14.8 / 8.1–8.9 → 4.0–4.2 / 4.1 / 2.8–3.1.


def _correlate_rows(src: Array, w: Array, shifts: tuple[int, ...], m: int,
                    drop: tuple[Array, Array] | None = None) -> Array:
    """``out[c, p] = Σ_k w[c, k] · src[c, p + shifts[k]]`` for ``p < m``, a block of channels at a time, the blocks
    split over the threads.

    ``drop``: ``(channels, mask)``, for those channels a product whose ``src`` position ``j`` has ``mask[j]`` is
    left out of the sum (where a non-finite weight meets a zero that only stands in for nothing).
    """
    c, dtype = w.shape[0], src.dtype
    out = np.empty((c, m), dtype=dtype)
    row_bytes = 3 * m * dtype.itemsize  # a block's rows written, its temporary and the rows read

    def work(c0: int, c1: int) -> None:
        tmp = np.empty((min(c1 - c0, block_rows(row_bytes)), m), dtype=dtype)
        for b0, b1 in row_blocks(c0, c1, row_bytes):
            rows, t = out[b0:b1], tmp[: b1 - b0]
            bad = () if drop is None else drop[0][(drop[0] >= b0) & (drop[0] < b1)] - b0
            for i, shift in enumerate(shifts):
                np.multiply(src[b0:b1, shift : shift + m], w[b0:b1, i : i + 1], out=rows if i == 0 else t)
                if drop is not None:
                    for r in bad:
                        (rows if i == 0 else t)[r, drop[1][shift : shift + m]] = 0
                if i:
                    rows += t

    split_run(c, c * m * len(shifts), work)
    return out


def _channel_taps(w: Array, dtype: np.dtype[Any]) -> Array:
    """A depthwise kernel as ``(C, K)``: channel ``c``'s weight for each kernel offset."""
    return w.reshape(w.shape[0], -1).astype(dtype, copy=False)


def grid_depthwise_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``groups == C == O`` at stride 1: ``y[c, m] = Σ_k w[c, k] · grid[c, m + off(k)]``.

    Every value the direct route multiplies is multiplied here too (the padding's zeros included), so a NaN or an
    infinity lands where it does there; the junk positions are computed and dropped.
    """
    n, dtype = x.shape[0], np.result_type(x, w)
    m = n * prod(geom.padded_size)
    y_grid = _correlate_rows(_grid_input(x, geom, dtype), _channel_taps(w, dtype), _offsets(geom), m)
    y_valid = y_grid.reshape((geom.c_out, n) + geom.padded_size)[(slice(None), slice(None)) + _valid(geom)]
    return np.ascontiguousarray(y_valid.swapaxes(0, 1))


def grid_depthwise_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``groups == C == O`` at stride 1: ``gxp[c, p] = Σ_k w[c, k] · g[c, p − off(k)]``, then the padding's adjoint.

    The adjoint of :func:`grid_depthwise_forward`: ``g`` on the grid (zero at the junk positions) after ``off(K−1)``
    zeros, correlated with the offsets reversed. A channel whose kernel holds a NaN or an infinity leaves out the
    products with those zeros (``inf · 0`` would be NaN where the direct route adds nothing).
    """
    n, dtype = g.shape[0], np.result_type(g, w)
    offsets = _offsets(geom)
    top, m = offsets[-1], n * prod(geom.padded_size)
    g_rows = _grid_grad(g.astype(dtype, copy=False), geom, front=top).reshape(geom.c_out, -1)
    w_taps = _channel_taps(w, dtype)
    bad = np.flatnonzero(~np.isfinite(w_taps).all(axis=1))
    drop = (bad, np.concatenate([np.ones(top, dtype=bool), ~_valid_mask(geom, n)])) if bad.size else None
    gx_grid = _correlate_rows(g_rows, w_taps, tuple(top - off for off in offsets), m, drop)
    gxp = gx_grid.reshape((geom.c_in, n) + geom.padded_size).swapaxes(0, 1)
    return np.ascontiguousarray(pad_adjoint(gxp, geom))


def grid_depthwise_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``groups == C == O`` at stride 1: ``gw[c, k] = Σ_m g[c, m] · grid[c, m + off(k)]``, one dot per (c, k).

    Dot products of contiguous rows, a block of channels per call (the general route's im2col would copy the input
    once per offset). A channel whose sums come out non-finite and whose grid holds a NaN or an infinity takes its
    dots again over the output positions only: its junk positions hold inputs that met ``g``'s zeros there.
    """
    n, dtype = x.shape[0], np.result_type(g, x)
    offsets = _offsets(geom)
    m = n * prod(geom.padded_size)
    grid = _grid_input(x, geom, dtype)
    g_grid = _grid_grad(g.astype(dtype, copy=False), geom).reshape(geom.c_out, m)
    gw = np.empty((geom.c_out, len(offsets)), dtype=dtype)

    def work(c0: int, c1: int) -> None:
        for b0, b1 in row_blocks(c0, c1, 2 * m * dtype.itemsize):
            rows = g_grid[b0:b1, None, :]  # (b, 1, m) @ (b, m, 1): one dot per channel of the block
            for i, off in enumerate(offsets):
                np.matmul(rows, grid[b0:b1, off : off + m, None], out=gw[b0:b1, i : i + 1, None])

    split_run(geom.c_in, geom.c_in * m * len(offsets), work)
    valid = None
    for c in np.flatnonzero(~np.isfinite(gw).all(axis=1)):
        if not np.isfinite(grid[c]).all():
            valid = _valid_mask(geom, n) if valid is None else valid
            gw[c] = [np.dot(grid[c, off : off + m][valid], g_grid[c][valid]) for off in offsets]
    return gw.reshape(geom.weight_shape)
