"""The Winograd route: F(2×2, 3×3) for 3×3 kernels at stride 1 and dilation 1 (2-d, ``groups == 1``).

A 4×4 tile ``d`` of the padded input gives a 2×2 tile of outputs as
``Y = Aᵀ [(G w Gᵀ) ⊙ (Bᵀ d B)] A`` (Lavin & Gray, 2016), so the contraction over
channels becomes 16 independent matrix products, one per point ``α`` of the
4×4 transform, with 16/(4·9) = 0.44 of the direct route's multiplications::

    V[α, c, n, t] = (Bᵀ d_{n,c,t} B)[α]        input transform, tiles t = (t1, t2) on a stride-2 grid
    U[α, o, c]    = (G w_{o,c} Gᵀ)[α]          weight transform
    M[α]          = U[α] @ V[α]               16 GEMMs (O × C) @ (C × N·T)
    y_tile        = Aᵀ M A                     output transform

The gradients use the same pieces. The weight gradient is the adjoint of the
forward map in ``w``: ``gw = Gᵀ [Σ_{n,t} (A g Aᵀ) ⊙ (Bᵀ d B)] G``, 16 GEMMs
``(O × N·T) @ (N·T × C)``. The input gradient is a full correlation of ``g``
with the kernel flipped and its channel axes swapped, computed by the forward
pieces (zero padding: only the input's own positions; other padding modes and
input dilation: every padded position, then :func:`convgrad.engine.padding.pad_adjoint`).

The transforms are sums and differences of strided slices in NumPy (one
temporary a quarter of the input's size per row of the transform); the
workspace is ``V`` and ``M``, 4× the input and 4× the output of a chunk of
samples. In float32 the error against a float64 result is about 2–3× the
direct route's (the transforms add numbers of both signs before the products);
a NaN or an infinity would spread over its tile, so the route takes finite
data only (:func:`choose`).

Examples
--------
>>> import numpy as np
>>> from convgrad._geometry import conv_geometry
>>> from convgrad.engine.gemm import gemm_forward
>>> x, w = np.random.default_rng(0).standard_normal((2, 3, 7, 6)), np.ones((4, 3, 3, 3))
>>> geom = conv_geometry(x.shape, w.shape, padding=1)
>>> bool(np.allclose(winograd_forward(x, w, geom), gemm_forward(x, w, geom)))
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry
from . import cost
from .padding import pad, pad_adjoint
from .state import batch_chunks, get_workspace_budget, scratch

Array = npt.NDArray[Any]

G_MATRIX = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
"""``G`` of F(2, 3): the weight transform ``G w Gᵀ``."""

MAX_ERROR_FACTOR = 10.0
"""``method="auto"`` takes a Winograd variant only if its float32 error is within this factor of the direct route's."""

MEASURED_ERROR_FACTOR = 3.0
"""F(2×2, 3×3)'s float32 error over the direct route's, measured on the benchmark layers (2.0–2.9×; README)."""


def applies(geom: Geometry) -> bool:
    """Two spatial dimensions, a 3×3 kernel, stride and dilation 1, one group, and some outputs."""
    return (geom.d == 2 and geom.kernel == (3, 3) and geom.stride == (1, 1) and geom.dilation == (1, 1)
            and geom.groups == 1 and geom.n > 0)


def choose(geom: Geometry, dtype: np.dtype[Any], method: str, op: str, *, exact: bool, finite: bool) -> str | None:
    """``"winograd"`` where it applies to floating, finite data and is asked for (or cheaper, for ``"auto"``).

    ``method="winograd"`` forces it wherever it applies; ``"auto"`` takes it
    where :func:`convgrad.engine.cost.winograd_cost` is below the direct
    routes' cost and the measured error factor is within
    :data:`MAX_ERROR_FACTOR`; ``"direct"`` and ``"fft"`` never.

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad._geometry import conv_geometry
    >>> geom = conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    >>> choose(geom, np.dtype("float32"), "winograd", "forward", exact=False, finite=True)
    'winograd'
    >>> choose(geom, np.dtype("float32"), "direct", "forward", exact=False, finite=True) is None
    True
    """
    if method not in ("auto", "winograd") or exact or not finite or np.dtype(dtype).kind != "f":
        return None
    if op not in ("forward", "input", "weight") or not applies(geom):
        return None
    tiles = _tiles(geom.out_size if op != "input" else geom.padded_size)
    if _sample_bytes(max(geom.c_in, geom.c_out), max(geom.c_in, geom.c_out), tiles, np.dtype(dtype).itemsize) > \
            get_workspace_budget():
        return None
    if method == "winograd":
        return "winograd"
    if MEASURED_ERROR_FACTOR > MAX_ERROR_FACTOR or cost.gemm_cost(geom) < cost.MIN_DIRECT_COST:
        return None
    direct = min(cost.gemm_cost(geom), cost.grid_cost(geom))
    return "winograd" if cost.winograd_cost(geom) < direct else None


# ----------------------------------------------------------------------------- the transforms


def _tiles(size: tuple[int, ...]) -> tuple[int, int]:
    """Tiles per dimension for ``size`` outputs (2 per tile)."""
    return -(-size[0] // 2), -(-size[1] // 2)


def _input_transform(d: Array, tiles: tuple[int, int], out: Array) -> None:
    """``out[α, c, n, t1, t2] = (Bᵀ d_tile B)[α]`` for ``d (nb, C, 2·T1 + 2, 2·T2 + 2)``, one row of Bᵀ at a time.

    ``Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]``.
    """
    t1, t2 = tiles
    rows = [d[:, :, i : i + 2 * t1 : 2, :] for i in range(4)]  # (nb, C, T1, W): tile row i
    tmp = np.empty(rows[0].shape, dtype=out.dtype)
    for j in range(4):
        if j == 0:
            np.subtract(rows[0], rows[2], out=tmp)
        elif j == 1:
            np.add(rows[1], rows[2], out=tmp)
        elif j == 2:
            np.subtract(rows[2], rows[1], out=tmp)
        else:
            np.subtract(rows[1], rows[3], out=tmp)
        cols = [tmp[..., i : i + 2 * t2 : 2] for i in range(4)]
        dest = [out[4 * j + i].swapaxes(0, 1) for i in range(4)]  # (nb, C, T1, T2) views
        np.subtract(cols[0], cols[2], out=dest[0])
        np.add(cols[1], cols[2], out=dest[1])
        np.subtract(cols[2], cols[1], out=dest[2])
        np.subtract(cols[1], cols[3], out=dest[3])


def _output_transform(m: Array, y: Array) -> None:
    """``y[n, o, 2·t + (a, b)] = (Aᵀ M_tile A)[a, b]`` for ``m (16, O, nb, T1, T2)`` and ``y (nb, O, 2·T1, 2·T2)``.

    ``Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]``.
    """
    shape = m.shape[1:]
    r = np.empty((2, 4) + shape, dtype=m.dtype)
    for j in range(4):  # rows of the tile first: r[a, j] = (Aᵀ M)[a, j]
        np.add(m[j], m[4 + j], out=r[0, j])
        r[0, j] += m[8 + j]
        np.subtract(m[4 + j], m[8 + j], out=r[1, j])
        r[1, j] -= m[12 + j]
    for a in range(2):
        d0 = y[:, :, a::2, 0::2].swapaxes(0, 1)
        d1 = y[:, :, a::2, 1::2].swapaxes(0, 1)
        np.add(r[a, 0], r[a, 1], out=d0)
        d0 += r[a, 2]
        np.subtract(r[a, 1], r[a, 2], out=d1)
        d1 -= r[a, 3]


def _grad_transform(g: Array, out: Array) -> None:
    """``out[α, o, n, t] = (A g_tile Aᵀ)[α]`` for ``g (nb, O, 2·T1, 2·T2)``: the adjoint of the output transform.

    ``A = [[1, 0], [1, 1], [1, −1], [0, −1]]``, per dimension ``(v0, v0 + v1, v0 − v1, −v1)``.
    """
    rows = [g[:, :, a::2, :] for a in range(2)]  # (nb, O, T1, 2·T2)
    tmp = np.empty(rows[0].shape, dtype=out.dtype)
    for i in range(4):
        if i == 0:
            tmp[...] = rows[0]
        elif i == 1:
            np.add(rows[0], rows[1], out=tmp)
        elif i == 2:
            np.subtract(rows[0], rows[1], out=tmp)
        else:
            np.negative(rows[1], out=tmp)
        c0, c1 = tmp[..., 0::2], tmp[..., 1::2]
        dest = [out[4 * i + j].swapaxes(0, 1) for j in range(4)]
        dest[0][...] = c0
        np.add(c0, c1, out=dest[1])
        np.subtract(c0, c1, out=dest[2])
        np.negative(c1, out=dest[3])


def weight_transform(w: Array, dtype: np.dtype[Any]) -> Array:
    """``U[α, o, c] = (G w[o, c] Gᵀ)[α]``: ``(16, O, C)`` from ``w (O, C, 3, 3)``.

    Examples
    --------
    >>> weight_transform(np.ones((1, 1, 3, 3)), np.dtype("float64"))[:, 0, 0].reshape(4, 4)[0]
    array([1. , 1.5, 0.5, 1. ])
    """
    g_mat = G_MATRIX.astype(dtype)
    u = np.einsum("ai,ocij,bj->aboc", g_mat, w.astype(dtype, copy=False), g_mat, optimize=True)
    return np.ascontiguousarray(u).reshape(16, w.shape[0], w.shape[1])


def _sample_bytes(c: int, o: int, tiles: tuple[int, int], itemsize: int) -> int:
    """Workspace of one sample: ``V`` and ``M`` (16 per tile for each channel), the tile buffer and a temporary."""
    t = tiles[0] * tiles[1]
    return (16 * t * (c + o) + 6 * t * c + 4 * t * o) * itemsize


def _workspace(nb: int, c: int, o: int, tiles: tuple[int, int], dtype: np.dtype[Any]) -> tuple[Array, Array, Array]:
    """``V (16, C, nb, *T)``, ``M (16, O, nb, *T)`` and the tile grid ``(nb, C, 2·T1 + 2, 2·T2 + 2)``, carved from
    this thread's scratch buffer (no fresh pages per call)."""
    t = tiles[0] * tiles[1]
    grid = (2 * tiles[0] + 2, 2 * tiles[1] + 2)
    nv, nm, nd = 16 * c * nb * t, 16 * o * nb * t, nb * c * grid[0] * grid[1]
    buf = scratch((nv + nm + nd,), dtype)
    return (buf[:nv].reshape((16, c, nb) + tiles), buf[nv : nv + nm].reshape((16, o, nb) + tiles),
            buf[nv + nm :].reshape((nb, c) + grid))


def _place(src: Array, offset: tuple[int, int], d: Array) -> None:
    """``d`` = zeros with ``src`` at ``offset`` (rows that fall outside ``d`` are left out: they meet junk only)."""
    src_sl, dst_sl = [], []
    for i in range(2):
        first, last = max(0, -offset[i]), min(src.shape[2 + i], d.shape[2 + i] - offset[i])
        last = max(first, last)
        src_sl.append(slice(first, last))
        dst_sl.append(slice(first + offset[i], last + offset[i]))
    d[...] = 0
    d[(slice(None), slice(None)) + tuple(dst_sl)] = src[(slice(None), slice(None)) + tuple(src_sl)]


def _correlate(src: Array, u: Array, offset: tuple[int, int], size: tuple[int, int], dtype: np.dtype[Any]) -> Array:
    """``out[n, o, p] = Σ_{c,k} u·src[n, c, p + k − 2 + offset]``: the valid 3×3 correlation of ``src`` placed at
    ``offset`` in a zero grid, ``size`` outputs; ``u`` the transformed weight ``(16, O, C)``.

    Rows of ``src`` that fall outside the tile grid only meet junk outputs and are left out.
    """
    n, c = src.shape[:2]
    o = u.shape[1]
    tiles = _tiles(size)
    out = np.empty((n, o) + size, dtype=dtype)
    whole = size[0] % 2 == 0 and size[1] % 2 == 0
    for n0, n1 in batch_chunks(n, _sample_bytes(c, o, tiles, np.dtype(dtype).itemsize)):
        nb = n1 - n0
        v, m, d = _workspace(nb, c, o, tiles, dtype)
        _place(src[n0:n1], offset, d)
        _input_transform(d, tiles, v)
        np.matmul(u, v.reshape(16, c, -1), out=m.reshape(16, o, -1))
        if whole:
            _output_transform(m, out[n0:n1])
        else:
            y = np.empty((nb, o, 2 * tiles[0], 2 * tiles[1]), dtype=dtype)
            _output_transform(m, y)
            out[n0:n1] = y[:, :, : size[0], : size[1]]
    return out


# ----------------------------------------------------------------------------- the routes


def _direct_padding(geom: Geometry) -> bool:
    """Zero padding (or cropping), no input dilation: the input goes into the tile grid as it is."""
    return geom.padding_mode == "zeros" and all(a == 1 for a in geom.input_dilation)


def winograd_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``y = conv(x, w)`` by F(2×2, 3×3): input transform, 16 GEMMs, output transform, per chunk of samples."""
    dtype = np.result_type(x, w)
    u = weight_transform(w, dtype)
    if _direct_padding(geom):
        return _correlate(x, u, (geom.pad_lo[0], geom.pad_lo[1]), (geom.out_size[0], geom.out_size[1]), dtype)
    return _correlate(pad(x, geom), u, (0, 0), (geom.out_size[0], geom.out_size[1]), dtype)


def winograd_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``gx = pad_adjoint(full correlation of g with w flipped, channels swapped)`` by F(2×2, 3×3)."""
    dtype = np.result_type(g, w)
    u = weight_transform(np.ascontiguousarray(w[:, :, ::-1, ::-1].swapaxes(0, 1)), dtype)
    if _direct_padding(geom):
        size = (geom.in_size[0], geom.in_size[1])
        return _correlate(g, u, (2 - geom.pad_lo[0], 2 - geom.pad_lo[1]), size, dtype)
    gxp = _correlate(g, u, (2, 2), (geom.padded_size[0], geom.padded_size[1]), dtype)
    return np.ascontiguousarray(pad_adjoint(gxp, geom))


def winograd_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``gw = Gᵀ [Σ_{n,t} (A g Aᵀ) ⊙ (Bᵀ d B)] G``: both transforms, 16 GEMMs summed over chunks."""
    dtype = np.result_type(g, x)
    c, o = geom.c_in, geom.c_out
    tiles = _tiles(geom.out_size)
    direct = _direct_padding(geom)
    src = x if direct else pad(x, geom)
    offset = (geom.pad_lo[0], geom.pad_lo[1]) if direct else (0, 0)
    acc = np.zeros((16, o, c), dtype=dtype)
    for n0, n1 in batch_chunks(x.shape[0], _sample_bytes(c, o, tiles, np.dtype(dtype).itemsize)):
        nb = n1 - n0
        v, gt, d = _workspace(nb, c, o, tiles, dtype)
        _place(src[n0:n1], offset, d)
        _input_transform(d, tiles, v)
        gg = np.zeros((nb, o, 2 * tiles[0], 2 * tiles[1]), dtype=dtype)
        gg[:, :, : geom.out_size[0], : geom.out_size[1]] = g[n0:n1]
        _grad_transform(gg, gt)
        del gg
        acc += np.matmul(gt.reshape(16, o, -1), v.reshape(16, c, -1).swapaxes(1, 2))
    g_mat = G_MATRIX.astype(dtype)
    gw = np.einsum("ai,aboc,bj->ocij", g_mat, acc.reshape(4, 4, o, c), g_mat, optimize=True)
    return np.ascontiguousarray(gw, dtype=dtype)


ROUTES: dict[str, dict[str, Any]] = {
    "forward": {"winograd": winograd_forward},
    "input": {"winograd": winograd_input_grad},
    "weight": {"winograd": winograd_weight_grad},
}
"""This module's routes, per contraction, with the signature of :data:`convgrad.engine.dispatch.ROUTES`' entries."""

__all__ = ["ROUTES", "applies", "choose", "weight_transform", "winograd_forward", "winograd_input_grad",
           "winograd_weight_grad"]
