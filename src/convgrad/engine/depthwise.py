"""The depthwise route without Numba: one input and one output channel per group (``groups == C == O > 1``).

Each channel is its own convolution, and on the *phase grid* every kernel offset is a shift of whole rows.
Output position ``q`` reads padded position ``s·q + δ·k`` for kernel offset ``k`` (stride ``s``, dilation
``δ``, per dimension). Write ``δ·k = s·a + r`` with ``0 ≤ r < s``: that is position ``q + a`` of the
padded input's phase ``r``, the positions ``s·t + r``. So each channel's padded input is laid out as the
phases some offset reads, one after another, each a grid of ``⌈P/s⌉`` positions per sample, samples one
after another (:class:`Plan`); then offset ``k`` is one shift ``shift(k)`` of the flattened row, and

* the forward pass is ``y[c, q] = Σ_k w[c, k] · src[c, q + shift(k)]``, a multiply-add of whole rows per
  offset (:func:`correlate_rows`);
* the input gradient is its adjoint, phase by phase: the same correlation of ``g``'s rows with the shifts
  reversed, over the offsets that read that phase, then each phase put back in place;
* the weight gradient is one dot product of whole rows per channel and offset.

With short rows along the last dimension (stride 1 there, :func:`banded`), the forward pass and the input gradient
take each row's taps at once instead: the rows from each offset of the other dimensions times a banded matrix per
channel (:func:`multiply_bands`), one ``matmul`` call per block of channels and offset (a BLAS product per channel),
for finite data.

At stride 1 there is one phase, the padded grid itself. Positions with some ``q_i ≥ Q_i`` are junk: computed
and dropped in the forward pass, zero in ``g``. A valid ``q`` never reads past its own sample's phase grid,
because ``s·q + δ·k`` is a padded position.

Rows are taken in blocks of channels of about :data:`BLOCK_BYTES`, so that the rows a block reads and writes
stay in the cache for all its offsets (one Python call per block and offset, not per channel and offset: 512
channels at 14² spent most of their time in the calls), and the blocks and the copies are split over the
threads. The measurements against the routes these replaced (at stride 1 the grid route's window matrix for
the forward pass and channel-by-channel row multiply-adds and dots for the gradients; strided, the gemm route's
window matrix and multiply-adds over planes): docs/performance.md, "Depthwise layers without Numba" (for
example 128 channels at 56², float32, 2 threads: 20 / 15 / 11 → 10 / 10 / 8 ms for the forward pass / input
gradient / weight gradient).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry, prod
from .grid import _valid  # the first Q_i positions along each dimension are the outputs, on a phase grid too
from .padding import pad, pad_adjoint
from .state import cache, split_run
from .windows import kernel_offsets

Array = npt.NDArray[Any]

BLOCK_BYTES = 1536 * 1024
"""Target size of one block: the rows it reads and writes and its temporary, about three-quarters of a core's
2 MiB L2 cache. Measured (float32, 2 threads, N=8, 3×3; ms for 0.5 / 1 / 1.5 / 2 MiB): the forward pass of 128
channels at 56², 22.6 / 16.5 / 15.9 / 16.7, and of 256 channels at 28², 6.8 / 5.0 / 4.5 / 4.8 (256 KiB, the
size used before, was slower still)."""

MAX_JUNK = 4
"""The route takes a layer whose phase grid holds at most this many positions per output position (more junk: a
widely dilated or large kernel on a small input, which the dense rules, ``grid`` or ``gemm``, take instead)."""


BAND_ROW = 7
"""Rows (along the last dimension, per tap of the kernel there) up to which the forward pass and the input gradient
take banded matrices (:func:`banded`): ``P_d ≤ 7·K_d``, 21 positions for a 3-tap kernel, 35 for a 5-tap one.
Measured (float32, 2 threads, N=8, ms for ``conv`` with a bias / ``conv_input_grad`` / ``conv_backward``, the
multiply-adds of rows → banded matrices, alternating in one process; called back to back, and after a 0.2 s pause
each as the benchmarks call them):

* 3×3, 1024 channels at 7²: 3.1–4.2 / 3.0–4.0 / 5.3–5.5 → 1.9–2.1 / 2.9 / 5.1–5.3; after a pause 6.9–7.8 / 7.3–7.5
  / 9.1–9.4 → 4.0–4.4 / 5.6–7.3 / 9.6–9.7;
* 3×3, 512 channels at 14²: 4.0–6.3 / 3.9–4.2 / 6.7–6.8 → 2.5–2.6 / 2.9 / 5.7; after a pause 10.0–10.8 / 9.9 /
  12.4–12.8 → 6.0–6.1 / 6.6–6.9 / 10.1–10.2 (N=4: 2.6–3.5 / 2.4–3.2 / 4.0–4.4 → 1.9–2.1 / 2.2–2.4 / 4.0–4.2);
* 3×3, 384 channels at 21² (23 positions a row, left to the multiply-adds): back to back 5.4–5.8 / 5.0–5.3 → 4.2–4.3
  / 4.6–4.7, but after a pause 9.6–10.0 / 9.0–9.5 → 9.6–10.3 / 10.6;
* 5×5, 480 channels at 14²: 10.4–12.7 / 9.8–10.0 / 14.8–14.9 → 3.5–3.7 / 4.5–4.8 / 9.8–10.0;
* 5×5, 240 channels at 28² (32 positions): 11.3–12.4 / 10.0–10.1 / 17.9–18.5 → 6.9 / 7.3–7.7 / 14.9–15.8; after a
  pause 18.0–18.1 / 17.9–18.3 / 26.0–27.0 → 14.2–14.3 / 16.1–16.3 / 25.7–27.2.

The weight gradient keeps its dots: as a banded product (``gᵀ`` times the rows, the band summed) it was 10% faster
at 14² and slower from 21² on."""


BAND_MIN_ROWS = 1
"""Rows per column of the bands below which :func:`banded` leaves a layer to the multiply-adds (the bands would
outweigh the data: few samples)."""


def row_blocks(r0: int, r1: int, row_bytes: int) -> Iterator[tuple[int, int]]:
    """``[a, b)`` ranges of rows ``[r0, r1)`` of about :data:`BLOCK_BYTES` each."""
    step = block_rows(row_bytes)
    for a in range(r0, r1, step):
        yield a, min(r1, a + step)


def block_rows(row_bytes: int) -> int:
    """Rows in one block of :func:`row_blocks` (at least one)."""
    return max(1, BLOCK_BYTES // max(1, row_bytes))


class Plan(NamedTuple):
    """Where each kernel offset reads on the phase grid of a depthwise layer."""

    size: tuple[int, ...]
    """One phase's grid per sample, ``⌈P_i / s_i⌉`` positions along dimension ``i``."""
    phases: tuple[tuple[int, ...], ...]
    """The residues ``r`` (per dimension) of the padded positions some kernel offset reads, in order."""
    phase_of: tuple[int, ...]
    """Per kernel offset (C order): the index of its phase in :attr:`phases`."""
    offset: tuple[int, ...]
    """Per kernel offset: its flat shift ``Σ_i a_i · size_{i+1}·…·size_d`` within its phase's grid."""

    def shifts(self, m: int) -> tuple[int, ...]:
        """Each offset's shift on the stacked rows, phases of ``m`` positions each."""
        return tuple(p * m + off for p, off in zip(self.phase_of, self.offset))


@cache(maxsize=128)
def plan(geom: Geometry) -> Plan:
    """The :class:`Plan` of ``geom`` (computed once per geometry).

    Examples
    --------
    >>> from convgrad._geometry import conv_geometry
    >>> p = plan(conv_geometry((1, 4, 9, 9), (4, 1, 3, 3), stride=2, padding=1, groups=4))
    >>> p.size, p.phases
    ((6, 6), ((0, 0), (0, 1), (1, 0), (1, 1)))
    >>> p.phase_of[:3], p.offset[:3]
    ((0, 1, 0), (0, 0, 1))
    """
    size = tuple(-(-p // s) for p, s in zip(geom.padded_size, geom.stride))
    flat = [prod(size[i + 1 :]) for i in range(geom.d)]
    reads = [tuple(divmod(k * dl, s) for k, dl, s in zip(ks, geom.dilation, geom.stride))
             for ks in kernel_offsets(geom)]
    phases = tuple(sorted({tuple(r for _, r in read) for read in reads}))
    phase_of = tuple(phases.index(tuple(r for _, r in read)) for read in reads)
    offset = tuple(sum(a * f for (a, _), f in zip(read, flat)) for read in reads)
    return Plan(size, phases, phase_of, offset)


def applies(geom: Geometry) -> bool:
    """A phase grid of at most :data:`MAX_JUNK` positions per output position (each offset's products run over one
    phase grid)."""
    return prod(plan(geom).size) <= MAX_JUNK * prod(geom.out_size)


def _phase_slices(p: Plan, r: tuple[int, ...], geom: Geometry, lo: tuple[int, ...],
                  extent: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """Where phase ``r``'s grid and an array whose position ``j`` is padded position ``lo + j`` (``extent``
    positions) meet: ``(grid slices, array slices)``, or ``None`` where they do not."""
    grid, array = [], []
    for ri, s, lo_i, n_i, size in zip(r, geom.stride, lo, extent, p.size):
        r_minus = ri - lo_i
        t0 = max(0, -(r_minus // s))  # the first t with s·t + r ≥ lo
        t1 = min(size - 1, (n_i - 1 - r_minus) // s)  # the last t with s·t + r − lo < extent
        if t1 < t0:
            return None
        j0 = s * t0 + r_minus
        grid.append(slice(t0, t1 + 1))
        array.append(slice(j0, j0 + s * (t1 - t0) + 1, s))
    return tuple(grid), tuple(array)


def _placement(x: Array, geom: Geometry) -> tuple[Array, tuple[int, ...]]:
    """The array whose positions the phases are copied from, and the padded position of its first one: ``x``
    itself with zero padding (no padded copy), else its padded copy."""
    if geom.padding_mode == "zeros" and geom.plain_padding:
        return x, geom.pad_lo
    return pad(x, geom), (0,) * geom.d


def _source(x: Array, geom: Geometry, p: Plan, dtype: np.dtype[Any]) -> Array:
    """The padded input on the stacked phase grids, ``(C, phases·m + tail)`` (``m = N·Π size``), the tail zero."""
    n = x.shape[0]
    m = n * prod(p.size)
    src = np.zeros((geom.c_in, len(p.phases) * m + max(p.offset)), dtype=dtype)
    blocks = _split_rows(src, len(p.phases) * m, (len(p.phases), n) + p.size)  # (C, phases, N, *size) view
    a, lo = _placement(x, geom)
    places = [(i, where) for i, r in enumerate(p.phases) if (where := _phase_slices(p, r, geom, lo, a.shape[2:]))]

    def copy(c0: int, c1: int) -> None:
        for i, (grid, array) in places:
            block = blocks[c0:c1, i]
            block[(slice(None), slice(None)) + grid] = a[(slice(None), slice(c0, c1)) + array].swapaxes(0, 1)

    split_run(geom.c_in, src.size, copy)
    return src


def _split_rows(rows: Array, length: int, shape: tuple[int, ...]) -> Array:
    """The first ``length`` entries of each row of ``rows (C, L)`` as a ``(C, *shape)`` view, for writing into.

    (A view always: only the last axis is split, and NumPy splits an axis of any stride without a copy.)
    """
    return rows[:, :length].reshape((rows.shape[0],) + shape)


def _junk_mask(geom: Geometry, p: Plan, n: int) -> npt.NDArray[np.bool_]:
    """``True`` at the junk positions of ``n`` samples' phase grid, flattened."""
    mask = np.ones((n,) + p.size, dtype=bool)
    mask[(slice(None),) + _valid(geom)] = False
    return mask.reshape(-1)


def _grad_rows(g: Array, geom: Geometry, p: Plan, front: int, length: int) -> Array:
    """``g`` on one phase grid, ``(C, front + length)``: after ``front`` zeros, zero at the junk positions and
    after the grid."""
    n = g.shape[0]
    rows = np.zeros((geom.c_out, front + length), dtype=g.dtype)
    body = _split_rows(rows[:, front:], n * prod(p.size), (n,) + p.size)
    body[(slice(None), slice(None)) + _valid(geom)] = g.swapaxes(0, 1)
    return rows


def correlate_rows(src: Array, w: Array, shifts: tuple[int, ...], m: int,
                   drop: tuple[Array, Array] | None = None) -> Array:
    """``out[c, q] = Σ_k w[c, k] · src[c, q + shifts[k]]`` for ``q < m``, a block of channels at a time, the blocks
    split over the threads.

    ``drop``: ``(channels, mask)``; for those channels a product whose ``src`` position ``j`` has ``mask[j]`` is
    left out of the sum (where a non-finite weight meets a zero that only stands in for nothing).
    """
    c, dtype = w.shape[0], src.dtype
    out = np.empty((c, m), dtype=dtype)
    channels, mask = drop if drop is not None else (np.empty(0, dtype=np.intp), np.empty(0, dtype=bool))

    def term(i: int, b0: int, b1: int, product: Array) -> None:
        shift = shifts[i]
        np.multiply(src[b0:b1, shift : shift + m], w[b0:b1, i : i + 1], out=product)
        if channels.size:
            for r in channels[(channels >= b0) & (channels < b1)] - b0:
                product[r, mask[shift : shift + m]] = 0

    # (a block's rows written, its temporary and the rows read)
    sum_in_blocks(out, len(shifts), 3 * m * dtype.itemsize, c * m * len(shifts), term)
    return out


def sum_in_blocks(out: Array, count: int, row_bytes: int, elements: int,
                  term: Callable[[int, int, int, Array], None], check: bool = False) -> bool:
    """``out[c] = Σ_i term_i[c]`` over ``i < count``, a block of channels of about :data:`BLOCK_BYTES` (``row_bytes``
    per channel) at a time, so that the block stays in the cache over the terms; the blocks split over the threads
    (``elements``: the work, for :func:`~convgrad.engine.state.split_run`).

    ``term(i, b0, b1, dest)`` writes term ``i`` of channels ``[b0, b1)`` into ``dest``: the block of ``out`` for the
    first term, a temporary added into it after. ``check``: whether every block's sum came out finite (checked while
    the block is in the cache); ``True`` without it.
    """
    finite: list[bool] = []

    def work(c0: int, c1: int) -> None:
        tmp = np.empty((min(c1 - c0, block_rows(row_bytes)),) + out.shape[1:], dtype=out.dtype)
        for b0, b1 in row_blocks(c0, c1, row_bytes):
            block, t = out[b0:b1], tmp[: b1 - b0]
            for i in range(count):
                term(i, b0, b1, block if i == 0 else t)
                if i:
                    block += t
            if check:
                finite.append(bool(np.isfinite(block.sum())))

    split_run(out.shape[0], elements, work)
    return all(finite)


def banded(geom: Geometry, dtype: np.dtype[Any]) -> bool:
    """Whether the products along the last dimension take banded matrices, one BLAS product per channel and offset
    of the other dimensions: stride 1 and at least 2 taps there, rows of at most :data:`BAND_ROW` positions per
    tap, at least :data:`BAND_MIN_ROWS` times as many rows as the bands have columns (``N·Π_{i<d} ⌈P_i/s_i⌉ ≥
    Π_{i<d} K_i · Q_d``: the bands no larger than the data; 512 channels at 14², N=1: input gradient 0.7 ms on
    rows, 1.0–1.3 banded), float32 or float64.

    Along a row, output ``j`` reads positions ``j + δ·b``: a ``(P_d × Q_d)`` matrix ``T[j + δ·b, j] = w[.., b]``
    takes all ``K_d`` taps at once. It does ``Q_d / K_d`` times the products of the multiply-adds (every one of a
    row's ``P_d`` positions times every one of its ``Q_d`` outputs, against ``K_d`` taps per position), at BLAS speed
    instead of a pass over memory per tap; with short rows that is less time. Its zeros meet every value of the
    row, so a NaN or an infinity would spread along it: the products return ``None`` for a result that is not
    finite, and the callers then take the rows' multiply-adds.
    """
    size = plan(geom).size
    return (dtype in (np.float32, np.float64) and geom.stride[-1] == 1 and geom.kernel[-1] > 1
            and size[-1] <= BAND_ROW * geom.kernel[-1]
            and geom.n * prod(size[:-1]) >= BAND_MIN_ROWS * prod(geom.kernel[:-1]) * geom.out_size[-1])


def _bands(w: Array, geom: Geometry, width: int) -> Array:
    """``T[a, c, j + δ·b, j] = w[c, a, b]``, ``(A, C, width, Q_d)``: one banded matrix per channel and offset ``a``
    of the leading kernel dimensions (``b``: the taps along the last one)."""
    kd, dil, q = geom.kernel[-1], geom.dilation[-1], geom.out_size[-1]
    taps = w.reshape(w.shape[0], -1, kd).swapaxes(0, 1)  # (A, C, K_d)
    bands = np.zeros(taps.shape[:2] + (width, q), dtype=w.dtype)
    flat = bands.reshape(taps.shape[:2] + (width * q,))
    for b in range(kd):  # T[j + δ·b, j] is flat entry δ·b·q + j·(q + 1)
        flat[:, :, dil * b * q :: q + 1][:, :, :q] = taps[:, :, b, None]
    return bands


def _lead_shifts(shifts: tuple[int, ...], geom: Geometry) -> tuple[int, ...]:
    """The shift of each offset ``a`` of the leading kernel dimensions (its first tap along the last one)."""
    return shifts[:: geom.kernel[-1]]


def multiply_bands(src: Array, bands: Array, shifts: tuple[int, ...], m: int, width: int,
                   cols: int) -> Array | None:
    """``out[c, r] = Σ_a src[c, shifts[a] + r·width :][:cols] @ bands[a, c]``, ``(C, m / width, bands' columns)``: the
    rows of ``width`` positions from each shift (their first ``cols``) times the banded matrices, a block of
    channels per ``matmul`` call, the blocks split over the threads.

    ``None`` where the result holds a NaN or an infinity (each block's sum checked while it is in the cache; a sum
    that overflows counts too): every value of ``src``'s rows and of the bands meets every column or row of the
    other, so any non-finite operand shows there, also one the multiply-adds would not have met.
    """
    c, dtype = src.shape[0], src.dtype
    rows, out_cols = m // width, bands.shape[-1]
    out = np.empty((c, rows, out_cols), dtype=dtype)

    def term(a: int, b0: int, b1: int, product: Array) -> None:
        view = src[b0:b1, shifts[a] : shifts[a] + m].reshape(b1 - b0, rows, width)[:, :, :cols]
        np.matmul(view, bands[a, b0:b1], out=product)

    with np.errstate(invalid="ignore", over="ignore"):  # (a non-finite result is not returned)
        # (a channel's rows read, written and its temporary)
        finite = sum_in_blocks(out, len(shifts), (m + 2 * rows * out_cols) * dtype.itemsize,
                               c * rows * cols * out_cols * len(shifts), term, check=True)
    return out if finite else None


def _taps(w: Array, dtype: np.dtype[Any]) -> Array:
    """A depthwise kernel as ``(C, K)``: channel ``c``'s weight for each kernel offset."""
    return w.reshape(w.shape[0], -1).astype(dtype, copy=False)


def depthwise_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``y[c, q] = Σ_k w[c, k] · src[c, q + shift(k)]`` on the phase grid; the junk positions dropped.

    Every value the direct route multiplies is multiplied here too (the padding's zeros included), so a NaN or an
    infinity lands where it does there.
    """
    n, dtype = x.shape[0], np.result_type(x, w)
    p = plan(geom)
    m = n * prod(p.size)
    src, taps = _source(x, geom, p, dtype), _taps(w, dtype)
    width = p.size[-1]
    y_grid = multiply_bands(src, _bands(taps, geom, width), _lead_shifts(p.shifts(m), geom), m, width, width) \
        if banded(geom, dtype) else None
    grid_size = p.size[:-1] + geom.out_size[-1:]  # (the bands give each row's outputs only)
    if y_grid is None:
        y_grid, grid_size = correlate_rows(src, taps, p.shifts(m), m), p.size
    y_valid = y_grid.reshape((geom.c_out, n) + grid_size)[(slice(None), slice(None)) + _valid(geom)]
    return np.ascontiguousarray(y_valid.swapaxes(0, 1))


def depthwise_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """The adjoint of :func:`depthwise_forward`, phase by phase: ``src_r[c, t] = Σ_{k reads r} w[c, k] ·
    g[c, t − offset(k)]``, then each phase put back at its padded positions and the padding's adjoint applied.

    ``g`` lies on its grid after ``max offset`` zeros, and is zero at its junk positions. A channel whose kernel holds
    a NaN or an infinity leaves out the products with those zeros and junk positions (``inf · 0`` would be NaN where
    the direct route adds nothing).
    """
    n, dtype = g.shape[0], np.result_type(g, w)
    p = plan(geom)
    m, top = n * prod(p.size), max(p.offset)
    g_rows = _grad_rows(g.astype(dtype, copy=False), geom, p, top, m)
    w_taps = _taps(w, dtype)
    bands = _bands(w_taps, geom, p.size[-1]).swapaxes(2, 3) if banded(geom, dtype) else None
    bad = np.flatnonzero(~np.isfinite(w_taps).all(axis=1))
    drop = (bad, np.concatenate([np.ones(top, dtype=bool), _junk_mask(geom, p, n)])) if bad.size else None
    plain = geom.padding_mode == "zeros" and geom.plain_padding
    lo, extent = (geom.pad_lo, geom.in_size) if plain else ((0,) * geom.d, geom.padded_size)
    # (every position gets a value where the phases cover the array; else the positions no offset reads stay zero)
    target = (np.empty if len(p.phases) == prod(geom.stride) else np.zeros)((n, geom.c_in) + extent, dtype=dtype)
    for i, r in enumerate(p.phases):
        where = _phase_slices(p, r, geom, lo, extent)
        if where is None:  # (no position of this phase lies in the array: its gradient goes nowhere)
            continue
        ks = [k for k, ph in enumerate(p.phase_of) if ph == i]
        shifts = tuple(top - p.offset[k] for k in ks)
        rows = None
        if bands is not None:  # (a phase holds whole rows of taps: the last dimension has stride 1)
            lead = [k // geom.kernel[-1] for k in ks[:: geom.kernel[-1]]]
            phase_bands = bands if len(lead) == bands.shape[0] else bands[lead]  # (one phase: all of them, no copy)
            rows = multiply_bands(g_rows, phase_bands, _lead_shifts(shifts, geom), m, p.size[-1], geom.out_size[-1])
        if rows is None:  # (not banded, or a NaN or an infinity met a band's zeros: the multiply-adds from here on)
            bands = None
            rows = correlate_rows(g_rows, w_taps[:, ks], shifts, m, drop)
        phase = rows.reshape((geom.c_in, n) + p.size)[(slice(None), slice(None)) + where[0]]

        def put(c0: int, c1: int, phase: Array = phase, array: tuple[slice, ...] = where[1]) -> None:
            target[(slice(None), slice(c0, c1)) + array] = phase[c0:c1].swapaxes(0, 1)

        split_run(geom.c_in, rows.size, put)
        del rows, phase  # (before the next phase's rows)
    return target if plain else np.ascontiguousarray(pad_adjoint(target, geom))


def depthwise_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``gw[c, k] = Σ_q g[c, q] · src[c, q + shift(k)]``, one dot product of whole rows per (c, k).

    A block of channels per call. A channel whose sums come out non-finite and whose rows hold a NaN or an
    infinity takes its dots again over the output positions only: its junk positions hold inputs that met
    ``g``'s zeros there.
    """
    n, dtype = x.shape[0], np.result_type(g, x)
    p = plan(geom)
    m = n * prod(p.size)
    shifts = p.shifts(m)
    src = _source(x, geom, p, dtype)
    g_rows = _grad_rows(g.astype(dtype, copy=False), geom, p, 0, m)
    gw = np.empty((geom.c_out, len(shifts)), dtype=dtype)

    def work(c0: int, c1: int) -> None:
        for b0, b1 in row_blocks(c0, c1, 2 * m * dtype.itemsize):
            rows = g_rows[b0:b1, None, :]  # (b, 1, m) @ (b, m, 1): one dot per channel of the block
            for i, shift in enumerate(shifts):
                np.matmul(rows, src[b0:b1, shift : shift + m, None], out=gw[b0:b1, i : i + 1, None])

    split_run(geom.c_in, geom.c_in * m * len(shifts), work)
    valid = None
    for c in np.flatnonzero(~np.isfinite(gw).all(axis=1)):
        if not np.isfinite(src[c]).all():
            valid = ~_junk_mask(geom, p, n) if valid is None else valid
            gw[c] = [np.dot(src[c, shift : shift + m][valid], g_rows[c][valid]) for shift in shifts]
    return gw.reshape(geom.weight_shape)
