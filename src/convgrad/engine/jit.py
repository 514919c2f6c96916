"""The compiled routes (``pip install 'convgrad[jit]'``): Numba kernels where NumPy must make extra passes.

A depthwise convolution (``groups == C == O``) does about 2·K flops per
element it reads, so it is bound by memory traffic. The NumPy routes make one
pass over the data per kernel offset (a multiply, then an add into a strided
slice), or copy the windows into a matrix first. The compiled kernels
(:mod:`convgrad.engine.jit_kernels`) read each ``(sample, channel)`` plane of
the input once into a small per-thread buffer, zero-padded and split into its
stride phases (so every stride becomes 1 and every tap one constant shift of a
flat index), compute the result over a flat grid of the buffer's row width in
long loops that LLVM vectorises (nine taps per pass), and write each output
plane once. Planes of fewer than :data:`STACK_ELEMENTS` buffer entries are
stacked, several samples of one channel in one buffer. Where :func:`row_applies`
(stride 1, "same"-width rows, at most 2-d) the buffer pads only the rows: each
plane is one contiguous copy, once per kernel column with the columns that only
that column's wrapped reads reach set to zero, so no per-row copies remain
(the small planes of MobileNet's late layers were bound by them). The three
contractions:

* forward ``y[q] = Σ_k w[k] · x[q·s + k·δ − l]``, gathered from the phase buffer;
* input gradient ``gx[z] = Σ_{q·s + k·δ − l = z} w[k] · g[q]``, gathered per
  input phase (``z + l mod s``) from the zero-padded ``g``;
* weight gradient ``gw[c, k] = Σ_{n,q} g[n, c, q] · x[n, c, q·s + k·δ − l]``,
  one channel at a time, partial sums over at most
  :data:`~convgrad.engine.jit_kernels.CHUNK` grid entries added in float64.

These layers are bound by memory traffic (on the 2-core machine of the
benchmarks two threads copy no faster than one), so two passes are fused
where the public functions allow: the forward pass adds the bias as each
output plane is written (``conv(x, w, b)``: no second pass over ``y``), and
:func:`depthwise_backward` computes the input, weight and bias gradients of
``conv_backward`` channel by channel, so each plane of ``g`` is read from
memory once and found in the cache by the other two.

Thin dense layers (``groups == 1``, 8–32 channels, stride 1, zero padding: :func:`direct_applies`) take
``"jit_direct"``, direct kernels on the padded grid of :mod:`convgrad.engine.grid` with no window matrix
(:func:`direct_forward`, :func:`direct_input_grad`, :func:`direct_weight_grad`); those are for finite data
only. What follows is about the depthwise kernels.

NaN and infinity land where PyTorch puts them without a finiteness check of
the operands (the route is not in :data:`convgrad.engine.dispatch.FINITE_ONLY`):
the padding is real zeros in the buffer, so ``0·NaN`` appears where PyTorch's
padded convolution has it; a channel whose weight is not finite takes an exact
scatter kernel for the input gradient (the gathered form would add ``w·0``
terms for positions outside ``g``), and a plane of ``x`` that is not finite
takes a row kernel without the grid's junk columns in the weight gradient.

Other padding modes go through :func:`convgrad.engine.padding.pad` and its
adjoint first (the kernels then see no padding); input dilation never reaches
these kernels (:mod:`convgrad.engine.phases` splits it into ordinary
convolutions first). Up to three spatial
dimensions are handled, 1-d and 2-d as 3-d with leading sizes of 1; float32
and float64 only (integer, bool and complex data keep the NumPy routes, whose
results are exact or whose kernels are the tested reference).

Nothing here imports Numba until a route is first called: :func:`available`
only looks for it, and :func:`choose` returns ``None`` without it, so every
call takes the NumPy routes. The kernels are compiled with ``cache=True`` (to
``__pycache__`` beside this file, or ``NUMBA_CACHE_DIR``), so only the first
process pays the compilation; they release the GIL and run over ranges of
planes on the engine's thread pool (:func:`convgrad.engine.state.split_run`),
so the thread count is the one :func:`convgrad.engine.state.set_num_threads`
sets, and Numba's own threading layer is never started.

Examples
--------
>>> import numpy as np
>>> from convgrad._geometry import conv_geometry
>>> geom = conv_geometry((2, 4, 9, 9), (4, 1, 3, 3), padding=1, groups=4)
>>> choose(geom, np.dtype("float32"), "auto", "forward", exact=False, finite=True) in (None, "jit_depthwise")
True
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry, prod
from . import taps
from .cost import block_positions, gemm_position_bytes
from .padding import pad, pad_adjoint
from .state import batch_chunks, cache, copy_threads, get_workspace_budget, scratch, split_run

Array = npt.NDArray[Any]

MAX_DIMS = 3
"""Spatial dimensions the kernels handle (fewer are padded to three with sizes of 1)."""

_lock = threading.Lock()
COMPILE_SECONDS: dict[str, float] = {}
"""Seconds the first call of each kernel (per dtype) took in this process: compilation, or loading the cache."""


_found: bool | None = None  # whether the import system found Numba (looked up once per process)


def available() -> bool:
    """Whether Numba can be imported (looked up, not imported; ``sys.modules['numba'] = None`` counts as absent).

    The lookup walks ``sys.path`` (about 30 µs, most of a tiny convolution's
    time), so its answer is kept for the process; ``sys.modules`` is asked
    first on every call.

    Examples
    --------
    >>> isinstance(available(), bool)
    True
    """
    global _found
    if "numba" in sys.modules:
        return sys.modules["numba"] is not None
    if _found is None:
        try:
            _found = importlib.util.find_spec("numba") is not None
        except (ImportError, ValueError):  # pragma: no cover - a broken installation counts as absent
            _found = False
    return _found


def is_depthwise(geom: Geometry) -> bool:
    """``groups == C == O > 1`` (the same test as the dispatcher's)."""
    return geom.c_in == geom.c_out == geom.groups > 1


def choose(geom: Geometry, dtype: np.dtype[Any], method: str, op: str, *, exact: bool, finite: bool) -> str | None:
    """The compiled route for contraction ``op`` of this geometry, or ``None`` to take the NumPy rule.

    ``"jit_depthwise"`` for a depthwise convolution of float32 or float64 data
    in at most three spatial dimensions, for every ``method`` (the kernels are
    direct, so ``"direct"`` allows them; ``"fft"`` and ``"winograd"`` reach this
    only where their own routes do not apply), when Numba is installed and the
    kernels' scratch (:func:`scratch_bytes`, every thread's) fits the workspace
    budget; ``"jit_dense"`` for the input gradient of the dense layers where
    :func:`dense_applies` (one GEMM per group into a cache-sized block of
    positions, then the compiled fold of that block). The kernels put NaN and infinity where PyTorch does, so the route
    needs no finiteness check; ``finite=False`` (data known not to be finite,
    after another route declined them) still takes the NumPy routes.

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad._geometry import conv_geometry
    >>> geom = conv_geometry((1, 3, 8), (3, 3, 3))       # not depthwise
    >>> choose(geom, np.dtype("float32"), "auto", "input", exact=False, finite=True) is None
    True
    """
    del method
    if not finite or exact or np.dtype(dtype).kind != "f" or np.dtype(dtype).itemsize not in (4, 8):
        return None
    if op not in ("forward", "input", "weight") or geom.d > MAX_DIMS or geom.n == 0:
        return None
    if min(geom.out_size + geom.in_size, default=1) == 0 or not available():
        return None
    itemsize, budget = np.dtype(dtype).itemsize, get_workspace_budget()
    if is_depthwise(geom):
        return "jit_depthwise" if scratch_bytes(geom, itemsize) <= budget else None
    if DENSE_ROUTE and op == "input" and dense_applies(geom, itemsize, budget):
        if taps.applies(geom) and taps.sums_in_blas(geom, dtype):  # the taps route, each tap added by the BLAS
            return None
        return "jit_dense"
    return None


# ----------------------------------------------------------------------------- geometry of the kernels


def _three(values: tuple[int, ...], fill: int) -> tuple[int, ...]:
    """``values`` padded in front to three dimensions with ``fill``."""
    return (fill,) * (MAX_DIMS - len(values)) + tuple(values)


class _Plan(NamedTuple):
    """What the kernels need for one geometry (all ``int64``; see :mod:`convgrad.engine.jit_kernels`)."""

    v: Array          # forward and weight gradient: stride, low padding, input, output and buffer sizes, C, grid
    taps: Array       # forward: the weight index of each tap (0, 1, ..., K − 1)
    offs: Array       # forward and weight gradient: each tap's shift in the phase buffer
    ev: Array         # input gradient (exact kernel): stride, dilation, low padding, input, output, kernel, C
    iv: Array         # input gradient: the buffer's sizes, its first index, the largest grid, zero first
    phases: Array     # input gradient: one row per input phase (see jit_kernels.dw_input)
    itaps: Array      # input gradient: the weight index of each tap, phase after phase
    ioffs: Array      # input gradient: each tap's shift in the buffer of g (v and iv also: planes stacked, batch)
    scratch: tuple[int, int, int]  # elements of scratch per thread: forward, input gradient, weight gradient


def _grid_size(counts: tuple[int, ...], widths: tuple[int, ...]) -> int:
    """Length of the flat grid of ``counts`` entries per dimension in a buffer of ``widths``."""
    return (counts[0] - 1) * widths[1] * widths[2] + (counts[1] - 1) * widths[2] + counts[2]


STACK_ELEMENTS = 4096
"""Planes smaller than this (in buffer entries) are stacked, several samples of one channel in one buffer, so that
the grid loops stay long (a 14×14 plane alone leaves LLVM's vector loop mostly its scalar remainder)."""


def _stack(batch: int, plane: int) -> int:
    """How many planes of ``plane`` entries to stack in one buffer (at most the batch)."""
    return max(1, min(batch, STACK_ELEMENTS // max(plane, 1)))


@cache(maxsize=256)
def _plan(geom: Geometry, in_size: tuple[int, ...], padded: bool) -> _Plan:
    """The kernels' vectors for ``geom`` on an input of ``in_size`` (already padded, ``l = 0``, if ``padded``)."""
    s, dl, q, k = (_three(a, 1) for a in (geom.stride, geom.dilation, geom.out_size, geom.kernel))
    n = _three(in_size, 1)
    lo = _three((0,) * geom.d if padded else geom.pad_lo, 0)
    # forward and weight gradient: the phase buffer of the padded input
    t = tuple(-(-((qj - 1) * sj + (kj - 1) * dj + 1) // sj) for qj, sj, kj, dj in zip(q, s, k, dl))
    plane = t[0] * t[1] * t[2]
    nb = _stack(geom.n, s[0] * s[1] * s[2] * plane)
    offs = []
    for idx in itertools.product(*(range(kj) for kj in k)):
        pos = [i * dj for i, dj in zip(idx, dl)]
        phase = ((pos[0] % s[0]) * s[1] + pos[1] % s[1]) * s[2] + pos[2] % s[2]
        m = [pj // sj for pj, sj in zip(pos, s)]
        offs.append(phase * nb * plane + (m[0] * t[1] + m[1]) * t[2] + m[2])
    size = _grid_size(q, t)
    v = np.array(s + lo + n + q + t + (geom.c_in, size, nb, geom.n), dtype=np.int64)
    kk = len(offs)
    # input gradient: per dimension, the phases rho of u = z + l and their taps (k·δ ≡ rho mod s, shift m)
    per_dim = []
    for sj, dj, lj, nj, kj in zip(s, dl, lo, n, k):
        rows = []
        for rho in range(sj):
            a_lo = -(-(lj - rho) // sj)
            a_hi = (lj + nj - 1 - rho) // sj + 1
            dim_taps = [(i, (i * dj - rho) // sj) for i in range(kj) if (i * dj) % sj == rho]
            rows.append((rho, a_lo, max(0, a_hi - a_lo), dim_taps))
        per_dim.append(rows)
    u, tlo = [], []
    for j, rows in enumerate(per_dim):
        biggest = ((k[j] - 1) * dl[j]) // s[j]
        live = [(a_lo, a_lo + count) for _, a_lo, count, _ in rows if count > 0]
        first = min(a for a, _ in live) - biggest
        tlo.append(first)
        u.append(max(b for _, b in live) - first)
    phases: list[tuple[int, ...]] = []
    itaps: list[int] = []
    ioffs: list[int] = []
    zero_first, size_max = 0, 1
    for r1, r2, r3 in itertools.product(*per_dim):
        counts = (r1[2], r2[2], r3[2])
        if min(counts) == 0:
            continue
        if not (r1[3] and r2[3] and r3[3]):
            zero_first = 1
            continue
        start = len(itaps)
        for (i1, m1), (i2, m2), (i3, m3) in itertools.product(r1[3], r2[3], r3[3]):
            itaps.append((i1 * k[1] + i2) * k[2] + i3)
            shift = [r[1] - tl - m for r, tl, m in zip((r1, r2, r3), tlo, (m1, m2, m3))]
            ioffs.append((shift[0] * u[1] + shift[1]) * u[2] + shift[2])
        grid = _grid_size(counts, tuple(u))
        size_max = max(size_max, grid)
        phases.append((r1[1], r2[1], r3[1]) + counts + (r1[0], r2[0], r3[0], grid, start, len(itaps)))
    ev = np.array(s + dl + lo + n + q + k + (geom.c_in,), dtype=np.int64)
    uplane = u[0] * u[1] * u[2]
    nbi = _stack(geom.n, uplane)
    iv = np.array(tuple(u) + tuple(tlo) + (size_max, zero_first, nbi, geom.n), dtype=np.int64)
    bufsize = s[0] * s[1] * s[2] * plane * nb
    stacked = (nb - 1) * plane + size
    return _Plan(v, np.arange(kk, dtype=np.int64), np.array(offs, dtype=np.int64), ev, iv,
                 np.array(phases, dtype=np.int64).reshape(-1, 12), np.array(itaps, dtype=np.int64),
                 np.array(ioffs, dtype=np.int64),
                 (bufsize + stacked, nbi * uplane + (nbi - 1) * uplane + size_max, bufsize + stacked))


ROW_MAX_PLANE = 16384
"""Input planes of at most this many entries take the row-padded kernels where :func:`row_applies` (measured,
float32, one thread, against the phase buffer: 14² 1.9 -> 0.95 ms, 56² 3.0 -> 2.3 ms, 112² 2.7 -> 2.3 ms per
contraction; its ``k2`` copies of each plane must stay in the cache)."""


def row_applies(geom: Geometry) -> bool:
    """Stride 1, zero padding between 0 and the kernel's span on each side (summing to the span along the rows),
    at most two spatial dimensions and planes of at most :data:`ROW_MAX_PLANE` entries: there the output rows
    are as wide as the input rows, so
    the kernels need only zero rows around each plane (:func:`convgrad.engine.jit_kernels.row_forward`).

    Examples
    --------
    >>> from convgrad._geometry import conv_geometry
    >>> row_applies(conv_geometry((8, 512, 14, 14), (512, 1, 3, 3), padding=1, groups=512))
    True
    >>> row_applies(conv_geometry((8, 512, 14, 14), (512, 1, 3, 3), stride=2, padding=1, groups=512))
    False
    """
    if not _direct_padding(geom) or geom.d > 2 or any(s != 1 for s in geom.stride):
        return False
    spans = [(k - 1) * dl for k, dl in zip(geom.kernel, geom.dilation)]
    if spans[-1] >= geom.in_size[-1]:  # a wrapped read would reach beyond the neighbouring row
        return False
    if any(not (0 <= lo <= sp and 0 <= hi <= sp) for lo, hi, sp in zip(geom.pad_lo, geom.pad_hi, spans)):
        return False
    if geom.pad_lo[-1] + geom.pad_hi[-1] != spans[-1]:  # the output rows as wide as the input rows
        return False
    if geom.out_size != geom.full_size:  # a transposed geometry whose output padding leaves inputs unread
        return False
    return prod(geom.in_size) <= ROW_MAX_PLANE


class _RowPlan(NamedTuple):
    """The row-padded kernels' vectors (see :mod:`convgrad.engine.jit_kernels`, ``rv``)."""

    forward: Array    # forward pass and weight gradient
    input: Array      # input gradient (the forward kernel on g, padding mirrored, taps flipped)
    taps: Array       # forward: the weight index of each tap
    itaps: Array      # input gradient: the taps flipped
    offs: Array       # forward and weight gradient: each tap's shift in the buffer (its column's region)
    ioffs: Array      # input gradient: likewise
    scratch: int      # elements of scratch per thread (the largest of the three kernels)


@cache(maxsize=256)
def _row_plan(geom: Geometry) -> _RowPlan:
    """The row-padded kernels' vectors for ``geom`` (where :func:`row_applies`)."""
    n, q, k, dl = (_three(a, 1)[1:] for a in (geom.in_size, geom.out_size, geom.kernel, geom.dilation))
    lo = _three(geom.pad_lo, 0)[1:]
    spans = [(kj - 1) * dj for kj, dj in zip(k, dl)]
    vectors, shifts, scratch = [], [], 0
    for low, size, out, exact in ((lo, n, q, 0), ([sp - lj for sp, lj in zip(spans, lo)], q, n, 1)):
        rows = out[0] + spans[0]
        pstride = rows * size[1]
        nb = _stack(geom.n, pstride)
        region = spans[1] + nb * pstride
        shifts.append(np.array([b * region + a * dl[0] * n[1] + b * dl[1] for a in range(k[0]) for b in range(k[1])],
                               dtype=np.int64))
        vectors.append(np.array((low[0], low[1], size[0], size[1], out[0], rows, dl[0], dl[1], k[0], k[1],
                                 geom.c_in, nb, low[1], spans[1] - low[1], pstride, exact, region), dtype=np.int64))
        scratch = max(scratch, k[1] * region + (nb - 1) * pstride + out[0] * out[1])
    kk = k[0] * k[1]
    taps = np.arange(kk, dtype=np.int64)
    return _RowPlan(vectors[0], vectors[1], taps, taps[::-1].copy(), shifts[0], shifts[1], scratch)


def scratch_bytes(geom: Geometry, itemsize: int) -> int:
    """Scratch of the depthwise kernels for ``geom``, all threads together, in bytes (the largest of the three)."""
    direct = _direct_padding(geom)
    plan = _plan(geom, geom.in_size if direct else geom.padded_size, not direct)
    rows = _row_plan(geom).scratch if row_applies(geom) else 0
    return max(max(plan.scratch), rows) * itemsize * copy_threads()


# ----------------------------------------------------------------------------- running the kernels


def _kernels() -> Any:
    """The module of compiled kernels (imports Numba; compiled, or loaded from the cache, on first call)."""
    module = sys.modules.get(f"{__package__}.jit_kernels")
    if module is None:
        with _lock:
            from . import jit_kernels as module
    return module


def _run(name: str, args: tuple[Any, ...], total: int, elements: int) -> None:
    """Run kernel ``name`` over ``[0, total)`` split on the thread pool; time its first call per dtype."""
    key = f"{name}[{args[0].dtype}]"
    if key not in COMPILE_SECONDS:
        import time

        t0 = time.perf_counter()
        kernel = getattr(_kernels(), name)
        kernel(*args, 0, min(1, total))  # compiles (or loads from the cache) on one plane or channel
        COMPILE_SECONDS[key] = time.perf_counter() - t0
    kernel = getattr(_kernels(), name)

    def work(a: int, b: int) -> None:
        kernel(*args, a, b)

    split_run(total, elements, work, compiled=True)


def _direct_padding(geom: Geometry) -> bool:
    """Zero padding (or cropping) without input dilation: the kernels pad in their scratch instead."""
    return geom.padding_mode == "zeros" and all(a == 1 for a in geom.input_dilation)


def _flat(a: Array, dtype: np.dtype[Any]) -> Array:
    """``a`` as a contiguous 1-d array of ``dtype`` (a view where it already is one)."""
    return np.ascontiguousarray(a, dtype=dtype).reshape(-1)


def depthwise_forward(x: Array, w: Array, geom: Geometry, bias: Array | None = None) -> Array:
    """``y[n, c, q] = Σ_k w[c, 0, k] · pad(x)[n, c, q·s + k·δ] (+ bias[c])`` by the compiled plane kernel; the
    bias is added as each plane is written (the same sum, ``y + b``, without a second pass over ``y``)."""
    dtype = np.result_type(x, w) if bias is None else np.result_type(x, w, bias)
    direct = _direct_padding(geom)
    src = x if direct else pad(x, geom)
    plan = _plan(geom, tuple(src.shape[2:]), not direct)
    y = np.empty((x.shape[0], geom.c_out) + geom.out_size, dtype=dtype)
    b = np.empty(0, dtype=dtype) if bias is None else _flat(bias, dtype)
    if row_applies(geom):
        rp = _row_plan(geom)
        _run("row_forward", (_flat(src, dtype), _flat(w, dtype), y.reshape(-1), rp.forward, rp.taps, rp.offs,
                             plan.ev, b), -(-x.shape[0] // int(rp.forward[11])) * geom.c_in,
             y.size * prod(geom.kernel))
        return y
    blocks = -(-x.shape[0] // int(plan.v[17]))
    _run("dw_forward", (_flat(src, dtype), _flat(w, dtype), y.reshape(-1), plan.v, plan.taps, plan.offs, b),
         blocks * geom.c_in, y.size * prod(geom.kernel))
    return y


def depthwise_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``gx = pad_adjoint(Σ_k scatter_k(w[c, 0, k] · g))``, gathered per input phase (no padded copy for zeros)."""
    dtype = np.result_type(g, w)
    direct = _direct_padding(geom)
    size = geom.in_size if direct else geom.padded_size
    plan = _plan(geom, size, not direct)
    out = np.empty((g.shape[0], geom.c_in) + size, dtype=dtype)
    if row_applies(geom):
        rp = _row_plan(geom)
        _run("row_forward", (_flat(g, dtype), _flat(w, dtype), out.reshape(-1), rp.input, rp.itaps, rp.ioffs,
                             plan.ev, np.empty(0, dtype=dtype)), -(-g.shape[0] // int(rp.input[11])) * geom.c_in,
             g.size * prod(geom.kernel))
        return out
    _run("dw_input", (_flat(g, dtype), _flat(w, dtype), out.reshape(-1), plan.iv, plan.ev, plan.phases,
                      plan.itaps, plan.ioffs),
         -(-g.shape[0] // int(plan.iv[8])) * geom.c_in, g.size * prod(geom.kernel))
    return out if direct else np.ascontiguousarray(pad_adjoint(out, geom))


def depthwise_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``gw[c, 0, k] = Σ_{n,q} g[n, c, q] · pad(x)[n, c, q·s + k·δ]``, per channel, partial sums added in float64."""
    dtype = np.result_type(g, x)
    direct = _direct_padding(geom)
    src = x if direct else pad(x, geom)
    plan = _plan(geom, tuple(src.shape[2:]), not direct)
    gw = np.empty(geom.weight_shape, dtype=dtype)
    if row_applies(geom):
        rp = _row_plan(geom)
        _run("row_weight", (_flat(g, dtype), _flat(src, dtype), gw.reshape(-1), rp.forward, rp.offs), geom.c_in,
             g.size * prod(geom.kernel))
        return gw
    _run("dw_weight", (_flat(g, dtype), _flat(src, dtype), gw.reshape(-1), plan.v, plan.offs), geom.c_in,
         g.size * prod(geom.kernel))
    return gw


def backward_fuses(geom: Geometry, itemsize: int) -> bool:
    """Whether :func:`depthwise_backward` computes the three gradients in one pass: zero padding (or cropping)
    without input dilation, where both gradients' kernels read ``g`` and ``x`` in place; at least two channels
    per thread (the fused pass splits the channels over the threads, the separate input gradient also the
    samples); and both gradients' scratch at once, every thread's, within the workspace budget.

    Examples
    --------
    >>> from convgrad._geometry import conv_geometry
    >>> backward_fuses(conv_geometry((8, 32, 56, 56), (32, 1, 3, 3), padding=1, groups=32), 4)
    True
    >>> backward_fuses(conv_geometry((8, 32, 56, 56), (32, 1, 3, 3), padding=1, groups=32,
    ...                              padding_mode="reflect"), 4)
    False
    """
    if not _direct_padding(geom) or geom.c_in < 2 * copy_threads():
        return False
    return 2 * scratch_bytes(geom, itemsize) <= get_workspace_budget()


def depthwise_backward(g: Array, x: Array, w: Array, geom: Geometry) -> tuple[Array, Array, Array]:
    """``(gx, gw, gb)`` of a depthwise layer (where :func:`backward_fuses`), channel after channel on the thread pool.

    The three gradients read every plane of ``g``; computed one after the other, ``g`` passes through the memory
    three times. Here each channel's input gradient reads its planes of ``g`` from memory and the weight and bias
    gradients find them in the cache (:func:`convgrad.engine.jit_kernels.row_backward`, ``dw_backward``). The
    numbers are those of :func:`depthwise_input_grad` and :func:`depthwise_weight_grad`; the bias gradient sums
    each channel in partial sums of the data's dtype added in float64.
    """
    dtype = np.result_type(g, x, w)
    plan = _plan(geom, geom.in_size, False)
    gx = np.empty((g.shape[0], geom.c_in) + geom.in_size, dtype=dtype)
    gw = np.empty(geom.weight_shape, dtype=dtype)
    gb = np.empty(geom.c_out, dtype=dtype)
    operands = (_flat(g, dtype), _flat(x, dtype), _flat(w, dtype), gx.reshape(-1), gw.reshape(-1), gb)
    elements = 2 * g.size * prod(geom.kernel)
    if row_applies(geom):
        rp = _row_plan(geom)
        _run("row_backward", operands + (rp.input, rp.forward, rp.itaps, rp.ioffs, rp.offs, plan.ev), geom.c_in,
             elements)
    else:
        _run("dw_backward", operands + (plan.iv, plan.ev, plan.phases, plan.itaps, plan.ioffs, plan.v, plan.offs),
             geom.c_in, elements)
    return gx, gw, gb


# ----------------------------------------------------------------------------- dense layers: the compiled fold

DENSE_ROUTE = True
"""Whether :func:`choose` offers ``"jit_dense"`` at all (the tests and benchmarks switch it off to compare)."""

DENSE_MIN_POSITIONS = 256
"""Output positions per sample below which dense layers keep the NumPy routes (their chunks span samples, which
the compiled route's blocks do not: a block is part of one sample)."""


def dense_applies(geom: Geometry, itemsize: int, budget: int) -> bool:
    """Where ``"jit_dense"`` takes the input gradient: a dense (not depthwise, not pointwise) layer of stride 1
    with zero padding, at least :data:`DENSE_MIN_POSITIONS` output positions per sample, and one position's
    windows within ``budget``.

    Stride 1 only: there the fold adds contiguous runs, and it measured 1.4–3× faster than NumPy's one
    ``+=`` per kernel offset (per sample: conv3d 16ch 16×32² 5.8 -> 4.0 ms, conv1d 64ch k9 3.5 -> 2.0 ms,
    dilated 64ch 64² 2.1 -> 0.7 ms); with stride 2 its scattered adds were slower than NumPy's (first layer
    1.7 -> 2.6 ms). A compiled im2col for the forward pass and the weight gradient was tried too and was no
    faster than NumPy's strided copies of a cache-sized block, so those keep the NumPy routes.

    Examples
    --------
    >>> from convgrad._geometry import conv_geometry
    >>> dense_applies(conv_geometry((2, 16, 16, 32, 32), (32, 16, 3, 3, 3), padding=1), 4, 256 << 20)
    True
    >>> dense_applies(conv_geometry((8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3), 4, 256 << 20)
    False
    >>> dense_applies(conv_geometry((8, 64, 7, 7), (64, 64, 3, 3), padding=1), 4, 256 << 20)   # few positions
    False
    """
    if is_depthwise(geom) or not _direct_padding(geom) or prod(geom.out_size) < DENSE_MIN_POSITIONS:
        return False
    if any(s != 1 for s in geom.stride):
        return False
    if all(k == 1 for k in geom.kernel) and not geom.pads_input:  # the pointwise route: one GEMM, no windows
        return False
    return gemm_position_bytes(geom, itemsize) <= budget


@cache(maxsize=256)
def _dense_vector(geom: Geometry) -> Array:
    """The kernels' ``v`` for a dense geometry: stride, dilation, low padding, input, output and kernel sizes, C."""
    parts = (_three(geom.stride, 1) + _three(geom.dilation, 1) + _three(geom.pad_lo, 0) + _three(geom.in_size, 1)
             + _three(geom.out_size, 1) + _three(geom.kernel, 1) + (geom.c_in,))
    v = np.array(parts, dtype=np.int64)
    v.flags.writeable = False
    return v


def _compiled(name: str, args: tuple[Any, ...]) -> Any:
    """Kernel ``name``, its first call per dtype (on an empty range: it compiles, or loads the cache) timed."""
    key = f"{name}[{args[0].dtype}]"
    kernel = getattr(_kernels(), name)
    if key not in COMPILE_SECONDS:
        import time

        t0 = time.perf_counter()
        kernel(*args, 0, 0)
        COMPILE_SECONDS[key] = time.perf_counter() - t0
    return kernel


def _run_range(name: str, args: tuple[Any, ...], total: int, elements: int, *, aside: bool = True) -> None:
    """Like :func:`_run`, for kernels that add into their output: the first call compiles on an empty range.
    ``aside=False`` for a kernel run between multi-threaded GEMMs (:func:`~convgrad.engine.state.split_run`)."""
    kernel = _compiled(name, args)

    def work(a: int, b: int) -> None:
        kernel(*args, a, b)

    split_run(total, elements, work, compiled=aside)


def _dense_blocks(geom: Geometry, dtype: np.dtype[Any]) -> list[tuple[int, int]]:
    """``[q0, q1)`` blocks of one sample's output positions (see :func:`convgrad.engine.cost.block_positions`)."""
    q = prod(geom.out_size)
    step = block_positions(geom, dtype.itemsize, get_workspace_budget())
    return [(q0, min(q, q0 + step)) for q0 in range(0, q, step)]


def dense_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``gx = fold(wᵀ g)``: per sample and block, one GEMM per group into the block, then the compiled fold."""
    dtype = np.result_type(g, w)
    n, og, q = g.shape[0], geom.c_out // geom.groups, prod(geom.out_size)
    w_t = w.astype(dtype, copy=False).reshape(geom.groups, og, -1).swapaxes(1, 2)  # (G, j, O/G)
    rows = w_t.shape[1] * geom.groups
    gx = np.zeros((n, geom.c_in) + geom.in_size, dtype=dtype)
    v, gxf = _dense_vector(geom), gx.reshape(-1)
    g = g.astype(dtype, copy=False)
    for n0 in range(n):
        g_n = g[n0].reshape(geom.groups, og, q)
        for q0, q1 in _dense_blocks(geom, dtype):
            z = scratch((rows, q1 - q0), dtype)
            np.matmul(w_t, g_n[:, :, q0:q1], out=z.reshape(geom.groups, -1, q1 - q0))
            _run_range("dense_fold", (z.reshape(-1), gxf, v, n0, q0, q1), geom.c_in, z.size, aside=False)
    return gx


# ----------------------------------------------------------------------------- thin dense layers: direct kernels

DIRECT_ROUTE = True
"""Whether :func:`choose_direct` offers ``"jit_direct"`` at all (the tests and benchmarks switch it off to compare)."""

DIRECT_MAX_CHANNELS = 32
"""Input and output channels up to which a dense layer may take ``"jit_direct"`` (:func:`direct_applies`).

Measured against the NumPy routes (float32, 2 threads), each contraction alone: the forward pass and input
gradient were 0.6–0.77× as long with 16–32 channels and equal with 64; the weight gradient (im2col and a long,
skinny GEMM, or Winograd, on the NumPy routes) 0.40–0.65× with 16–64 channels, equal with 128 and slower from
256. But a 64-channel layer keeps the BLAS for its other two contractions, whose threads spin for about 0.1 s
after each call and share the cores with the kernel that runs next: forward + backward back to back, 64→64 at
56² measured 1.01× and the dilated 64→64 at 64² 1.20× as long with the direct weight gradient as without. So
the route takes a layer whole, where all three contractions gain: conv3d 16→32 at 16×32², 0.53×."""

DIRECT_MIN_CHANNELS = 8
"""Fewer input or output channels keep the NumPy routes (the kernels work on four channels of each at a time:
3→32 at 224², forward + backward, was 1.05× as long as before)."""

DIRECT_MIN_POSITIONS = 1024
"""Output positions per sample below which the NumPy routes are kept (8→16 at 24²: 1.08× as long)."""

DIRECT_SPAN = 1536
"""Grid entries per block of the direct kernels (whole output rows, or pieces of a row wider than this): four
output channels' sums over a block stay in the L1 cache (float32: 24 KiB) or L2 (float64)."""


def direct_applies(geom: Geometry, itemsize: int, budget: int) -> bool:
    """Where ``"jit_direct"`` takes all three contractions: a thin dense layer (``groups == 1``, between
    :data:`DIRECT_MIN_CHANNELS` and :data:`DIRECT_MAX_CHANNELS` input and output channels), 2-d or 3-d,
    stride 1, zero padding (no crop, and no more than the kernel's span, so the input gradient's full correlation
    needs none either), at least eight kernel offsets and :data:`DIRECT_MIN_POSITIONS` outputs per sample, and
    one sample's padded grids within ``budget`` (:func:`direct_sample_bytes`).

    On such a layer im2col writes a matrix ``K`` times the input and reads it back for products whose inner
    size is only ``C·K``, and the implicit route's products have an inner size of ``C`` alone; the kernels of
    :func:`direct_forward` and :func:`direct_weight_grad` keep sixteen channel pairs' sums in registers and the
    cache instead (conv3d 16→32 at 16×32², forward / input / weight gradient: 7.5 / 7.8 / 6.3 ms against
    10.5 / 13.2 / 15.2 on the NumPy routes).

    Examples
    --------
    >>> from convgrad._geometry import conv_geometry
    >>> direct_applies(conv_geometry((2, 16, 16, 32, 32), (32, 16, 3, 3, 3), padding=1), 4, 256 << 20)
    True
    >>> direct_applies(conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), padding=1), 4, 256 << 20)   # wide
    False
    """
    if geom.groups != 1 or geom.d not in (2, 3):
        return False
    if not DIRECT_MIN_CHANNELS <= min(geom.c_in, geom.c_out) <= max(geom.c_in, geom.c_out) <= DIRECT_MAX_CHANNELS:
        return False
    if any(s != 1 for s in geom.stride) or not _direct_padding(geom) or not geom.plain_padding:
        return False
    if any(lo >= sp or hi >= sp for lo, hi, sp in zip(geom.pad_lo, geom.pad_hi, geom.span)):  # span: δ(K − 1) + 1
        return False
    if prod(geom.kernel) < 8 or prod(geom.out_size) < DIRECT_MIN_POSITIONS:
        return False
    return direct_sample_bytes(geom, itemsize) <= budget


def direct_sample_bytes(geom: Geometry, itemsize: int) -> int:
    """Workspace per sample of ``"jit_direct"``: the larger padded grid, the input's (forward pass, weight
    gradient) or ``g``'s (the input gradient's full correlation)."""
    from .implicit import full_geometry

    full = full_geometry(geom)
    return max(geom.c_in * prod(geom.padded_size), full.c_in * prod(full.padded_size)) * itemsize


def choose_direct(geom: Geometry, dtype: np.dtype[Any], method: str, op: str, *, exact: bool,
                  finite: bool) -> str | None:
    """``"jit_direct"`` where :func:`direct_applies` (asked after the FFT, before Winograd and the implicit
    route), for ``method="auto"`` or ``"direct"``, float32 or float64 data, finite, when Numba is installed.

    Finite, because the kernels would put NaN where PyTorch has none: they multiply the padding's zeros by the
    weight (the input gradient's full correlation pads ``g`` too), the last input channel's row by zero weights
    where the channels are not a multiple of four, and the weight gradient the grid's junk entries of ``x`` by
    zeros of ``g``; :data:`convgrad.engine.dispatch.FINITE_ONLY` sends other data to the NumPy routes.

    Examples
    --------
    >>> from convgrad._geometry import conv_geometry
    >>> geom = conv_geometry((2, 16, 16, 32, 32), (32, 16, 3, 3, 3), padding=1)
    >>> choose_direct(geom, np.dtype("float32"), "auto", "weight", exact=False, finite=True) == (
    ...     "jit_direct" if available() else None)
    True
    >>> choose_direct(geom, np.dtype("float32"), "gemm", "weight", exact=False, finite=True) is None
    True
    """
    if not DIRECT_ROUTE or method not in ("auto", "direct") or not finite or exact:
        return None
    if op not in ("forward", "input", "weight"):
        return None
    if np.dtype(dtype).kind != "f" or np.dtype(dtype).itemsize not in (4, 8) or geom.n == 0:
        return None
    if not available() or not direct_applies(geom, np.dtype(dtype).itemsize, get_workspace_budget()):
        return None
    return "jit_direct"


@cache(maxsize=128)
def _direct_blocks(geom: Geometry, nb: int) -> Array:
    """The blocks of ``nb`` samples' outputs, ``(blocks, 4)``: grid position of the first output, rows, columns
    per row, flat index of the first output in channel 0 of ``y`` (see :mod:`convgrad.engine.jit_kernels`)."""
    pw, q_rows, qd = geom.padded_size[-1], geom.out_size[-2], geom.out_size[-1]
    per = max(1, -(-q_rows // -(-(q_rows * pw) // DIRECT_SPAN)))  # rows per block, balanced
    cols = -(-qd // -(-qd // DIRECT_SPAN))  # a row wider than a block: pieces of at most DIRECT_SPAN columns
    flat = [prod(geom.padded_size[i + 1 :]) for i in range(geom.d)]
    qtot, plane = prod(geom.out_size), prod(geom.padded_size)
    rows: list[tuple[int, int, int, int]] = []
    for n in range(nb):
        for idx in itertools.product(*(range(q) for q in geom.out_size[:-2])):
            gbase = n * plane + sum(i * f for i, f in zip(idx, flat))
            ybase = n * geom.c_out * qtot + sum(i * prod(geom.out_size[j + 1 :]) for j, i in enumerate(idx))
            if pw > DIRECT_SPAN:
                rows.extend((gbase + r * pw + c0, 1, min(cols, qd - c0), ybase + r * qd + c0)
                            for r in range(q_rows) for c0 in range(0, qd, cols))
                continue
            for r0 in range(0, q_rows, per):
                rows.append((gbase + r0 * pw, min(per, q_rows - r0), qd, ybase + r0 * qd))
    blocks = np.array(rows, dtype=np.int64).reshape(-1, 4)
    blocks.flags.writeable = False
    return blocks


def _direct_chunks(x: Array, geom: Geometry, dtype: np.dtype[Any]) -> Iterator[tuple[int, int, Array, tuple[Any, ...]]]:
    """Per chunk of samples within the budget: its range, its padded grid and the kernels' geometry arguments
    (offsets, blocks, grid row length, output row length, outputs per channel, output channels)."""
    from .grid import _grid_input, _offsets

    offsets = np.array(_offsets(geom), dtype=np.int64)
    for n0, n1 in batch_chunks(x.shape[0], geom.c_in * prod(geom.padded_size) * dtype.itemsize):
        args = (offsets, _direct_blocks(geom, n1 - n0), geom.padded_size[-1], geom.out_size[-1],
                prod(geom.out_size), geom.c_out)
        yield n0, n1, _grid_input(x[n0:n1], geom, dtype), args


def _round4(count: int) -> int:
    return -(-count // 4) * 4


def direct_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``y = conv(x, w)`` by the compiled direct kernel, sample chunks of at most the budget's padded inputs."""
    dtype = np.result_type(x, w)
    o, per_sample = geom.c_out, geom.c_out * geom.c_in * prod(geom.kernel) * prod(geom.out_size)
    wt = np.zeros((_round4(o), _round4(geom.c_in) * prod(geom.kernel)), dtype=dtype)
    wt[:o, : w[0].size] = w.reshape(o, -1)
    y = np.empty((x.shape[0], o) + geom.out_size, dtype=dtype)
    for n0, n1, xg, args in _direct_chunks(x, geom, dtype):
        _run_range("direct_forward", (xg, wt, y[n0:n1].reshape(-1)) + args, len(args[1]), (n1 - n0) * per_sample)
    return y


def direct_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``gx``: the forward kernel on the full correlation of ``g`` with the flipped, channel-swapped weight."""
    from .implicit import full_geometry

    flip = (slice(None), slice(None)) + (slice(None, None, -1),) * geom.d
    return direct_forward(g, w.swapaxes(0, 1)[flip], full_geometry(geom))


def direct_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``gw[o, c, k] = Σ_{n,q} g[n, o, q] · x_pad[n, c, q + δ·k]``: per-thread float64 partial sums, added."""
    dtype = np.result_type(g, x)
    o, kk = geom.c_out, prod(geom.kernel)
    per_sample = o * geom.c_in * kk * prod(geom.out_size)
    total = np.zeros((_round4(o), _round4(geom.c_in) * kk), dtype=np.float64)
    for n0, n1, xg, grid_args in _direct_chunks(x, geom, dtype):
        gf = np.ascontiguousarray(g[n0:n1], dtype=dtype).reshape(-1)
        args = (gf, xg) + grid_args + (total.shape[0],)
        kernel = _compiled("direct_weight", args)
        parts: dict[int, Array] = {}

        def work(a: int, b: int, kernel: Any = kernel, args: tuple[Any, ...] = args,
                 parts: dict[int, Array] = parts) -> None:
            parts[a] = kernel(*args, a, b)

        split_run(len(grid_args[1]), (n1 - n0) * per_sample, work, compiled=True)
        for a in sorted(parts):  # in the blocks' order, whichever thread finished first: the same sum each call
            total += parts[a]
    return total[:o, : geom.c_in * kk].astype(dtype).reshape(geom.weight_shape)


ROUTES: dict[str, dict[str, Callable[[Array, Array, Geometry], Array]]] = {
    "forward": {"jit_depthwise": depthwise_forward, "jit_direct": direct_forward},
    "input": {"jit_depthwise": depthwise_input_grad, "jit_dense": dense_input_grad, "jit_direct": direct_input_grad},
    "weight": {"jit_depthwise": depthwise_weight_grad, "jit_direct": direct_weight_grad},
}
"""This module's routes, per contraction, with the signature of :data:`convgrad.engine.dispatch.ROUTES`' entries."""
