"""The small route: one im2col, one GEMM, no chunks, for problems of a few thousand window entries.

The gemm route's chunking, blocking and scratch bookkeeping cost about 5 µs of
Python per contraction, which is most of the time of a small problem (the
5×5 image with a 3×3 kernel: 11 µs on the gemm route, 7 µs here, per
contraction). Up to :data:`SMALL_WINDOWS` window entries (``N·C·K·Q``) this
route does the same arithmetic in one piece:

* forward: ``y = w @ im2col(pad(x))``, one product per group;
* input gradient: ``pad_adjoint(fold(wᵀ @ g))``;
* weight gradient: ``g @ im2col(pad(x))ᵀ``.

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

from typing import Any

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry, prod
from .gemm import channel_rows
from .padding import pad, pad_adjoint
from .windows import fold, im2col

Array = npt.NDArray[Any]

SMALL_WINDOWS = 1 << 12
"""Largest window matrix (``N·C·K·Q`` entries) the small route takes; larger problems are chunked and blocked."""


def applies(geom: Geometry) -> bool:
    """Whether the whole window matrix has at most :data:`SMALL_WINDOWS` entries."""
    return geom.n * geom.c_in * prod(geom.kernel) * prod(geom.out_size) <= SMALL_WINDOWS


def _cols(x: Array, geom: Geometry, dtype: np.dtype[Any]) -> Array:
    """The windows of ``pad(x)`` as ``(G, (C/G)·K, N·Q)`` matrices (a new array)."""
    nb = x.shape[0]
    cols = np.empty((geom.c_in,) + geom.kernel + (nb,) + geom.out_size, dtype=dtype)
    im2col(pad(x, geom), geom, cols)
    return cols.reshape(geom.groups, geom.c_in // geom.groups * prod(geom.kernel), nb * prod(geom.out_size))


def small_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``y = conv(x, w)``: one GEMM per group over every sample's windows."""
    nb, og = x.shape[0], geom.c_out // geom.groups
    cols = _cols(x, geom, np.result_type(x, w))
    y: Array = np.matmul(w.reshape(geom.groups, og, cols.shape[1]), cols)
    if nb == 1:
        return y.reshape((1, geom.c_out) + geom.out_size)
    y = y.reshape(geom.groups, og, nb, prod(geom.out_size)).transpose(2, 0, 1, 3)
    return np.ascontiguousarray(y).reshape((nb, geom.c_out) + geom.out_size)


def small_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``gx = pad_adjoint(fold(wᵀ g))``, one GEMM per group."""
    return _input(channel_rows(g, geom.groups), w, geom, g.shape[0])


def small_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``gw = g @ windowsᵀ``, one GEMM per group over every sample and position."""
    return _weight(channel_rows(g, geom.groups), x, geom, np.result_type(g, x))


def _input(rows: Array, w: Array, geom: Geometry, nb: int) -> Array:
    og, j = geom.c_out // geom.groups, geom.c_in // geom.groups * prod(geom.kernel)
    z = np.matmul(w.reshape(geom.groups, og, j).swapaxes(1, 2), rows)
    return np.ascontiguousarray(pad_adjoint(fold(z.reshape((geom.c_in,) + geom.kernel + (nb,) + geom.out_size),
                                                 geom), geom))


def _weight(rows: Array, x: Array, geom: Geometry, dtype: np.dtype[Any]) -> Array:
    gw: Array = np.matmul(rows, _cols(x, geom, dtype).swapaxes(1, 2))
    return gw.reshape(geom.weight_shape)


def small_backward(g: Array, x: Array, w: Array, geom: Geometry) -> tuple[Array, Array]:
    """``(small_input_grad(g, w), small_weight_grad(g, x))`` from one copy of ``g``'s channel rows: a backward
    pass of a small layer is mostly Python per call (the 5×5 image with a 3×3 kernel, ``conv_backward`` in a warm
    loop: 56–61 µs with the three gradients one by one, each through the dispatcher, 44–54 µs with these two in
    one piece and the bias gradient beside them, :func:`convgrad.engine.backward`)."""
    rows = channel_rows(g, geom.groups)
    return _input(rows, w, geom, g.shape[0]), _weight(rows, x, geom, np.result_type(g, x))
