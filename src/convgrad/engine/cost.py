"""The cost model: what each route does, counted in GEMM flops and bytes of workspace.

Times are estimated in units of one GEMM flop (OpenBLAS float32 GEMM ≈ 160
GFLOP/s on the benchmark machine), in the manner of
``scipy.signal.choose_conv_method``:

* **gemm** (im2col + GEMM): ``2·N·O·Q·(C/G)·K`` flops plus
  :data:`COPY_FLOPS_PER_ELEMENT` per element of the window matrix ``N·C·K·Q``;
* **grid** (stride 1): the same over every padded position ``P`` instead of
  ``Q`` (the junk positions ``q ≥ Q`` are computed too), with contiguous
  copies at :data:`GRID_COPY_FLOPS_PER_ELEMENT`;
* **implicit** (stride 1, in-place GEMMs per kernel offset on the padded grid): the
  grid's flops at :data:`IMPLICIT_FLOP_FACTOR` plus the grid copies (:func:`implicit_cost`);
* **winograd**: in :mod:`convgrad.engine.winograd` (``variant_cost``), beside
  its variants;
* **fft** (overlap-save): ``c_fft·B·log₂B`` per transformed block plus
  :data:`MIX_FLOPS_PER_MAC` per complex multiply-add of the per-frequency
  products, for the block lengths :func:`plan` picks.

Workspace (scratch bytes, counted against the budget): gemm ``C·K·Q`` elements
per sample (one output position's windows, ``C·K``, at least: a sample is
split over output positions); grid ``C·K·P`` per sample (never split: the
route is not used when one sample does not fit). Both routes then work in
blocks of :func:`block_positions` positions, about :data:`BLOCK_BYTES` of
windows each, so their scratch is one block, never more than the budget; fft the spectra of one
sample's blocks plus the kernel spectra and the weight-gradient accumulator. The per-call
temporaries proportional to the call's own arrays (the padded chunk, a GEMM's output, a transposed
gradient) are not scratch and come on top: under tracemalloc the gemm and grid routes peaked at up to
1.5× a small (4 MiB) budget.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, NamedTuple

import numpy as np

from .._geometry import Geometry, prod
from .state import cache

COPY_FLOPS_PER_ELEMENT = 30.0
"""Cost of copying one element into the im2col matrix by strided copies, in GEMM flops."""

GRID_COPY_FLOPS_PER_ELEMENT = 10.0
"""Cost of copying one element into the grid route's window matrix (contiguous blocks), in GEMM flops."""

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

GRID_MIN_ELEMENTS = 1 << 16
"""Smaller window matrices take the gemm route (its per-call Python overhead is lower)."""


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


def fft_module() -> Any:
    """``scipy.fft`` when SciPy is installed, else ``numpy.fft`` (same call signatures)."""
    try:
        import scipy.fft
    except ImportError:  # pragma: no cover - SciPy is installed wherever the tests run
        return np.fft
    return scipy.fft


# ----------------------------------------------------------------------------- gemm and grid


def gemm_cost(geom: Geometry) -> float:
    """Estimated cost of one im2col + GEMM contraction, in GEMM flops."""
    cg, k, q = geom.c_in // geom.groups, prod(geom.kernel), prod(geom.out_size)
    return 2.0 * geom.n * geom.c_out * q * cg * k + COPY_FLOPS_PER_ELEMENT * geom.n * geom.c_in * k * q


def grid_cost(geom: Geometry) -> float:
    """Estimated cost of one grid contraction (every padded position ``P``), in GEMM flops."""
    cg, k, p = geom.c_in // geom.groups, prod(geom.kernel), prod(geom.padded_size)
    return 2.0 * geom.n * geom.c_out * p * cg * k + GRID_COPY_FLOPS_PER_ELEMENT * geom.n * geom.c_in * k * p


IMPLICIT_FLOP_FACTOR = 0.82
"""Cost per flop of the implicit route's GEMMs (:mod:`convgrad.engine.implicit`) relative to the gemm route's:
the BLAS packs the shifted panels itself, in the cache, so no im2col copy is paid, and the flops are counted
over every padded position ``P``. Fitted to forward passes on the benchmark layers (float32, 2 threads): 0.71–0.76
on layers of 16–128 channels, 0.91–1.07 on 256–512 channels and the 1-d k9 layer; at 0.82 each measured
faster route is picked except for equal times."""


def implicit_cost(geom: Geometry, expand: int = 1) -> float:
    """Estimated cost of one implicit contraction (the forward correlation of ``geom`` at stride 1, every padded
    position, the grid copied ``expand`` times), in GEMM flops."""
    cg, k, p = geom.c_in // geom.groups, prod(geom.kernel), prod(geom.padded_size)
    return (IMPLICIT_FLOP_FACTOR * 2.0 * geom.n * geom.c_out * p * cg * k
            + GRID_COPY_FLOPS_PER_ELEMENT * geom.n * (geom.c_in * expand + geom.c_out) * p)


def gemm_position_bytes(geom: Geometry, itemsize: int) -> int:
    """Workspace of one output position of one sample on the gemm route: its windows, ``C·K`` elements."""
    return geom.c_in * prod(geom.kernel) * itemsize


def gemm_sample_bytes(geom: Geometry, itemsize: int) -> int:
    """Workspace of one sample on the gemm route: ``C·K·Q`` elements."""
    return gemm_position_bytes(geom, itemsize) * prod(geom.out_size)


BLOCK_BYTES = 8 << 20
"""Target size of one block of the window matrix on the gemm and grid routes: each block is copied and consumed
by its GEMM while it is still in the cache, instead of the whole chunk's matrix making a round trip through memory.
4–8 MiB measured best on the benchmark machine (2 MiB of L2 per core, a large shared L3); 0.5–2 MiB made more GEMM
calls and more Python per block and was no faster. ``0`` turns blocking off (one block per chunk, as the budget
allows)."""

MIN_BLOCK_POSITIONS = 256
"""Fewest output (or grid) positions in a block: fewer would make each GEMM re-read the weight too often."""


def block_positions(geom: Geometry, itemsize: int, budget: int) -> int:
    """Positions per block of the window matrix: :data:`BLOCK_BYTES` of windows, at least
    :data:`MIN_BLOCK_POSITIONS`, never more than ``budget`` allows (at least one position).

    Examples
    --------
    >>> from convgrad._geometry import conv_geometry
    >>> geom = conv_geometry((8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)
    >>> block_positions(geom, 4, 256 << 20) == BLOCK_BYTES // (3 * 49 * 4)
    True
    """
    position = gemm_position_bytes(geom, itemsize)
    fit = max(1, budget // position)
    if BLOCK_BYTES <= 0:
        return fit
    return min(fit, max(MIN_BLOCK_POSITIONS, BLOCK_BYTES // position))


def grid_sample_bytes(geom: Geometry, itemsize: int) -> int:
    """Workspace of one sample on the grid route: ``C·K·P`` elements."""
    return geom.c_in * prod(geom.kernel) * prod(geom.padded_size) * itemsize


# ----------------------------------------------------------------------------- the FFT's block plan


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


def _fft_flops() -> float:
    return FFT_FLOPS_SCIPY if fft_module() is not np.fft else FFT_FLOPS_NUMPY


def _plan_cost(geom: Geometry, block: tuple[int, ...], fft_flops: float) -> float:
    span = geom.span
    step = tuple(b - sp + 1 for b, sp in zip(block, span))
    nblk = prod(tuple(-(-q // st) for q, st in zip(geom.full_size, step)))
    points = prod(block)
    freqs = prod(block[:-1]) * (block[-1] // 2 + 1)
    cg = geom.c_in // geom.groups
    planes = geom.n * (geom.c_in + geom.c_out) * nblk + geom.c_out * cg
    transforms = fft_flops * planes * points * math.log2(max(2, points))
    mixing = MIX_FLOPS_PER_MAC * geom.n * geom.c_out * cg * nblk * freqs
    return transforms + mixing + CALL_FLOPS


@cache(maxsize=128)
def plan(geom: Geometry) -> Plan:
    """The block lengths of least estimated cost (every combination of :func:`_candidates`)."""
    fft_flops = _fft_flops()
    options = [_candidates(sp, q) for sp, q in zip(geom.span, geom.full_size)]
    best = min(itertools.product(*options), key=lambda b: _plan_cost(geom, b, fft_flops))
    return Plan(best, tuple(b - sp + 1 for b, sp in zip(best, geom.span)), geom.span)


def fft_cost(geom: Geometry) -> float:
    """Estimated cost of one FFT contraction, in GEMM flops."""
    return _plan_cost(geom, plan(geom).block, _fft_flops())


def fft_sample_bytes(geom: Geometry, itemsize: int) -> int:
    """Workspace of one sample on the FFT route: the spectra of its blocks and of their products."""
    p = plan(geom)
    nblk = prod(p.blocks(geom.padded_size))
    return 4 * (geom.c_in + geom.c_out) * nblk * p.freqs() * itemsize


def fft_fixed_bytes(geom: Geometry, itemsize: int) -> int:
    """Workspace the FFT route needs whatever the batch: kernel spectra and the weight-gradient sums (×3)."""
    return 3 * 2 * itemsize * geom.c_in * (geom.c_out // geom.groups) * plan(geom).freqs()
