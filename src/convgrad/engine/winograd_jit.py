"""Compiled Winograd transforms (``pip install 'convgrad[jit]'``): tile gather and transform in one pass.

The NumPy transforms of :mod:`convgrad.engine.winograd` build a zero-padded
tile grid, copy the overlapping tiles into a matrix and multiply it by the
Kronecker product of the transform matrices: three passes over memory, each
larger than the input. The kernels here read each ``(sample, channel)`` plane
once and write the layout the batched GEMMs want, with zero padding (and
cropping) done by clipping index ranges, so neither the padded input nor the
tile matrix is ever built:

* :func:`input_transform` ``V[α·α', c, n·T + t] = (Bᵀ d_t B)[α, α']`` for the
  overlapping ``(m + 2)²`` tiles ``d_t`` on a stride-``m`` grid;
* :func:`output_transform` ``y[n, o, m·t + (a, b)] = (Aᵀ M_t A)[a, b]``, the
  rows and columns beyond the output clipped;
* :func:`grad_transform` ``Gᵀ[α·α', o, n·T + t] = (A g_t Aᵀ)[α, α']`` for the
  disjoint ``m × m`` tiles of the output gradient (the adjoint of the output
  transform, for the weight gradient).

A plane is first gathered into ``m × m`` polyphase blocks (row and column
``mod m``), so that each half of the transform is a sum of up to six whole
blocks shifted by constants: one contiguous loop per output row of the
transform, its inputs and outputs in registers (``_mix``), which vectorises.
The matrices come as arguments (any tile size ``m``, ``m + 2 <= 6``).

Nothing here imports Numba until a transform is first called; the kernels are
compiled with ``cache=True`` and ``nogil=True`` and run over ranges of planes
on the engine's thread pool (:func:`convgrad.engine.state.split_run`), as the
compiled depthwise kernels of :mod:`convgrad.engine.jit` do, or on the calling
thread alone (``split=False``) when the caller already runs one chunk per thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from .jit import available
from .state import split_run

Array = npt.NDArray[Any]

_lock = threading.Lock()
_compiled: dict[str, Callable[..., None]] = {}
COMPILE_SECONDS: dict[str, float] = {}
"""Seconds the first call of each kernel (per dtype) took in this process: compilation, or loading the cache."""


# ----------------------------------------------------------------------------- the kernels (plain Python)
# Compiled by _kernel() on first use. Arrays come flat. Plane p = n·channels + c of the input (or gradient) is
# transformed whole: its tiles are first gathered into m × m polyphase blocks xpp[pr][pc][b][e] =
# d[b·m + pr, e·m + pc] (zeros outside the data), each block R = T1 + 1 rows of E = T2 + 1 columns, so that
# tile (a, t)'s element (i, l) is xpp[i mod m][l mod m][a + i // m][t + l // m]: both halves of the transform
# are then sums of whole blocks shifted by a constant, over one long contiguous loop (_mix). Inside a plane the
# transformed tiles keep E columns per row of tiles (column T2 is junk); they are copied to and from the GEMMs'
# arrays without it, T1·T2 columns per sample. `geo` holds h, w, off1, off2, T1, T2, m, channels and the
# columns of V per channel (nb·T1·T2). The inner loops index with unsigned integers (no wrap-around test, so
# LLVM vectorises them, as in convgrad.engine.jit).


def _mix(src: Array, soff: Array, dst: Array, doff: Array, coef: Array, n_in: int, n_out: int,
         run: int) -> None:  # pragma: no cover - compiled
    """``dst[doff[k] + q] = Σ_i coef[k, i] · src[soff[i] + q]`` for ``q < run``: up to six inputs (the first
    ``n_in``; unused ones have zero coefficients and a valid offset) and ``n_out`` of six outputs, all in
    registers, one pass over ``q`` (one loop per shape, so each vectorises with its sizes fixed)."""
    s0, s1, s2, s3, s4, s5 = soff[0], soff[1], soff[2], soff[3], soff[4], soff[5]
    d0, d1, d2, d3, d4, d5 = doff[0], doff[1], doff[2], doff[3], doff[4], doff[5]
    c00, c01, c02, c03, c04, c05 = coef[0, 0], coef[0, 1], coef[0, 2], coef[0, 3], coef[0, 4], coef[0, 5]
    c10, c11, c12, c13, c14, c15 = coef[1, 0], coef[1, 1], coef[1, 2], coef[1, 3], coef[1, 4], coef[1, 5]
    c20, c21, c22, c23, c24, c25 = coef[2, 0], coef[2, 1], coef[2, 2], coef[2, 3], coef[2, 4], coef[2, 5]
    c30, c31, c32, c33, c34, c35 = coef[3, 0], coef[3, 1], coef[3, 2], coef[3, 3], coef[3, 4], coef[3, 5]
    c40, c41, c42, c43, c44, c45 = coef[4, 0], coef[4, 1], coef[4, 2], coef[4, 3], coef[4, 4], coef[4, 5]
    c50, c51, c52, c53, c54, c55 = coef[5, 0], coef[5, 1], coef[5, 2], coef[5, 3], coef[5, 4], coef[5, 5]
    if n_in > 4 and n_out == 6:
        for q in range(np.uint64(run)):
            x0, x1, x2, x3, x4, x5 = src[s0 + q], src[s1 + q], src[s2 + q], src[s3 + q], src[s4 + q], src[s5 + q]
            dst[d0 + q] = c00 * x0 + c01 * x1 + c02 * x2 + c03 * x3 + c04 * x4 + c05 * x5
            dst[d1 + q] = c10 * x0 + c11 * x1 + c12 * x2 + c13 * x3 + c14 * x4 + c15 * x5
            dst[d2 + q] = c20 * x0 + c21 * x1 + c22 * x2 + c23 * x3 + c24 * x4 + c25 * x5
            dst[d3 + q] = c30 * x0 + c31 * x1 + c32 * x2 + c33 * x3 + c34 * x4 + c35 * x5
            dst[d4 + q] = c40 * x0 + c41 * x1 + c42 * x2 + c43 * x3 + c44 * x4 + c45 * x5
            dst[d5 + q] = c50 * x0 + c51 * x1 + c52 * x2 + c53 * x3 + c54 * x4 + c55 * x5
    elif n_in > 4:
        for q in range(np.uint64(run)):
            x0, x1, x2, x3, x4, x5 = src[s0 + q], src[s1 + q], src[s2 + q], src[s3 + q], src[s4 + q], src[s5 + q]
            dst[d0 + q] = c00 * x0 + c01 * x1 + c02 * x2 + c03 * x3 + c04 * x4 + c05 * x5
            dst[d1 + q] = c10 * x0 + c11 * x1 + c12 * x2 + c13 * x3 + c14 * x4 + c15 * x5
            dst[d2 + q] = c20 * x0 + c21 * x1 + c22 * x2 + c23 * x3 + c24 * x4 + c25 * x5
            dst[d3 + q] = c30 * x0 + c31 * x1 + c32 * x2 + c33 * x3 + c34 * x4 + c35 * x5
    elif n_out == 6:
        for q in range(np.uint64(run)):
            x0, x1, x2, x3 = src[s0 + q], src[s1 + q], src[s2 + q], src[s3 + q]
            dst[d0 + q] = c00 * x0 + c01 * x1 + c02 * x2 + c03 * x3
            dst[d1 + q] = c10 * x0 + c11 * x1 + c12 * x2 + c13 * x3
            dst[d2 + q] = c20 * x0 + c21 * x1 + c22 * x2 + c23 * x3
            dst[d3 + q] = c30 * x0 + c31 * x1 + c32 * x2 + c33 * x3
            dst[d4 + q] = c40 * x0 + c41 * x1 + c42 * x2 + c43 * x3
            dst[d5 + q] = c50 * x0 + c51 * x1 + c52 * x2 + c53 * x3
    elif n_out == 4:
        for q in range(np.uint64(run)):
            x0, x1, x2, x3 = src[s0 + q], src[s1 + q], src[s2 + q], src[s3 + q]
            dst[d0 + q] = c00 * x0 + c01 * x1 + c02 * x2 + c03 * x3
            dst[d1 + q] = c10 * x0 + c11 * x1 + c12 * x2 + c13 * x3
            dst[d2 + q] = c20 * x0 + c21 * x1 + c22 * x2 + c23 * x3
            dst[d3 + q] = c30 * x0 + c31 * x1 + c32 * x2 + c33 * x3
    else:
        for q in range(np.uint64(run)):
            x0, x1, x2, x3 = src[s0 + q], src[s1 + q], src[s2 + q], src[s3 + q]
            dst[d0 + q] = c00 * x0 + c01 * x1 + c02 * x2 + c03 * x3
            dst[d1 + q] = c10 * x0 + c11 * x1 + c12 * x2 + c13 * x3


def _wg_input(src: Array, bt: Array, v: Array, geo: Array, p0: int, p1: int) -> None:  # pragma: no cover
    h, w, off1, off2, t1n, t2n, m, channels, ncols = (geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6],
                                                      geo[7], geo[8])
    alpha = bt.shape[0]
    e_len = t2n + 1
    r_len = t1n + 1
    blk = r_len * e_len  # one polyphase block of the input
    run = np.uint64(t1n * e_len)  # one transformed block
    xpp = np.zeros(m * m * blk, dtype=v.dtype)
    soff = np.zeros(6, dtype=np.uint64)
    doff = np.zeros(6, dtype=np.uint64)
    cv = np.zeros((6, 6), dtype=v.dtype)  # Bᵀ, zero-padded to 6 × 6
    cv[:alpha, :alpha] = bt
    elo = min(e_len, (off2 + m - 1) // m) if off2 > 0 else 0  # interior: 0 <= e·m + pc − off2 < w for every pc
    ehi = max(elo, min(e_len, (w + off2 - m) // m + 1))
    hv = np.zeros(alpha * m * t1n * e_len + 1, dtype=v.dtype)  # one slack entry: read by junk columns only
    vl = np.empty(alpha * alpha * t1n * e_len, dtype=v.dtype)
    for p in range(p0, p1):
        n = p // channels
        c = p - n * channels
        for pr in range(m):  # gather by phase, zeros outside the data
            for b in range(r_len):
                r = b * m + pr - off1
                base = (pr * m * r_len + b) * e_len  # phase pc adds pc·blk
                if r < 0 or r >= h:
                    for pc in range(m):
                        for e in range(e_len):
                            xpp[base + pc * blk + e] = 0
                    continue
                srow = (p * h + r) * w - off2  # + e·m + pc
                for pc in range(m):  # the edges, where some phases fall outside the data
                    for e in range(elo):
                        col = e * m + pc - off2
                        xpp[base + pc * blk + e] = src[srow + e * m + pc] if 0 <= col < w else 0
                    for e in range(ehi, e_len):
                        col = e * m + pc - off2
                        xpp[base + pc * blk + e] = src[srow + e * m + pc] if 0 <= col < w else 0
                if ehi > elo:  # the interior, every phase inside: one de-interleaving pass (vectorised for m = 2, 4)
                    ub, us, ublk = np.uint64(base), np.uint64(srow), np.uint64(blk)
                    if m == 4:
                        for e in range(np.uint64(elo), np.uint64(ehi)):
                            xpp[ub + e] = src[us + np.uint64(4) * e]
                            xpp[ub + ublk + e] = src[us + np.uint64(4) * e + np.uint64(1)]
                            xpp[ub + np.uint64(2) * ublk + e] = src[us + np.uint64(4) * e + np.uint64(2)]
                            xpp[ub + np.uint64(3) * ublk + e] = src[us + np.uint64(4) * e + np.uint64(3)]
                    elif m == 2:
                        for e in range(np.uint64(elo), np.uint64(ehi)):
                            xpp[ub + e] = src[us + np.uint64(2) * e]
                            xpp[ub + ublk + e] = src[us + np.uint64(2) * e + np.uint64(1)]
                    else:
                        for pc in range(m):
                            for e in range(elo, ehi):
                                xpp[base + pc * blk + e] = src[srow + e * m + pc]
        for pc in range(m):  # vertical half: hv[j][pc] = Σ_i Bᵀ[j, i] xpp[i mod m][pc] shifted i // m rows
            for i in range(alpha):
                soff[i] = np.uint64(((i % m) * m + pc) * blk + (i // m) * e_len)
            for j in range(alpha):
                doff[j] = np.uint64((j * m + pc) * t1n * e_len)
            _mix(xpp, soff, hv, doff, cv, alpha, alpha, run)
        for j in range(alpha):  # horizontal half: vl[j, k] = Σ_l Bᵀ[k, l] hv[j][l mod m] shifted l // m columns
            for ll in range(alpha):
                soff[ll] = np.uint64((j * m + ll % m) * t1n * e_len + ll // m)
            for k in range(alpha):
                doff[k] = np.uint64((j * alpha + k) * t1n * e_len)
            _mix(hv, soff, vl, doff, cv, alpha, alpha, run)
        for jk in range(alpha * alpha):  # into V without the junk column
            dst = ((jk * channels + c) * ncols + n * t1n * t2n)
            for a in range(t1n):
                ud, us = np.uint64(dst + a * t2n), np.uint64((jk * t1n + a) * e_len)
                for t in range(np.uint64(t2n)):
                    v[ud + t] = vl[us + t]


def _wg_output(mm: Array, at: Array, y: Array, geo: Array, bias: Array, p0: int, p1: int) -> None:  # pragma: no cover
    h, w, t1n, t2n, m, channels, ncols = geo[0], geo[1], geo[4], geo[5], geo[6], geo[7], geo[8]
    with_bias = bias.shape[0] == channels  # else no bias (an empty array): nothing added, not even a zero
    alpha = at.shape[1]
    e_len = t2n + 1
    size = t1n * e_len
    run = np.uint64(size)
    ho = np.empty(alpha * m * size, dtype=y.dtype)
    ml = np.zeros(alpha * alpha * size, dtype=y.dtype)  # column T2 of each row stays zero
    soff = np.zeros(6, dtype=np.uint64)
    doff = np.zeros(6, dtype=np.uint64)
    ca = np.zeros((6, 6), dtype=y.dtype)  # Aᵀ, zero-padded to 6 × 6
    ca[:m, :alpha] = at
    yo = np.empty(m * m * size, dtype=y.dtype)
    for p in range(p0, p1):
        n = p // channels
        o = p - n * channels
        for jk in range(alpha * alpha):  # M's rows of this plane, with a zero junk column
            src = ((jk * channels + o) * ncols + n * t1n * t2n)
            for a in range(t1n):
                ud, us = np.uint64((jk * t1n + a) * e_len), np.uint64(src + a * t2n)
                for t in range(np.uint64(t2n)):
                    ml[ud + t] = mm[us + t]
        for j in range(alpha):  # horizontal half: ho[j][b] = Σ_k Aᵀ[b, k] M[j, k]
            for k in range(alpha):
                soff[k] = np.uint64((j * alpha + k) * size)
            for b in range(m):
                doff[b] = np.uint64((j * m + b) * size)
            _mix(ml, soff, ho, doff, ca, alpha, m, run)
        for b in range(m):  # vertical half: yo[i][b] = Σ_j Aᵀ[i, j] ho[j][b]
            for j in range(alpha):
                soff[j] = np.uint64((j * m + b) * size)
            for i in range(m):
                doff[i] = np.uint64((i * m + b) * size)
            _mix(ho, soff, yo, doff, ca, alpha, m, run)
        beta = bias[o] if with_bias else y.dtype.type(0)
        for a in range(t1n):  # scatter, clipped to the output (the bias added as it is written: y + b, one rounding)
            for i in range(m):
                r = a * m + i
                if r >= h:
                    break
                yrow = (p * h + r) * w
                for b in range(m):
                    top = min((w - 1 - b) // m + 1 if w - 1 - b >= 0 else 0, t2n)
                    src = (i * m + b) * size + a * e_len
                    if with_bias:
                        for e in range(top):
                            y[yrow + e * m + b] = yo[src + e] + beta
                    else:
                        for e in range(top):
                            y[yrow + e * m + b] = yo[src + e]


def _wg_grad(g: Array, at: Array, gt: Array, geo: Array, p0: int, p1: int) -> None:  # pragma: no cover
    h, w, t1n, t2n, m, channels, ncols = geo[0], geo[1], geo[4], geo[5], geo[6], geo[7], geo[8]
    alpha = at.shape[1]
    e_len = t2n + 1
    size = t1n * e_len
    run = np.uint64(size)
    gpp = np.zeros(m * m * size, dtype=gt.dtype)  # [pr][pc][a][e]; column e = T2 stays zero
    hg = np.empty(alpha * m * size, dtype=gt.dtype)
    gl = np.empty(alpha * alpha * size, dtype=gt.dtype)
    soff = np.zeros(6, dtype=np.uint64)  # unused inputs read offset 0 (finite) with zero coefficients
    doff = np.zeros(6, dtype=np.uint64)
    cg = np.zeros((6, 6), dtype=gt.dtype)  # A = (Aᵀ)ᵀ, zero-padded to 6 × 6
    cg[:alpha, :m] = at.T
    for p in range(p0, p1):
        n = p // channels
        o = p - n * channels
        for pr in range(m):  # gather by phase, zeros outside
            for a in range(t1n):
                r = a * m + pr
                for pc in range(m):
                    base = ((pr * m + pc) * t1n + a) * e_len
                    top = 0 if r >= h else min((w - 1 - pc) // m + 1 if w - 1 - pc >= 0 else 0, t2n)
                    grow = (p * h + r) * w + pc
                    for e in range(top):
                        gpp[base + e] = g[grow + e * m]
                    for e in range(top, t2n):
                        gpp[base + e] = 0
        for pc in range(m):  # vertical half: hg[j][pc] = Σ_i A[j, i] gpp[i][pc]
            for i in range(m):
                soff[i] = np.uint64((i * m + pc) * size)
            for j in range(alpha):
                doff[j] = np.uint64((j * m + pc) * size)
            _mix(gpp, soff, hg, doff, cg, m, alpha, run)
        for j in range(alpha):  # horizontal half: gl[j, k] = Σ_b A[k, b] hg[j][b]
            for b in range(m):
                soff[b] = np.uint64((j * m + b) * size)
            for k in range(alpha):
                doff[k] = np.uint64((j * alpha + k) * size)
            _mix(hg, soff, gl, doff, cg, m, alpha, run)
        for jk in range(alpha * alpha):  # into Gᵀ without the junk column
            dst = ((jk * channels + o) * ncols + n * t1n * t2n)
            for a in range(t1n):
                ud, us = np.uint64(dst + a * t2n), np.uint64((jk * t1n + a) * e_len)
                for t in range(np.uint64(t2n)):
                    gt[ud + t] = gl[us + t]


_SOURCES: dict[str, Callable[..., None]] = {"input": _wg_input, "output": _wg_output, "grad": _wg_grad}


def _kernel(name: str) -> Callable[..., None]:
    """The compiled kernel ``name``, compiled (or loaded from the cache) on first use; imports Numba."""
    kernel = _compiled.get(name)
    if kernel is None:
        with _lock:
            kernel = _compiled.get(name)
            if kernel is None:
                import numba  # type: ignore[import-untyped, unused-ignore]

                jit = numba.njit(cache=True, nogil=True, fastmath={"contract"})
                if not hasattr(globals()["_mix"], "py_func"):  # the kernels call the compiled helper
                    globals()["_mix"] = jit(_mix)
                kernel = jit(_SOURCES[name])
                _compiled[name] = kernel
    return kernel


def _run(name: str, args: tuple[Any, ...], total: int, elements: int, split: bool) -> None:
    """Run kernel ``name`` over planes ``[0, total)``, split on the thread pool or (``split=False``: the caller
    already runs on one of its threads) on the calling thread; time its first call per dtype."""
    kernel = _kernel(name)
    key = f"{name}[{args[0].dtype}]"
    if key not in COMPILE_SECONDS:
        with _lock:
            if key not in COMPILE_SECONDS:
                t0 = time.perf_counter()
                kernel(*args, 0, 0)  # compiles (or loads from the cache) on an empty range
                COMPILE_SECONDS[key] = time.perf_counter() - t0
    if not split:
        kernel(*args, 0, total)
        return

    def work(a: int, b: int) -> None:
        kernel(*args, a, b)

    split_run(total, elements, work)


def columns(tiles: tuple[int, int]) -> int:
    """Columns of the transformed tiles per sample: ``T1·T2``, as for the NumPy transforms."""
    return tiles[0] * tiles[1]


def _geo(h: int, w: int, offset: tuple[int, int], tiles: tuple[int, int], m: int, channels: int,
         ncols: int) -> Array:
    return np.array([h, w, offset[0], offset[1], tiles[0], tiles[1], m, channels, ncols], dtype=np.int64)


def input_transform(src: Array, bt: Array, v: Array, offset: tuple[int, int], tiles: tuple[int, int], m: int,
                    split: bool = True) -> None:
    """``v[α·α', c, n·T1·T2 + a·T2 + t] = (Bᵀ d_{a,t} B)[α, α']`` for ``src (nb, C, H, W)`` placed at ``offset``
    in a zero grid.

    ``v`` is ``(α², C, nb·T1·T2)``, ``bt`` the ``α × α`` matrix ``Bᵀ`` and
    ``m`` the outputs per tile and dimension (tile ``(a, t)`` starts at ``m·(a, t)``).
    """
    nb, c, h, w = src.shape
    geo = _geo(h, w, offset, tiles, m, c, v.shape[2])
    _run("input", (np.ascontiguousarray(src).reshape(-1), bt, v.reshape(-1), geo), nb * c, v.size, split)


def output_transform(mm: Array, at: Array, y: Array, tiles: tuple[int, int], split: bool = True,
                     bias: Array | None = None) -> None:
    """``y[n, o, m·(a, t) + (i, b)] = (Aᵀ M_{a,t} A)[i, b] (+ bias[o])`` for ``mm (α², O, nb·T1·T2)``, clipped to
    ``y (nb, O, H, W)`` (contiguous); ``bias`` ``(O,)`` in ``y``'s dtype is added as each plane is written."""
    nb, o, h, w = y.shape
    geo = _geo(h, w, (0, 0), tiles, at.shape[0], o, mm.shape[2])
    b = np.empty(0, dtype=y.dtype) if bias is None else np.ascontiguousarray(bias, dtype=y.dtype).reshape(-1)
    _run("output", (mm.reshape(-1), at, y.reshape(-1), geo, b), nb * o, mm.size, split)


def grad_transform(g: Array, at: Array, gt: Array, tiles: tuple[int, int], split: bool = True) -> None:
    """``gt[α·α', o, n·T1·T2 + a·T2 + t] = (A g_{a,t} Aᵀ)[α, α']`` for the disjoint ``m × m`` tiles of
    ``g (nb, O, H, W)``."""
    nb, o, h, w = g.shape
    geo = _geo(h, w, (0, 0), tiles, at.shape[0], o, gt.shape[2])
    _run("grad", (np.ascontiguousarray(g).reshape(-1), at, gt.reshape(-1), geo), nb * o, gt.size, split)


__all__ = ["COMPILE_SECONDS", "available", "columns", "grad_transform", "input_transform", "output_transform"]
