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

The cost model (:func:`fft_is_cheaper`), in the manner of
``scipy.signal.choose_conv_method``, compares estimated times in units of
one GEMM flop: direct ``2·N·O·Q·(C/G)·K`` plus the im2col copy, against
transforms ``c_fft·B·log₂B`` per transformed block plus
``c_mix`` per complex multiply-add of the per-frequency products. The
constants were measured on the benchmark machine (OpenBLAS float32 GEMM
≈ 160 GFLOP/s; ``scipy.fft`` ≈ 0.55 ns per point and ``log₂`` of the length,
``numpy.fft`` ≈ 1.3–4.5 ns; one complex multiply-add of the products ≈ 0.25 ns).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from ._config import batch_chunks
from ._padding import pad, pad_adjoint
from ._validate import Geometry, prod
from ._windows import window_starts

Array = npt.NDArray[Any]

COPY_FLOPS_PER_ELEMENT = 30.0
"""Cost of copying one element into the im2col matrix, in GEMM flops."""

MIX_FLOPS_PER_MAC = 40.0
"""Cost of one complex multiply-add of the per-frequency products, in GEMM flops."""

FFT_FLOPS_SCIPY = 90.0
"""Cost of ``scipy.fft`` per transformed point and ``log₂`` of the block length, in GEMM flops."""

FFT_FLOPS_NUMPY = 300.0
"""Cost of ``numpy.fft`` per transformed point and ``log₂`` of the block length, in GEMM flops."""

MIN_DIRECT_COST = 2e7
"""Direct contractions cheaper than this (about 0.1 ms) are never worth planning an FFT for."""

CALL_FLOPS = 2e6
"""Fixed cost of one FFT contraction (Python and transform set-up), in GEMM flops (about 12 µs)."""


def fast_length(n: int) -> int:
    """The smallest ``2^a·3^b·5^c ≥ n``: a length pocketfft transforms quickly.

    Examples
    --------
    >>> [fast_length(n) for n in (1, 7, 17, 97, 101)]
    [1, 8, 18, 100, 108]
    """
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _fft_module() -> Any:
    """``scipy.fft`` when SciPy is installed, else ``numpy.fft`` (same call signatures)."""
    try:
        import scipy.fft
    except ImportError:  # pragma: no cover - SciPy is installed wherever the tests run
        return np.fft
    return scipy.fft


# ----------------------------------------------------------------------------- the block plan


class Plan(NamedTuple):
    """Block lengths of one overlap-save correlation, per spatial dimension."""

    block: tuple[int, ...]  # B: transform length
    step: tuple[int, ...]  # B' = B − κ + 1: outputs per block
    span: tuple[int, ...]  # κ

    def blocks(self, length: tuple[int, ...]) -> tuple[int, ...]:
        """Blocks needed for ``length`` outputs."""
        return tuple(-(-q // b) for q, b in zip(length, self.step))

    def freqs(self) -> int:
        """Frequencies per block (real transforms keep half the last axis)."""
        return prod(self.block[:-1]) * (self.block[-1] // 2 + 1)


def _candidates(span: int, length: int) -> list[int]:
    """Block lengths worth trying for one dimension: a few multiples of the span, or one block."""
    whole = fast_length(length + span - 1)
    found = {min(whole, fast_length(m * span)) for m in (2, 4, 8, 16)} | {whole}
    return sorted(b for b in found if b >= span)


def _plan_cost(geom: Geometry, block: tuple[int, ...], fft_flops: float) -> float:
    span = geom.span
    step = tuple(b - sp + 1 for b, sp in zip(block, span))
    full = tuple(p - sp + 1 for p, sp in zip(geom.padded_size, span))
    nblk = prod(tuple(-(-q // st) for q, st in zip(full, step)))
    points = prod(block)
    freqs = prod(block[:-1]) * (block[-1] // 2 + 1)
    cg = geom.c_in // geom.groups
    planes = geom.n * (geom.c_in + geom.c_out) * nblk + geom.c_out * cg
    transforms = fft_flops * planes * points * math.log2(max(2, points))
    mixing = MIX_FLOPS_PER_MAC * geom.n * geom.c_out * cg * nblk * freqs
    return transforms + mixing + CALL_FLOPS


@functools.lru_cache(maxsize=128)
def plan(geom: Geometry) -> Plan:
    """The block lengths of least estimated cost (every combination of :func:`_candidates`)."""
    fft_flops = FFT_FLOPS_SCIPY if _fft_module() is not np.fft else FFT_FLOPS_NUMPY
    full = tuple(p - sp + 1 for p, sp in zip(geom.padded_size, geom.span))
    options = [_candidates(sp, q) for sp, q in zip(geom.span, full)]
    best = min(itertools.product(*options), key=lambda b: _plan_cost(geom, b, fft_flops))
    return Plan(best, tuple(b - sp + 1 for b, sp in zip(best, geom.span)), geom.span)


def fft_cost(geom: Geometry) -> float:
    """Estimated cost of one FFT contraction, in GEMM flops."""
    fft_flops = FFT_FLOPS_SCIPY if _fft_module() is not np.fft else FFT_FLOPS_NUMPY
    return _plan_cost(geom, plan(geom).block, fft_flops)


def direct_cost(geom: Geometry) -> float:
    """Estimated cost of one im2col + GEMM contraction, in GEMM flops."""
    cg, k, q = geom.c_in // geom.groups, prod(geom.kernel), prod(geom.out_size)
    return 2.0 * geom.n * geom.c_out * q * cg * k + COPY_FLOPS_PER_ELEMENT * geom.n * geom.c_in * k * q


def fft_is_cheaper(geom: Geometry, dtype: np.dtype[Any]) -> bool:
    """The ``method="auto"`` rule: FFT when its estimated cost is below the direct one.

    Only floating and complex data are considered, with kernels of more than
    8 taps: below that the direct route always won in the measurements.
    """
    if prod(geom.kernel) <= 8 or np.dtype(dtype).kind not in "fc" or geom.n == 0:
        return False
    direct = direct_cost(geom)
    if direct < MIN_DIRECT_COST:
        return False
    return fft_cost(geom) < direct


# ----------------------------------------------------------------------------- blocked correlation


def _is_real(dtype: np.dtype[Any]) -> bool:
    return np.dtype(dtype).kind != "c"


def _transform(a: Array, p: Plan, real: bool) -> Array:
    """Transform of length ``p.block`` over the trailing ``d`` axes."""
    fft = _fft_module()
    axes = tuple(range(a.ndim - len(p.block), a.ndim))
    out: Array = (fft.rfftn if real else fft.fftn)(a, s=p.block, axes=axes)
    return out


def _inverse(a: Array, p: Plan, real: bool) -> Array:
    fft = _fft_module()
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


def _full_size(geom: Geometry) -> tuple[int, ...]:
    """``Q̃ = P − κ + 1``, the stride-1 output size."""
    return tuple(p - sp + 1 for p, sp in zip(geom.padded_size, geom.span))


def _upsampled(g: Array, geom: Geometry) -> Array:
    """``g̃``: ``s − 1`` zeros between the entries of ``g``, shape ``(nb, O, *Q̃)``.

    ``Q̃`` can exceed ``(Q − 1)·s + 1`` (a transposed convolution's output
    padding): the tail is zero.
    """
    full = _full_size(geom)
    if g.shape[2:] == full:
        return g
    gu = np.zeros(g.shape[:2] + full, dtype=g.dtype)
    gu[(slice(None), slice(None)) + window_starts(geom)] = g
    return gu


def _per_sample_bytes(geom: Geometry, p: Plan, dtype: np.dtype[Any]) -> int:
    nblk = prod(p.blocks(geom.padded_size))
    return 4 * (geom.c_in + geom.c_out) * nblk * p.freqs() * dtype.itemsize


# ----------------------------------------------------------------------------- the three contractions


def fft_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``y = conv(x, w)`` by FFT (any stride, dilation, groups, padding mode)."""
    n, dtype = x.shape[0], np.result_type(x, w)
    real, p, full = _is_real(dtype), plan(geom), _full_size(geom)
    nblk = p.blocks(full)
    h_f = _kernel_spectra(_dilated_kernel(w, geom).swapaxes(0, 1), p, real)  # (C/G, O, *F)
    h_f = h_f.reshape((geom.c_in // geom.groups, geom.groups, -1) + h_f.shape[2:]).swapaxes(0, 1)
    h_f = h_f.reshape((geom.c_in, -1) + h_f.shape[3:])  # (C, O/G, *F), input channel first
    y = np.empty((n, geom.c_out) + geom.out_size, dtype=dtype)
    keep = window_starts(geom)
    for n0, n1 in batch_chunks(n, _per_sample_bytes(geom, p, dtype)):
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
    for n0, n1 in batch_chunks(n, _per_sample_bytes(geom, p, dtype)):
        a = np.pad(_upsampled(g[n0:n1], geom), rim)
        r = _inverse(_mix(_block_spectra(a, p, nblk, real), h_f, geom.groups), p, real)
        gx[n0:n1] = pad_adjoint(_assemble(r, p, geom.padded_size), geom)
    return gx


def fft_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``gw[o, c, k] = Σ_{n, q} g̃[n, o, q]·xp[n, c, q + δ·k]``, block by block of ``q``, by FFT."""
    dtype = np.result_type(g, x)
    real, p, full = _is_real(dtype), plan(geom), _full_size(geom)
    nblk = p.blocks(full)
    d, cg, og = geom.d, geom.c_in // geom.groups, geom.c_out // geom.groups
    acc: Array | None = None
    for n0, n1 in batch_chunks(x.shape[0], _per_sample_bytes(geom, p, dtype)):
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

