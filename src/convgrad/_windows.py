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
from numpy.lib.stride_tricks import sliding_window_view

from ._validate import Geometry


def unfold(xp: npt.NDArray[Any], geom: Geometry) -> npt.NDArray[Any]:
    """Every window of the padded input: a view ``(N, C, *Q, *K)``.

    ``geom.out_size`` windows are taken per dimension (for a transposed
    convolution with a large ``output_padding`` there may be room for more).
    """
    d = geom.d
    view = sliding_window_view(xp, geom.span, axis=tuple(range(2, 2 + d)))
    positions = tuple(slice(0, (q - 1) * s + 1, s) for q, s in zip(geom.out_size, geom.stride))
    taps = tuple(slice(None, None, dl) for dl in geom.dilation)
    return view[(slice(None), slice(None)) + positions + taps]


def kernel_offsets(geom: Geometry) -> list[tuple[int, ...]]:
    """All kernel offsets ``k`` in C order."""
    return list(itertools.product(*(range(k) for k in geom.kernel)))


def tap_slices(geom: Geometry, k: tuple[int, ...]) -> tuple[slice, ...]:
    """The padded positions ``q·s + k·δ`` that kernel offset ``k`` touches."""
    return tuple(
        slice(kk * dl, kk * dl + (q - 1) * s + 1, s)
        for kk, dl, q, s in zip(k, geom.dilation, geom.out_size, geom.stride)
    )


def im2col(xp: npt.NDArray[Any], geom: Geometry, out: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Copy the windows of ``xp (N, C, *P)`` into ``out``, laid out ``(C, *K, N, *Q)``.

    ``out[c, k, n, q] = xp[n, c, q·s + k·δ]``. One strided copy per kernel
    offset: each reads a plain strided slice of ``xp`` and writes a contiguous
    block, which is faster than one copy from the 2d-dimensional window view.
    Returns ``out``.
    """
    lead = (slice(None), slice(None))
    for k in kernel_offsets(geom):
        out[(slice(None),) + k] = xp[lead + tap_slices(geom, k)].swapaxes(0, 1)
    return out


def fold(z: npt.NDArray[Any], geom: Geometry) -> npt.NDArray[Any]:
    """Adjoint of :func:`im2col`: ``z (C, *K, N, *Q)`` -> ``(N, C, *P)``."""
    out = np.zeros((z.shape[1 + geom.d], z.shape[0]) + geom.padded_size, dtype=z.dtype)
    out_cn = out.swapaxes(0, 1)  # (C, N, *P), a view
    lead = (slice(None), slice(None))
    for k in kernel_offsets(geom):
        out_cn[lead + tap_slices(geom, k)] += z[(slice(None),) + k]
    return out
