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


def _grid_grad(g: Array, geom: Geometry) -> Array:
    """``g`` on the grid, zero at the junk positions: ``(G, O/G, nb·P)``."""
    nb = g.shape[0]
    grid = np.zeros((geom.c_out, nb) + geom.padded_size, dtype=g.dtype)
    grid[(slice(None), slice(None)) + _valid(geom)] = g.swapaxes(0, 1)
    return grid.reshape(geom.groups, geom.c_out // geom.groups, -1)


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
