"""The small route: one gather, one GEMM, no chunks, for problems of a few thousand window entries.

The gemm route's chunking, blocking and scratch bookkeeping cost about 5 µs of
Python per contraction, which is most of the time of a small problem. Up to
:data:`SMALL_WINDOWS` window entries (``N·C·K·Q``) this route does the same
arithmetic in one piece, reading the windows through an index remembered per
geometry (:func:`window_index`: padding, crop, stride and dilation in one
``take``, no padded copy) and adding them back through the same index
(``np.add.at``):

* forward: ``y = w @ windows(x)``, one product per group;
* input gradient: the windows' adjoint of ``wᵀ @ g``;
* weight gradient: ``g @ windows(x)ᵀ``.

The 5×5 image with a 3×3 kernel, ``conv`` with a bias and ``conv_backward`` in
a warm loop: 41.7 µs with im2col from the padded input and the fold, 31.2 µs
with the index (PyTorch's forward and autograd backward: 25 µs).

Examples
--------
>>> import numpy as np
>>> from convgrad._geometry import conv_geometry
>>> from convgrad.engine.gemm import gemm_forward
>>> x, w = np.arange(25.0).reshape(1, 1, 5, 5), np.ones((1, 1, 3, 3))
>>> geom = conv_geometry(x.shape, w.shape)
>>> small_forward(x, w, geom)[0, 0]
array([[ 54.,  63.,  72.],
       [ 99., 108., 117.],
       [144., 153., 162.]])
>>> bool(np.array_equal(small_forward(x, w, geom), gemm_forward(x, w, geom)))
True
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry, prod
from .gemm import channel_rows
from .padding import source_index
from .state import cache

Array = npt.NDArray[Any]

SMALL_WINDOWS = 1 << 12
"""Largest window matrix (``N·C·K·Q`` entries) the small route takes; larger problems are chunked and blocked."""


def applies(geom: Geometry) -> bool:
    """Whether the whole window matrix has at most :data:`SMALL_WINDOWS` entries."""
    return geom.n * geom.c_in * prod(geom.kernel) * prod(geom.out_size) <= SMALL_WINDOWS


class WindowIndex(NamedTuple):
    """Where the window entries of ``x (nb, C, *S)`` read, as ``(G, (C/G)·K, nb·Q)`` indices into ``x.ravel()``."""

    read: Array
    """The input position each entry reads (``0`` for an entry that reads a padding zero)."""
    add: Array
    """The same, with ``x.size`` (one past the input) for an entry that reads a padding zero."""
    zeros: Array | None
    """The flat positions of the entries that read a padding zero; ``None`` if none do."""


@cache(maxsize=64)
def window_index(geom: Geometry, nb: int) -> WindowIndex:
    """The :class:`WindowIndex` of ``geom`` for ``nb`` samples (read-only arrays, remembered).

    Entry ``[c, k, n, q]`` reads ``pad(x)[n, c, q·s + k·δ]``, that is input
    position ``source[q·s + k·δ]`` along each axis, with ``source`` the
    padding map of :func:`~convgrad.engine.padding.source_index` (every mode,
    crops too). Built from per-axis indices: its arrays have one entry per
    window entry, none has ``x``'s size. (No input dilation: :mod:`.phases`
    splits it off before any route.)
    """
    d = geom.d
    size = nb * geom.c_in * prod(geom.in_size)
    shape = (geom.c_in,) + geom.kernel + (nb,) + geom.out_size
    steps = np.cumprod((1,) + geom.in_size[::-1] + (geom.c_in,))[::-1]  # element strides of (nb, C, *S)
    index = np.zeros(shape, dtype=np.intp)
    inside = np.ones(shape, dtype=bool)
    for i in range(d):
        source = source_index(geom.padding_mode, geom.pad_lo[i], geom.pad_hi[i], geom.in_size[i])
        read = source[np.arange(geom.kernel[i])[:, None] * geom.dilation[i]
                      + np.arange(geom.out_size[i]) * geom.stride[i]]  # (K_i, Q_i)
        at = [1] * (2 * d + 2)
        at[1 + i], at[2 + d + i] = geom.kernel[i], geom.out_size[i]
        read = read.reshape(at)
        index += read * steps[2 + i]
        inside &= read >= 0
    index += np.arange(geom.c_in).reshape((-1,) + (1,) * (2 * d + 1)) * steps[1]
    index += np.arange(nb).reshape((1,) * (d + 1) + (-1,) + (1,) * d) * steps[0]
    matrices = (geom.groups, geom.c_in // geom.groups * prod(geom.kernel), nb * prod(geom.out_size))
    outside = ~inside
    index[outside] = 0
    read_at = index.reshape(matrices).copy()
    index[outside] = size
    add_at = index.reshape(matrices)
    zeros = np.flatnonzero(outside) if outside.any() else None
    for a in (read_at, add_at, zeros):
        if a is not None:
            a.flags.writeable = False
    return WindowIndex(read_at, add_at, zeros)


def gather(x: Array, geom: Geometry, dtype: np.dtype[Any]) -> Array:
    """The windows of ``pad(x)`` as ``(G, (C/G)·K, N·Q)`` matrices in ``dtype``: one ``take`` (a new array)."""
    index = window_index(geom, x.shape[0])
    cols: Array = x.take(index.read).astype(dtype, copy=False)  # (take flattens x: a view where it is contiguous)
    if index.zeros is not None:
        cols.reshape(-1)[index.zeros] = 0  # a padding zero: no product, so NaN and inf stay where they are
    return cols


def scatter(z: Array, geom: Geometry, nb: int) -> Array:
    """The adjoint of :func:`gather`: ``z (G, (C/G)·K, nb·Q)`` added back onto ``(nb, C, *S)`` (a new array)."""
    index = window_index(geom, nb)
    size = nb * geom.c_in * prod(geom.in_size)
    out = np.zeros(size + (index.zeros is not None), dtype=z.dtype)
    np.add.at(out, index.add, z)  # an entry that read a padding zero adds into the extra last element
    return out[:size].reshape((nb, geom.c_in) + geom.in_size)


def small_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``y = conv(x, w)``: one GEMM per group over every sample's windows."""
    nb, og = x.shape[0], geom.c_out // geom.groups
    cols = gather(x, geom, np.result_type(x, w))
    y: Array = np.matmul(w.reshape(geom.groups, og, cols.shape[1]), cols)
    if nb == 1:
        return y.reshape((1, geom.c_out) + geom.out_size)
    y = y.reshape(geom.groups, og, nb, prod(geom.out_size)).transpose(2, 0, 1, 3)
    return np.ascontiguousarray(y).reshape((nb, geom.c_out) + geom.out_size)


def small_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``gx``: ``wᵀ g``, one GEMM per group, added back through the windows' index (:func:`scatter`)."""
    return _input(channel_rows(g, geom.groups), w, geom, g.shape[0])


def small_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``gw = g @ windowsᵀ``, one GEMM per group over every sample and position."""
    return _weight(channel_rows(g, geom.groups), x, geom, np.result_type(g, x))


def _input(rows: Array, w: Array, geom: Geometry, nb: int) -> Array:
    og, j = geom.c_out // geom.groups, geom.c_in // geom.groups * prod(geom.kernel)
    return scatter(np.matmul(w.reshape(geom.groups, og, j).swapaxes(1, 2), rows), geom, nb)


def _weight(rows: Array, x: Array, geom: Geometry, dtype: np.dtype[Any]) -> Array:
    gw: Array = np.matmul(rows, gather(x, geom, dtype).swapaxes(1, 2))
    return gw.reshape(geom.weight_shape)


def small_backward(g: Array, x: Array, w: Array, geom: Geometry) -> tuple[Array, Array]:
    """``(small_input_grad(g, w), small_weight_grad(g, x))`` from one copy of ``g``'s channel rows: a backward
    pass of a small layer is mostly Python per call (the 5×5 image with a 3×3 kernel, ``conv_backward`` in a warm
    loop: 56–61 µs with the three gradients one by one, each through the dispatcher, 44–54 µs with these two in
    one piece and the bias gradient beside them, :func:`convgrad.engine.backward`)."""
    rows = channel_rows(g, geom.groups)
    return _input(rows, w, geom, g.shape[0]), _weight(rows, x, geom, np.result_type(g, x))
