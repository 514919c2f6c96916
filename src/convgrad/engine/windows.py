"""The window map (unfold) and its adjoint (fold).

``unfold(xp)[n, c, q, k] = xp[n, c, q·s + k·δ]`` gathers every window of the
padded input as a read-only strided view, ``(N, C, *Q, *K)``;
``im2col`` copies those windows into a matrix laid out ``(C, *K, N, *Q)`` so
that every contraction is one GEMM per group with ``N·Q`` as its long side;
``fold(z)[n, c, p] = Σ_{q·s + k·δ = p} z[c, k, n, q]`` is the adjoint of that
copy and scatter-adds the windows back, one strided-slice ``+=`` per kernel
offset.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from .._geometry import Geometry, prod
from .state import cache, split_run

SMALL_COPY = 4096
"""Below this many elements per kernel offset, im2col copies once from a strided view
(fewer Python calls); above it, once per offset (faster memory access)."""

SMALL_FOLD = 1 << 16
"""Largest fold matrix (``K·Q × P`` entries) that :func:`fold` multiplies by instead of looping."""


def unfold(xp: npt.NDArray[Any], geom: Geometry) -> npt.NDArray[Any]:
    """Every window of the padded input: a view ``(N, C, *Q, *K)``.

    ``geom.out_size`` windows are taken per dimension (for a transposed
    convolution with a large ``output_padding`` there may be room for more).
    """
    d = geom.d
    view = sliding_window_view(xp, geom.span, axis=tuple(range(2, 2 + d)))
    dilated = tuple(slice(None, None, dl) for dl in geom.dilation)
    return view[(slice(None), slice(None)) + window_starts(geom) + dilated]


def window_starts(geom: Geometry) -> tuple[slice, ...]:
    """The positions ``q·s`` where the ``geom.out_size`` windows start (kernel offset 0)."""
    return tap_slices(geom, (0,) * geom.d)


def kernel_offsets(geom: Geometry) -> list[tuple[int, ...]]:
    """All kernel offsets ``k`` in C order."""
    return list(itertools.product(*(range(k) for k in geom.kernel)))


@cache(maxsize=128)
def taps(geom: Geometry) -> tuple[tuple[tuple[int, ...], tuple[slice, ...]], ...]:
    """Every kernel offset with its :func:`tap_slices`, computed once per geometry."""
    return tuple((k, tap_slices(geom, k)) for k in kernel_offsets(geom))


def tap_slices(geom: Geometry, k: tuple[int, ...]) -> tuple[slice, ...]:
    """The padded positions ``q·s + k·δ`` that kernel offset ``k`` touches."""
    return tuple(
        slice(kk * dl, kk * dl + (q - 1) * s + 1, s)
        for kk, dl, q, s in zip(k, geom.dilation, geom.out_size, geom.stride)
    )


def window_at(geom: Geometry, q: tuple[int, ...]) -> tuple[slice, ...]:
    """The padded positions ``q·s + k·δ`` that output position ``q``'s window covers, all ``k`` at once."""
    return tuple(
        slice(qq * s, qq * s + sp, dl) for qq, s, dl, sp in zip(q, geom.stride, geom.dilation, geom.span)
    )


def im2col(xp: npt.NDArray[Any], geom: Geometry, out: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Copy the windows of ``xp (N, C, *P)`` into ``out``, laid out ``(C, *K, N, *Q)``.

    ``out[c, k, n, q] = xp[n, c, q·s + k·δ]``. One strided copy per kernel
    offset: each reads a plain strided slice of ``xp`` and writes a contiguous
    block, which is faster than one copy from the 2d-dimensional window view.
    Returns ``out``.
    """
    if out.size <= SMALL_COPY * prod(geom.kernel):  # few elements: one copy from a strided view
        d, st = geom.d, xp.strides
        strides = (
            (st[1],) + tuple(st[2 + i] * geom.dilation[i] for i in range(d))
            + (st[0],) + tuple(st[2 + i] * geom.stride[i] for i in range(d))
        )
        if xp.flags.c_contiguous:  # the ndarray constructor is ~8x cheaper than as_strided
            view = np.ndarray(out.shape, xp.dtype, buffer=xp, strides=strides)
        else:
            view = as_strided(xp, shape=out.shape, strides=strides, writeable=False)
        np.copyto(out, view)
        return out
    if prod(geom.out_size) < prod(geom.kernel):  # few large windows: one copy per output position

        def copy(c0: int, c1: int) -> None:
            for q in np.ndindex(*geom.out_size):
                window = xp[(slice(None), slice(c0, c1)) + window_at(geom, q)]  # (N, c, *K)
                out[(slice(c0, c1),) + (slice(None),) * geom.d + (slice(None),) + q] = np.moveaxis(window, 0, -1)
    else:

        def copy(c0: int, c1: int) -> None:
            for k, sl in taps(geom):
                out[(slice(c0, c1),) + k] = xp[(slice(None), slice(c0, c1)) + sl].swapaxes(0, 1)

    split_run(out.shape[0], out.size, copy)
    return out


@cache(maxsize=64)
def fold_matrix(geom: Geometry, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """The 0/1 matrix ``M[(k, q), p] = [q·s + k·δ = p]`` of one plane's fold, ``(K·Q, P)``."""
    k_idx = np.indices(geom.kernel).reshape(geom.d, -1, 1)
    q_idx = np.indices(geom.out_size).reshape(geom.d, 1, -1)
    dil, st = np.array(geom.dilation).reshape(-1, 1, 1), np.array(geom.stride).reshape(-1, 1, 1)
    p_flat = np.ravel_multi_index(tuple(q_idx * st + k_idx * dil), geom.padded_size).ravel()
    m = np.zeros((p_flat.size, prod(geom.padded_size)), dtype=dtype)
    m[np.arange(p_flat.size), p_flat] = 1
    m.flags.writeable = False
    return m


def fold(z: npt.NDArray[Any], geom: Geometry) -> npt.NDArray[Any]:
    """Adjoint of :func:`im2col`: ``z (C, *K, N, *Q)`` -> ``(N, C, *P)``.

    Small problems (at most :data:`SMALL_FOLD` entries in one plane's fold
    matrix) with finite ``z`` multiply by :func:`fold_matrix` in one GEMM
    instead of one Python-level ``+=`` per kernel offset. (With a NaN or an
    infinity in ``z`` that product would put NaN wherever a zero of the
    matrix meets it, so such ``z`` takes the loop.)
    """
    c, nb, kq = z.shape[0], z.shape[1 + geom.d], prod(geom.kernel) * prod(geom.out_size)
    if kq * prod(geom.padded_size) <= SMALL_FOLD and np.isfinite(z).all():
        planes = z.reshape(c, prod(geom.kernel), nb, prod(geom.out_size)).transpose(0, 2, 1, 3).reshape(c * nb, kq)
        folded = np.matmul(planes, fold_matrix(geom, z.dtype)).reshape((c, nb) + geom.padded_size)
        return np.ascontiguousarray(folded.swapaxes(0, 1))
    out = np.empty((z.shape[1 + geom.d], z.shape[0]) + geom.padded_size, dtype=z.dtype)
    out_cn = out.swapaxes(0, 1)  # (C, N, *P), a view

    if prod(geom.out_size) < prod(geom.kernel):  # few large windows: one add per output position

        def add(c0: int, c1: int) -> None:
            out_cn[c0:c1] = 0
            for q in np.ndindex(*geom.out_size):
                zq = z[(slice(c0, c1),) + (slice(None),) * geom.d + (slice(None),) + q]  # (c, *K, N)
                out_cn[(slice(c0, c1), slice(None)) + window_at(geom, q)] += np.moveaxis(zq, -1, 1)
    else:

        def add(c0: int, c1: int) -> None:
            out_cn[c0:c1] = 0
            for k, sl in taps(geom):
                out_cn[(slice(c0, c1), slice(None)) + sl] += z[(slice(c0, c1),) + k]

    split_run(z.shape[0], z.size, add)
    return out
