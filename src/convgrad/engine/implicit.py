"""The implicit route: stride-1 convolutions as GEMMs that read the padded input in place, one per kernel offset,
summed in the output by the BLAS itself (``β = 1``), with no window matrix at all.

On the flattened grid of :mod:`convgrad.engine.grid` (the padded samples laid
out ``(C, nb·P)``, channel by channel) kernel offset ``k`` of every output
position ``m`` is grid position ``m + off(k)``, so the forward pass is

    y_grid[o, m] = Σ_k Σ_c w[o, c, k] · grid[c, m + off(k)]

— for each ``k`` one GEMM ``(O × C) @ (C × m)`` whose right factor is the grid
itself, read from column ``off(k)`` with the grid's row length as its leading
dimension. NumPy's ``matmul`` cannot add into its output, and a temporary
plus an add per offset measured slower than im2col; the BLAS's own
``C = A·B + C`` (:mod:`convgrad.engine.blas`) makes the sum free. The
BLAS packs each panel of ``B`` into its cache-sized buffers anyway, so the
``K``-fold window matrix that im2col writes to memory and reads back is
never formed (forward pass, float32, 2 threads: 64→64 at 56², 16.5 ms by
im2col against 10.7 ms; 16→32 3×3×3 at 16×32², 14.0 against 8.6 ms).

With few input channels per group (``C/G`` below :data:`EXPAND_BELOW`, and at
least two spatial dimensions) the GEMMs would be too thin; the grid is then
first copied ``K_d`` times along its last kernel dimension (rows ``(c, j)``
read ``grid[c, m + j·δ_d]``), which makes them ``(O × C·K_d)`` and leaves one
GEMM per offset of the other dimensions.

The input gradient is the same computation on the zero-padded upstream
gradient with the kernel flipped and its channel axes swapped
(:func:`full_geometry`: with zero padding its outputs are the input's own
positions; other modes compute every padded position and apply
:func:`~convgrad.engine.padding.pad_adjoint`); it multiplies the padding's
zeros by every weight, so a weight that is not finite (``0·inf``) sends the
call to the gemm route. At stride ``s > 1`` that correlation reads ``g``
input-dilated by ``s``; the dispatcher's polyphase split
(:mod:`convgrad.engine.phases`) makes it at most ``s^d`` stride-1
correlations, one per residue class of the kernel's taps (a class without
taps leaves its positions zero), each routed by the rules — this
route for a dense layer's input gradient where its phases take it
(:func:`phases_apply`; 1×1 phases are plain products), so neither the window matrix nor the strided fold of
the gemm route is formed. The weight gradient has
no such form that is faster (its GEMMs would be ``O × C`` with one long sum)
and is not on this route.

As on the grid route, positions ``q_i ≥ Q_i`` are computed and dropped.
Workspace per sample: the grid (``C·P``; ``C·P + C·K_d·P`` expanded) and
the output grid (``O·P``); samples are taken in chunks that fit the budget, and
a geometry one sample of which does not fit is not routed here.

Examples
--------
A 1-d layer with dilation 2 and "same" padding, against the im2col route:

>>> import numpy as np
>>> from convgrad._geometry import conv_geometry
>>> from convgrad.engine import gemm
>>> rng = np.random.default_rng(0)
>>> x, w, g = rng.standard_normal((2, 4, 9)), rng.standard_normal((5, 4, 3)), rng.standard_normal((2, 5, 9))
>>> geom = conv_geometry(x.shape, w.shape, padding=2, dilation=2)
>>> bool(np.allclose(implicit_forward(x, w, geom), gemm.gemm_forward(x, w, geom)))
True
>>> bool(np.allclose(implicit_input_grad(g, w, geom), gemm.gemm_input_grad(g, w, geom)))
True
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry, conv_geometry, prod
from . import blas, cost, phases, small, taps
from .gemm import gemm_forward, gemm_input_grad
from .grid import _grid_input, _offsets, _valid
from .padding import pad_adjoint
from .state import batch_chunks, get_workspace_budget

Array = npt.NDArray[Any]

EXPAND_BELOW = 32
"""Input channels per group below which the grid is expanded along the last kernel dimension (2-d and up)."""

MIN_POSITIONS = 2048
"""Fewest grid positions (``N·P``) for the route under its rule: below, each GEMM call is too short for its fixed
cost (float32, 2 threads, forward, µs, implicit against gemm: 1×8 10² 66 / 28; 1×16 12² 80 / 38; 2×32 16² 256 /
228; 4×64 16² 1062 / 893; 1×64 8² 232 / 106 — but 2×64 32², 2312 positions, 1318 / 1621)."""

MIN_CHANNELS = 8
"""Fewest output channels per group, and input channels per group times the expansion, for the route: thinner
GEMMs (depthwise layers) are far from the BLAS's speed."""


def _expand(geom: Geometry) -> int:
    """How many copies of the grid along the last kernel dimension: ``K_d`` for few channels, else 1."""
    if geom.d >= 2 and geom.c_in // geom.groups < EXPAND_BELOW and geom.kernel[-1] > 1:
        return geom.kernel[-1]
    return 1


MAX_CHUNK_ELEMENTS = 1 << 30
"""Most elements of a chunk's (expanded) grid or output grid: every offset and leading dimension handed to the
BLAS stays below 2³¹ (a BLAS with 32-bit integers reads their low halves), whatever the workspace budget."""


def _chunk_elements(geom: Geometry) -> int:
    """Elements per sample of the larger of the two grids, with room for the grid's tail."""
    return max(geom.c_in * _expand(geom), geom.c_out) * prod(geom.padded_size)


def sample_bytes(geom: Geometry, itemsize: int) -> int:
    """Workspace of one sample: its grid, the expanded grid where there is one, and its output grid."""
    expand = _expand(geom)
    return (geom.c_in * (expand + 1 if expand > 1 else 1) + geom.c_out) * prod(geom.padded_size) * itemsize


def _work(geom: Geometry, op: str) -> Geometry:
    """The geometry the route correlates for contraction ``op``: the layer's own, or the input gradient's
    :func:`full_geometry`."""
    return geom if op == "forward" else full_geometry(geom)


def _strided(geom: Geometry, op: str) -> bool:
    """The input gradient of a strided layer: its full correlation reads ``g`` input-dilated by the stride."""
    return op == "input" and any(s != 1 for s in geom.stride)


def applies(geom: Geometry, dtype: np.dtype[Any], op: str) -> bool:
    """Forward pass or input gradient, stride 1, no input dilation, not 1×1, float32/float64 with the BLAS found,
    and one sample (of the input gradient's full correlation too) within the workspace budget. The input gradient
    of a strided layer applies where every phase of its full correlation does (:func:`phases_apply`)."""
    if _strided(geom, op):
        return phases_apply(geom, dtype)
    if op not in ("forward", "input") or geom.n == 0 or any(s != 1 for s in geom.stride):
        return False
    if geom.dilates_input or all(k == 1 for k in geom.kernel) or not blas.available(dtype):
        return False
    work = _work(geom, op)
    if 2 * _chunk_elements(work) > MAX_CHUNK_ELEMENTS:
        return False
    return sample_bytes(work, np.dtype(dtype).itemsize) <= get_workspace_budget()


ONE_TAP_PHASE_CHANNELS = 64
"""Fewest input channels per group for which a strided layer's input gradient takes the phases when some of them
are 1×1 (:func:`phases_apply`)."""


def phases_apply(geom: Geometry, dtype: np.dtype[Any]) -> bool:
    """Whether the input gradient of a strided layer takes this route: a dense layer (not depthwise, not 1×1) with
    zero padding, no input dilation, and every phase of its :func:`full_geometry` — ordinary stride-1
    correlations of ``g`` with the kernel's taps of one residue class — on this route by its own rule.

    There the phases' in-place GEMMs replace the gemm route's window matrix of ``C·K`` rows and its strided fold
    (float32, 2 threads: 64→128 at 56², 4×4 stride 2 — a transposed layer's forward pass — 18.5 → 14.0 ms). A
    kernel with 1×1 phases (3×3 at stride 2) takes the phases where at least one phase is on this route and the
    layer has at least :data:`ONE_TAP_PHASE_CHANNELS` input channels per group; its 1×1 phases are then plain
    products (the pointwise route). Measured inside ``conv_backward`` (float32, 2 threads, N = 8 or 4, the
    weight gradient included, medians of 9 alternating rounds), gemm → phases: 64→128 at 56² 11.8 → 10.1 ms,
    64→64 at 57² 4.6 → 3.4, 128→256 at 28² 8.9 → 8.6; but 32→64 at 112² 15.7 → 17.7 (and on the slower machine
    of an earlier measurement 64→128 at 56² had been even: 22.2 against 22.3). A layer with few input channels
    (the phases' outputs), such as a first layer, stays on the gemm route, whose single GEMM the phases' thin
    ones would not beat.
    """
    if geom.n == 0 or geom.dilates_input or geom.padding_mode != "zeros" or all(k == 1 for k in geom.kernel):
        return False
    if geom.c_in == geom.c_out == geom.groups or not blas.available(dtype):
        return False
    parts = [part.geom for part in phases.phases(full_geometry(geom))]
    f = np.dtype(dtype)
    here = [choose(part, f, "auto", "forward", exact=False, finite=True) == "implicit" for part in parts]
    if all(here):
        return bool(parts)
    if not any(here) or geom.c_in // geom.groups < ONE_TAP_PHASE_CHANNELS:
        return False
    return all(on or all(k == 1 for k in part.kernel) for on, part in zip(here, parts, strict=True))


def op_cost(geom: Geometry, op: str) -> float:
    """Estimated cost of contraction ``op`` on this route (:func:`convgrad.engine.cost.implicit_cost`)."""
    work = _work(geom, op)
    return cost.implicit_cost(work, _expand(work))


def choose(geom: Geometry, dtype: np.dtype[Any], method: str, op: str, *, exact: bool, finite: bool) -> str | None:
    """``"implicit"`` where it :func:`applies`, the layer is neither tiny (the ``small`` route, and fewer than
    :data:`MIN_POSITIONS` grid positions), nor 1-d with 2–3 taps (the ``taps`` route), nor thin
    (:data:`MIN_CHANNELS`), and its cost is below the gemm and grid routes'.

    Direct, so any ``method`` (``"fft"`` and ``"winograd"`` reach this only where their own routes do not
    apply); real floating data only (the BLAS), finite or not (the input gradient checks its weight).

    Examples
    --------
    >>> from convgrad._geometry import conv_geometry
    >>> geom = conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    >>> choose(geom, np.dtype("float32"), "auto", "forward", exact=False, finite=True) in ("implicit", None)
    True
    """
    del method, finite
    if exact or np.dtype(dtype).kind != "f" or op not in ("forward", "input"):
        return None
    if _strided(geom, op):  # each phase was chosen by the rule below
        return "implicit" if phases_apply(geom, dtype) else None
    if small.applies(geom) or taps.applies(geom) or not applies(geom, dtype, op):  # (applies: some samples)
        return None
    work = _work(geom, op)
    if min(work.c_out, work.c_in * _expand(work)) // work.groups < MIN_CHANNELS:
        return None
    if work.n * prod(work.padded_size) < MIN_POSITIONS:
        return None
    direct = min(cost.gemm_cost(geom), cost.grid_cost(geom))
    return "implicit" if op_cost(geom, op) < direct else None


@functools.lru_cache(maxsize=128)
def full_geometry(geom: Geometry) -> Geometry:
    """The forward geometry of the input gradient: ``g`` correlated with the flipped, channel-swapped kernel
    (with stride ``s > 1``, ``g`` input-dilated by ``s``: :mod:`convgrad.engine.phases` splits it into ordinary
    convolutions, one per residue of the input's positions mod ``s``).

    Zero padding (crops included): ``g`` padded by ``(K − 1)·δ − lo`` before and ``(K − 1)·δ − hi + u`` after,
    whose outputs are exactly the input's positions. Other modes: padded by ``(K − 1)·δ`` before and
    ``(K − 1)·δ + u`` after, whose outputs are the padded input's positions, for
    :func:`~convgrad.engine.padding.pad_adjoint`. ``u = P − 1 − (K − 1)·δ − (Q − 1)·s`` counts the last positions
    no output reads (the stride's remainder, a transposed layer's ``output_padding``; usually 0).

    Examples
    --------
    >>> from convgrad._geometry import conv_geometry, transpose_geometry
    >>> geom = transpose_geometry((2, 16, 20, 20), (16, 16, 3, 3), padding=1, dilation=2, output_padding=1)
    >>> geom.in_size, geom.out_size, full_geometry(geom).out_size
    ((23, 23), (20, 20), (23, 23))
    >>> full_geometry(conv_geometry((2, 8, 56, 56), (16, 8, 3, 3), stride=2, padding=1)).input_dilation
    (2, 2)
    """
    og = geom.c_out // geom.groups
    span = tuple((k - 1) * dl for k, dl in zip(geom.kernel, geom.dilation))
    # positions the outputs leave unread at the high end (the stride's remainder, a transposed layer's
    # output_padding): g is zero there
    unread = tuple(p - 1 - sp - (q - 1) * st
                   for p, sp, q, st in zip(geom.padded_size, span, geom.out_size, geom.stride))
    if geom.padding_mode == "zeros":
        pad = tuple((s - lo, s - hi + u) for s, lo, hi, u in zip(span, geom.pad_lo, geom.pad_hi, unread))
    else:
        pad = tuple((s, s + u) for s, u in zip(span, unread))
    return conv_geometry((geom.n, geom.c_out) + tuple(geom.out_size), (geom.c_in, og) + tuple(geom.kernel),
                         padding=pad, dilation=geom.dilation, groups=geom.groups, input_dilation=geom.stride)


def _weights(w: Array, geom: Geometry, dtype: np.dtype[Any], expand: int) -> Array:
    """``(outer offsets, G, O/G, (C/G)·expand)``: each outer offset's and group's left factor, contiguous, the
    columns ordered ``(c, j)`` like the rows of the expanded grid."""
    g, og, cg = geom.groups, geom.c_out // geom.groups, geom.c_in // geom.groups
    wk = np.asarray(w, dtype=dtype).reshape(g, og, cg, -1, expand)  # (G, O/G, C/G, outer, inner)
    return np.ascontiguousarray(wk.transpose(3, 0, 1, 2, 4)).reshape(-1, g, og, cg * expand)


COLUMN_BLOCK_BYTES = 8 << 20
"""Bytes of grid and output grid per column block of a chunk (:func:`column_blocks`). A chunk whose grids hold
more than twice this is summed block by block, every offset's GEMM over one block before the next block, so
the block of the output grid that each GEMM adds into (``β = 1``) is still in the cache. Measured (float32, 2
threads, forward pass): 1-d k9 64→64 at L = 16000, 52 grid MiB per chunk, 40–52 ms in one block against
29–31 ms in blocks of 8192–24576 columns (4–12 MiB); layers whose grids fit in the cache lost up to 10 % in
blocks (64→64 at 56², 7.0 against 7.8 ms), and so are not split."""


def column_blocks(m: int, column_bytes: int) -> list[tuple[int, int]]:
    """``[m0, m1)`` blocks of a chunk's ``m`` grid columns of ``column_bytes`` each (both grids): one block
    where the chunk holds at most twice :data:`COLUMN_BLOCK_BYTES`, else blocks of about that size and equal
    length.

    Examples
    --------
    >>> column_blocks(1000, 512)
    [(0, 1000)]
    >>> blocks = column_blocks(128064, 512)      # 62.5 MiB: eight blocks of about 7.8 MiB
    >>> len(blocks), blocks[0], blocks[-1][1]
    (8, (0, 16008), 128064)
    """
    total = m * column_bytes
    if COLUMN_BLOCK_BYTES <= 0 or total <= 2 * COLUMN_BLOCK_BYTES:
        return [(0, m)]
    count = -(-total // COLUMN_BLOCK_BYTES)
    step = -(-m // count)
    return [(m0, min(m, m0 + step)) for m0 in range(0, m, step)]


def _correlate(src: Array, w: Array, geom: Geometry, dtype: np.dtype[Any]) -> Array:
    """``y = conv(src, w)`` for ``geom`` (stride 1), ``(N, O, *Q)``, by one BLAS GEMM per group and outer kernel
    offset over each chunk's grid positions, summed in place."""
    n = src.shape[0]
    g, og = geom.groups, geom.c_out // geom.groups
    expand = _expand(geom)
    offsets = _offsets(geom)
    outer = offsets[::expand]
    inner_step = geom.dilation[-1]  # the last dimension's flat stride is 1
    wk = _weights(w, geom, dtype, expand)
    rows = (geom.c_in // g) * expand  # rows of B per group
    y = np.empty((n, geom.c_out) + tuple(geom.out_size), dtype=dtype)
    p = prod(geom.padded_size)
    per_sample = sample_bytes(geom, dtype.itemsize)
    fit = max(1, MAX_CHUNK_ELEMENTS // (2 * _chunk_elements(geom)))  # (half: the tail and the offsets)
    for n0, n1 in batch_chunks(n, per_sample, min(get_workspace_budget(), fit * per_sample)):
        nb = n1 - n0
        m = nb * p
        grid = _grid_input(src[n0:n1], geom, dtype)  # (C, m + off_max)
        if expand > 1:
            length = m + outer[-1]
            wide = np.empty((geom.c_in, expand, length), dtype=dtype)
            for j in range(expand):
                wide[:, j] = grid[:, j * inner_step : j * inner_step + length]
            grid = wide.reshape(geom.c_in * expand, length)
        ld = grid.shape[1]
        y_grid = np.empty((geom.c_out, m), dtype=dtype)
        for m0, m1 in column_blocks(m, (geom.c_out + geom.c_in * expand) * dtype.itemsize):
            for gi in range(g):
                for a, off in enumerate(outer):
                    blas.gemm(wk[a, gi], grid, ld, y_grid, 0.0 if a == 0 else 1.0, b_start=gi * rows * ld + off + m0,
                              n=m1 - m0, c_start=gi * og * m + m0, ldc=m)
        y_valid = y_grid.reshape((geom.c_out, nb) + tuple(geom.padded_size))[(slice(None), slice(None)) + _valid(geom)]
        y[n0:n1] = y_valid.swapaxes(0, 1)
    return y


def implicit_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``y = conv(x, w)`` at stride 1 by in-place GEMMs on the padded grid, ``(N, O, *Q)``.

    Where the BLAS cannot be called (:data:`convgrad.engine.blas.ENABLED` switched off after the route was
    chosen and remembered), :func:`convgrad.engine.gemm.gemm_forward` computes it.
    """
    dtype = np.result_type(x, w)
    if not blas.available(dtype):
        return gemm_forward(x, w, geom)
    return _correlate(x, w, geom, dtype)


def implicit_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``gx = pad_adjoint(full correlation of g with w flipped, channels swapped)`` at stride 1, ``(N, C, *S)``.

    A weight that is not finite takes :func:`convgrad.engine.gemm.gemm_input_grad` (the full correlation
    would multiply it by the padding's zeros), and so does a call where the BLAS cannot be called.
    """
    dtype = np.result_type(g, w)
    if not blas.available(dtype) or not np.isfinite(w).all():
        return gemm_input_grad(g, w, geom)
    full = full_geometry(geom)
    grp, og, cg = geom.groups, geom.c_out // geom.groups, geom.c_in // geom.groups
    flip = (slice(None),) * 3 + (slice(None, None, -1),) * geom.d
    # w (G·O/G, C/G, *K) -> (G, C/G, O/G, *K) flipped -> (C, O/G, *K)
    kernel = tuple(geom.kernel)
    wf = w.reshape((grp, og, cg) + kernel).swapaxes(1, 2)[flip].reshape((geom.c_in, og) + kernel)
    if full.dilates_input:  # a strided layer: the phases, each on the direct route the rule picks (this one)
        from . import dispatch

        gxp = dispatch.run("forward", g, wf, full, "direct")
    else:
        gxp = _correlate(g, wf, full, dtype)
    if geom.padding_mode == "zeros":  # the outputs are the input's own positions
        return gxp
    return np.ascontiguousarray(pad_adjoint(gxp, geom))


ROUTES: dict[str, dict[str, Any]] = {
    "forward": {"implicit": implicit_forward},
    "input": {"implicit": implicit_input_grad},
    "weight": {},
}
"""This module's routes, per contraction, with the signature of :data:`convgrad.engine.dispatch.ROUTES`' entries."""

__all__ = ["COLUMN_BLOCK_BYTES", "EXPAND_BELOW", "MAX_CHUNK_ELEMENTS", "MIN_CHANNELS", "MIN_POSITIONS",
           "ONE_TAP_PHASE_CHANNELS", "ROUTES", "applies", "choose", "column_blocks", "full_geometry",
           "implicit_forward", "implicit_input_grad", "op_cost", "phases_apply", "sample_bytes"]
