"""Convolution by FFT (overlap-save): the three contractions as blocked correlations.

With ``xp`` the padded input, ``w̃`` the dilated kernel (``δ − 1`` zeros
between taps, span ``κ = δ(K − 1) + 1``), ``g̃`` the upstream gradient with
``s − 1`` zeros between entries and ``Q̃ = P − κ + 1`` the stride-1 output
size, per spatial dimension all three contractions are *valid correlations*
``r[q] = Σ_t a[q + t]·k[t]``:

* forward      ``ỹ = corr(xp, w̃)``, ``y = ỹ[::s]``;
* input grad   ``gxp = corr(pad(g̃, κ − 1), flip(w̃))`` with the channel roles exchanged;
* weight grad  ``gw̃[t] = Σ_q xp[q + t]·g̃[q]``, ``gw = gw̃[::δ]``: the same correlation with
  ``g̃`` as the (long) kernel, summed over blocks of ``q``.

A valid correlation is computed block by block (overlap-save, as
``scipy.signal.oaconvolve``): block ``b`` reads ``a[b·B' : b·B' + B]``
and produces ``r[b·B' : (b + 1)·B']`` with ``B' = B − κ + 1``. In a
transform of length ``B`` the circular correlation with ``k`` is the
product ``A · H`` with ``H`` the transform of ``k`` reversed circularly
(``h[u] = k[−u mod B]``), and no index of the kept part wraps around. The
channel contraction is then one small matrix product per frequency, e.g.
``Y[f, (n, b), o] = Σ_c X[f, (n, b), c]·H[f, c, o]``. Real data uses real
transforms; ``scipy.fft`` is used when SciPy is installed (about 2–5× faster
here than ``numpy.fft``), ``numpy.fft`` otherwise.

The block lengths and the route's cost and workspace are estimated in
:mod:`convgrad.engine.cost`. The route is used for finite data only: a NaN or
infinity in one block would spread over the whole block in the transforms,
and :mod:`convgrad.engine.dispatch` sends such data to the direct routes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from .._geometry import Geometry, prod
from .cost import Plan, fft_fixed_bytes, fft_module, fft_sample_bytes, plan
from .padding import pad, pad_adjoint
from .state import batch_chunks, get_workspace_budget
from .windows import window_starts

Array = npt.NDArray[Any]

# ----------------------------------------------------------------------------- blocked correlation


def _is_real(dtype: np.dtype[Any]) -> bool:
    return np.dtype(dtype).kind != "c"


def _transform(a: Array, p: Plan, real: bool) -> Array:
    """Transform of length ``p.block`` over the trailing ``d`` axes."""
    fft = fft_module()
    axes = tuple(range(a.ndim - len(p.block), a.ndim))
    out: Array = (fft.rfftn if real else fft.fftn)(a, s=p.block, axes=axes)
    return out


def _inverse(a: Array, p: Plan, real: bool) -> Array:
    fft = fft_module()
    axes = tuple(range(a.ndim - len(p.block), a.ndim))
    out: Array = (fft.irfftn if real else fft.ifftn)(a, s=p.block, axes=axes)
    return out


def _block_spectra(a: Array, p: Plan, nblk: tuple[int, ...], real: bool) -> Array:
    """Transforms of the overlapping blocks ``a[b·B' : b·B' + B]``: ``(nb, ch, *nblk, *F)``.

    ``a`` is zero-extended (or cut) to ``(nblk − 1)·B' + B`` per dimension.
    """
    d = len(p.block)
    need = tuple((m - 1) * st + b for m, st, b in zip(nblk, p.step, p.block))
    if a.shape[2:] != need:
        ext = np.zeros(a.shape[:2] + need, dtype=a.dtype)
        common = tuple(slice(0, min(s, t)) for s, t in zip(a.shape[2:], need))
        ext[(slice(None), slice(None)) + common] = a[(slice(None), slice(None)) + common]
        a = ext
    view = sliding_window_view(a, p.block, axis=tuple(range(2, 2 + d)))
    view = view[(slice(None), slice(None)) + tuple(slice(None, None, st) for st in p.step)]
    return _transform(view, p, real)


def _kernel_spectra(k: Array, p: Plan, real: bool) -> Array:
    """``H``: transforms of ``k`` reversed circularly, ``h[u] = k[−u mod B]``: ``(A, B_, *F)``."""
    d = len(p.block)
    h = np.zeros(k.shape[:2] + p.block, dtype=k.dtype)
    h[(slice(None), slice(None)) + tuple(slice(0, s) for s in k.shape[2:])] = k
    h = np.roll(h[(slice(None), slice(None)) + (slice(None, None, -1),) * d], 1, axis=tuple(range(2, 2 + d)))
    return _transform(h, p, real)


def _mix(a_f: Array, h_f: Array, groups: int) -> Array:
    """``R[n, γ·O' + o, b, f] = Σ_c A[n, γ·C' + c, b, f] · H[γ·C' + c, o, f]``.

    ``a_f (nb, G·C', *nblk, *F)``, ``h_f (G·C', O', *F)`` (the kernel's
    input-channel axis first) -> ``(nb, G·O', *nblk, *F)``, as one small
    matrix product per group and frequency.
    """
    nb, ch = a_f.shape[:2]
    d = h_f.ndim - 2
    nblk, fshape = a_f.shape[2 : 2 + d], a_f.shape[2 + d :]
    cg, og = ch // groups, h_f.shape[1]
    # (nb, G, C', B, F) -> (G, F, nb·B, C')
    a_m = np.ascontiguousarray(a_f.reshape(nb, groups, cg, prod(nblk), -1).transpose(1, 4, 0, 3, 2))
    a_m = a_m.reshape(groups, -1, nb * prod(nblk), cg)
    # (G, C', O', F) -> (G, F, C', O')
    h_m = np.ascontiguousarray(h_f.reshape(groups, cg, og, -1).transpose(0, 3, 1, 2))
    r = np.matmul(a_m, h_m)  # (G, F, nb·B, O')
    r = r.reshape(groups, -1, nb, prod(nblk), og).transpose(2, 0, 4, 3, 1)  # (nb, G, O', B, F)
    out: Array = r.reshape((nb, groups * og) + nblk + fshape)
    return out


def _assemble(r_blocks: Array, p: Plan, length: tuple[int, ...]) -> Array:
    """Keep ``[:B']`` of every block and lay the blocks end to end: ``(nb, ch, *length)``."""
    d = len(p.block)
    nb, ch = r_blocks.shape[:2]
    nblk = r_blocks.shape[2 : 2 + d]
    kept = r_blocks[(Ellipsis,) + tuple(slice(0, st) for st in p.step)]  # (nb, ch, *nblk, *B')
    order = (0, 1) + tuple(x for i in range(d) for x in (2 + i, 2 + d + i))
    joined = kept.transpose(order).reshape((nb, ch) + tuple(m * st for m, st in zip(nblk, p.step)))
    out: Array = joined[(slice(None), slice(None)) + tuple(slice(0, q) for q in length)]
    return out


def _dilated_kernel(w: Array, geom: Geometry) -> Array:
    """``w̃``: ``δ − 1`` zeros between the taps, shape ``(O, C/G, *κ)``."""
    if all(dl == 1 for dl in geom.dilation):
        return w
    wd = np.zeros(w.shape[:2] + geom.span, dtype=w.dtype)
    wd[(slice(None), slice(None)) + tuple(slice(None, None, dl) for dl in geom.dilation)] = w
    return wd


def _upsampled(g: Array, geom: Geometry) -> Array:
    """``g̃``: ``s − 1`` zeros between the entries of ``g``, shape ``(nb, O, *Q̃)``.

    ``Q̃`` can exceed ``(Q − 1)·s + 1`` (a transposed convolution's output
    padding): the tail is zero.
    """
    full = geom.full_size
    if g.shape[2:] == full:
        return g
    gu = np.zeros(g.shape[:2] + full, dtype=g.dtype)
    gu[(slice(None), slice(None)) + window_starts(geom)] = g
    return gu


def _chunks(n: int, geom: Geometry, dtype: np.dtype[Any]) -> Iterator[tuple[int, int]]:
    """Batch chunks whose spectra fit in what the budget leaves beside the kernel spectra."""
    itemsize = np.dtype(dtype).itemsize
    room = max(1, get_workspace_budget() - fft_fixed_bytes(geom, itemsize))
    return batch_chunks(n, fft_sample_bytes(geom, itemsize), room)


# ----------------------------------------------------------------------------- the three contractions


def fft_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``y = conv(x, w)`` by FFT (any stride, dilation, groups, padding mode)."""
    n, dtype = x.shape[0], np.result_type(x, w)
    real, p, full = _is_real(dtype), plan(geom), geom.full_size
    nblk = p.blocks(full)
    h_f = _kernel_spectra(_dilated_kernel(w, geom).swapaxes(0, 1), p, real)  # (C/G, O, *F)
    h_f = h_f.reshape((geom.c_in // geom.groups, geom.groups, -1) + h_f.shape[2:]).swapaxes(0, 1)
    h_f = h_f.reshape((geom.c_in, -1) + h_f.shape[3:])  # (C, O/G, *F), input channel first
    y = np.empty((n, geom.c_out) + geom.out_size, dtype=dtype)
    keep = window_starts(geom)
    for n0, n1 in _chunks(n, geom, dtype):
        a_f = _block_spectra(pad(x[n0:n1], geom), p, nblk, real)
        r = _inverse(_mix(a_f, h_f, geom.groups), p, real)
        y[n0:n1] = _assemble(r, p, full)[(slice(None), slice(None)) + keep]
    return y


def fft_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``gx = pad_adjoint(corr(pad(g̃, κ − 1), flip(w̃)))``, channels exchanged, by FFT."""
    n, dtype = g.shape[0], np.result_type(g, w)
    real, p = _is_real(dtype), plan(geom)
    nblk = p.blocks(geom.padded_size)
    wd = _dilated_kernel(w, geom)
    h_f = _kernel_spectra(wd[(slice(None), slice(None)) + (slice(None, None, -1),) * geom.d], p, real)  # (O, C/G, *F)
    gx = np.empty((n, geom.c_in) + geom.in_size, dtype=dtype)
    rim = ((0, 0), (0, 0)) + tuple((sp - 1, sp - 1) for sp in geom.span)
    for n0, n1 in _chunks(n, geom, dtype):
        a = np.pad(_upsampled(g[n0:n1], geom), rim)
        r = _inverse(_mix(_block_spectra(a, p, nblk, real), h_f, geom.groups), p, real)
        gx[n0:n1] = pad_adjoint(_assemble(r, p, geom.padded_size), geom)
    return gx


def fft_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``gw[o, c, k] = Σ_{n, q} g̃[n, o, q]·xp[n, c, q + δ·k]``, block by block of ``q``, by FFT."""
    dtype = np.result_type(g, x)
    real, p, full = _is_real(dtype), plan(geom), geom.full_size
    nblk = p.blocks(full)
    d, cg, og = geom.d, geom.c_in // geom.groups, geom.c_out // geom.groups
    acc: Array | None = None
    for n0, n1 in _chunks(x.shape[0], geom, dtype):
        nb = n1 - n0
        x_f = _block_spectra(pad(x[n0:n1], geom), p, nblk, real)  # (nb, C, *nblk, *F)
        # g̃ cut into blocks of B' (zero tail), each a kernel: (nb, O, *nblk, *B')
        gu = np.zeros((nb, geom.c_out) + tuple(m * st for m, st in zip(nblk, p.step)), dtype=dtype)
        gu[(slice(None), slice(None)) + tuple(slice(0, q) for q in full)] = _upsampled(g[n0:n1], geom)
        split = gu.reshape((nb, geom.c_out) + tuple(v for m, st in zip(nblk, p.step) for v in (m, st)))
        order = (0, 1) + tuple(range(2, 2 + 2 * d, 2)) + tuple(range(3, 3 + 2 * d, 2))
        g_blocks = split.transpose(order).reshape((nb * geom.c_out * prod(nblk), 1) + p.step)
        h_f = _kernel_spectra(g_blocks, p, real).reshape((nb, geom.c_out, prod(nblk), -1))
        # GW[γ, f, o, c] = Σ_{n, b} H[n, γ·O' + o, b, f] · X[n, γ·C' + c, b, f]
        h_m = h_f.reshape(nb, geom.groups, og, prod(nblk), -1).transpose(1, 4, 2, 0, 3)
        h_m = h_m.reshape(geom.groups, -1, og, nb * prod(nblk))
        x_m = x_f.reshape(nb, geom.groups, cg, prod(nblk), -1).transpose(1, 4, 0, 3, 2)
        x_m = np.ascontiguousarray(x_m).reshape(geom.groups, -1, nb * prod(nblk), cg)
        part = np.matmul(np.ascontiguousarray(h_m), x_m)  # (G, F, O', C')
        acc = part if acc is None else acc + part
    if acc is None:  # an empty batch
        return np.zeros(geom.weight_shape, dtype=dtype)
    fshape = p.block[:-1] + ((p.block[-1] // 2 + 1,) if real else (p.block[-1],))
    gw_f = acc.transpose(0, 2, 3, 1).reshape((geom.c_out, cg) + fshape)
    gw_full = _inverse(gw_f, p, real)  # (O, C/G, *B)
    keep = tuple(slice(0, sp, dl) for sp, dl in zip(geom.span, geom.dilation))
    return np.ascontiguousarray(gw_full[(slice(None), slice(None)) + keep])

