"""The Winograd route: F(2×2, 3×3) and F(4×4, 3×3) for 3×3 kernels, F(2×2×2, 3×3×3) for 3×3×3 kernels, at
stride 1 (2-d and 3-d, ``groups == 1``).

An ``α × α`` tile ``d`` of the padded input (``α = m + 2``) gives an ``m × m``
tile of outputs as ``Y = Aᵀ [(G w Gᵀ) ⊙ (Bᵀ d B)] A`` (Lavin & Gray, 2016), so
the contraction over channels becomes ``α²`` independent matrix products, one
per point of the transform, with ``α²/(9·m²)`` of the direct route's
multiplications (0.44 for ``m = 2``, 0.25 for ``m = 4``)::

    V[α, c, n, t] = (Bᵀ d_{n,c,t} B)[α]        input transform, tiles t = (t1, t2) on a stride-m grid
    U[α, o, c]    = (G w_{o,c} Gᵀ)[α]          weight transform
    M[α]          = U[α] @ V[α]               α² GEMMs (O × C) @ (C × N·T)
    y_tile        = Aᵀ M A                     output transform

In ``d`` dimensions (``d = 3``: F(2, 3)³, :data:`TILES_BY_DIM`) every
transform is the ``d``-fold one, ``α^d`` GEMMs, with ``Bᵀ ⊗ Bᵀ ⊗ Bᵀ`` and so
on; the code below is written for any ``d``.

The gradients use the same pieces. The weight gradient is the adjoint of the
forward map in ``w``: ``gw = Gᵀ [Σ_{n,t} (A g Aᵀ) ⊙ (Bᵀ d B)] G``, ``α²`` GEMMs
``(O × N·T) @ (N·T × C)``. The input gradient is a full correlation of ``g``
with the kernel flipped and its channel axes swapped, computed by the forward
pieces (zero padding: only the input's own positions; other padding modes and
input dilation: every padded position, then :func:`convgrad.engine.padding.pad_adjoint`);
the flip goes into ``G ⊗ G`` and the swap into the GEMMs, which take
``U[α]ᵀ``, so the flipped kernel is never copied. The weight transform and
its adjoint are thin GEMMs by ``G ⊗ G``, split over the threads by output
channel where the chunks run in parallel (:func:`weight_transform`).

The matrices come from the interpolation points (:data:`POINTS`, Toom–Cook):
``Aᵀ`` and ``G`` are Vandermonde rows of the points (the point at infinity
picks the leading coefficient) and ``Bᵀ`` is solved from the identity itself
(:func:`matrices`). F(2×2, 3×3) uses 0, ±1, ∞; F(4×4, 3×3) uses 0, ±1, 2,
−1/2, ∞, which measured 3× less float32 error here than the symmetric 0, ±1, ±2, ∞
(the choice of points for accuracy is studied by Barabasz et al., 2020).

The transforms: for 2-d layers with Numba installed, compiled kernels that gather each
sample–channel plane and transform it in one pass (:mod:`convgrad.engine.winograd_jit`,
no padded copy); without it, NumPy: the input is placed in a zero tile grid, the
overlapping tiles are copied into an ``(α², …)`` matrix and multiplied by
``Bᵀ ⊗ Bᵀ`` in one GEMM (the output and gradient transforms likewise by
``Aᵀ ⊗ Aᵀ`` and ``A ⊗ A``). The workspace (``V``, ``M`` and, without Numba,
the tile grid and the tile matrix) is chunked over samples, a few MiB per
chunk (:data:`CHUNK_BYTES`, so that ``V`` and ``M`` stay in the caches) and
within the workspace budget. With the compiled transforms, several threads
and threadpoolctl installed, whole chunks run in parallel, one per thread,
with the BLAS limited to one thread for the duration of the call (the stages
then never wait for each other); otherwise each stage uses every thread.

A dilated layer (dilation ``δ``) is ``Π δ_i`` undilated ones on the polyphase
grids of its padded input, stacked as samples (:func:`stacked`).

In float32 the transforms add numbers of both signs before the products, so
the error against a float64 result is a few times the direct route's
(measured per variant and contraction, :data:`ERROR_FACTOR`); a NaN or an
infinity would spread over its tile, so the route takes finite data only
(:func:`choose`). :func:`variant` picks the tile size per layer.

Examples
--------
>>> import numpy as np
>>> from convgrad._geometry import conv_geometry
>>> from convgrad.engine.gemm import gemm_forward
>>> x, w = np.random.default_rng(0).standard_normal((2, 3, 7, 6)), np.ones((4, 3, 3, 3))
>>> geom = conv_geometry(x.shape, w.shape, padding=1)
>>> bool(np.allclose(winograd_forward(x, w, geom), gemm_forward(x, w, geom)))
True
>>> bool(np.allclose(winograd_forward(x, w, geom, tile=4, compiled=False), gemm_forward(x, w, geom)))
True
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry, prod
from . import cost, implicit, winograd_jit
from .padding import pad, pad_adjoint
from .state import (
    PARALLEL_MIN_ELEMENTS,
    blas_controller,
    copy_threads,
    get_workspace_budget,
    scratch,
    single_threaded_blas,
    split_run,
)

Array = npt.NDArray[Any]

TILES = (2, 4)
"""The 2-d variants: outputs per tile and dimension, F(m×m, 3×3)."""

TILES_BY_DIM: dict[int, tuple[int, ...]] = {2: TILES, 3: (2,)}
"""The variants per number of spatial dimensions (3-d: F(2×2×2, 3×3×3) only; F(4, 3)³ would have 216 GEMMs and
the error of F(4×4) compounded once more)."""

POINTS: dict[int, tuple[float | None, ...]] = {2: (0.0, 1.0, -1.0, None), 4: (0.0, 1.0, -1.0, 2.0, -0.5, None)}
"""Interpolation points of each variant (``None``: the point at infinity)."""

MAX_ERROR_FACTOR = 10.0
"""``method="auto"`` takes a Winograd variant only if its float32 error is within this factor of the direct route's."""

ERROR_FACTOR: dict[int, dict[str, float]] = {
    2: {"forward": 2.0, "input": 2.0, "weight": 2.0},
    4: {"forward": 14.0, "input": 15.0, "weight": 7.0},
}
"""Float32 error of each 2-d variant over the error of the route ``method="direct"`` takes, per contraction: the
largest ratio measured on the benchmark layers, rounded up (performance page). F(4×4)'s forward pass is over
:data:`MAX_ERROR_FACTOR` since the implicit route (2.2e-7 where the im2col route had 5.8e-7) became the direct
route of the 64→64 and 128→128 layers. The weight gradient's is that of chunked accumulation
(:data:`CHUNK_BYTES`): one sum over the whole batch measured up to 10.4×."""

ERROR_FACTOR_BY_DIM: dict[int, dict[int, dict[str, float]]] = {
    2: ERROR_FACTOR,
    3: {2: {"forward": 2.0, "input": 2.5, "weight": 5.0}},
}
""":data:`ERROR_FACTOR` per number of spatial dimensions (3-d: the largest ratio measured on the benchmark's
three 3-d layers, rounded up: 1.4–1.9× forward, 1.4–2.3× input gradient, 1.5–4.5× weight gradient)."""

COMPILED_TRANSFORM_FLOPS_PER_ELEMENT = 5.0
"""Cost of one element of ``V``, ``M`` or the gradient transform by the compiled kernels, in GEMM flops."""

NUMPY_TRANSFORM_FLOPS_PER_ELEMENT = 80.0
"""Cost of one element of the NumPy transforms (the tile-grid placement, the tile copy and the Kronecker GEMM,
together, per element of ``V`` or ``M``), in GEMM flops."""

NUMPY_TRANSFORM_FLOPS_PER_ELEMENT_BY_DIM: dict[int, float] = {2: NUMPY_TRANSFORM_FLOPS_PER_ELEMENT, 3: 150.0}
""":data:`NUMPY_TRANSFORM_FLOPS_PER_ELEMENT` per number of spatial dimensions (3-d: a 64-long Kronecker GEMM)."""

WEIGHT_FLOPS_PER_ELEMENT = 140.0
"""Cost of one element of the transformed weight ``U`` (or of the weight gradient's accumulator), in GEMM flops:
written by a GEMM with 9-long sums, read by the batched GEMMs."""

GEMM_EFFICIENCY: dict[int, float] = {2: 1.5, 4: 2.5}
"""Cost per flop of the ``α²`` batched GEMMs relative to the direct route's one large GEMM (they are smaller and
synchronise their threads ``α²`` times). These constants were fitted to the times measured on the benchmark
layers (README, performance page)."""

GEMM_EFFICIENCY_3D = 1.5
""":data:`GEMM_EFFICIENCY` of F(2×2×2, 3×3×3)'s 64 batched GEMMs."""


CHUNK_BYTES: dict[bool, int] = {True: 4 << 20, False: 8 << 20}
"""Workspace per chunk of samples (compiled transforms, NumPy transforms), below the budget: ``V`` and ``M`` of
a chunk this size stay in the caches between the transforms and the GEMMs (measured 20–30 % faster than one
chunk of the whole batch on the benchmark layers)."""


class Matrices(NamedTuple):
    """The transform matrices of F(m×m, 3×3): ``Aᵀ (m × α)``, ``G (α × 3)``, ``Bᵀ (α × α)``."""

    at: Array
    g: Array
    bt: Array


@functools.cache
def matrices(m: int) -> Matrices:
    """``Aᵀ``, ``G`` and ``Bᵀ`` of F(m, 3) from :data:`POINTS`, in float64.

    ``Aᵀ[i, j] = p_j^i`` and ``G[j, k] = p_j^k`` (the point at infinity: the
    leading coefficient only); ``Bᵀ`` is the solution of
    ``Σ_j Aᵀ[i, j] G[j, k] Bᵀ[j, s] = [s = i + k]``, which makes
    ``y = Aᵀ [(G w) ⊙ (Bᵀ d)]`` the valid correlation of ``d`` with ``w``.

    Examples
    --------
    >>> mat = matrices(2)
    >>> mat.bt.round(6) + 0.0
    array([[ 1. ,  0. , -1. ,  0. ],
           [ 0. ,  0.5,  0.5,  0. ],
           [ 0. , -0.5,  0.5,  0. ],
           [ 0. , -1. ,  0. ,  1. ]])
    """
    points = POINTS[m]
    alpha = m + 2
    at = np.zeros((m, alpha))
    g = np.zeros((alpha, 3))
    for j, p in enumerate(points):
        if p is None:
            at[m - 1, j] = 1.0
            g[j, 2] = 1.0
        else:
            at[:, j] = [p**i for i in range(m)]
            g[j] = [p**k for k in range(3)]
    system = np.array([at[i] * g[:, k] for i in range(m) for k in range(3)])  # (3m, α)
    target = np.array([np.eye(alpha)[i + k] for i in range(m) for k in range(3)])  # (3m, α)
    bt = np.linalg.lstsq(system, target, rcond=None)[0]
    bt[np.abs(bt) < 1e-12] = 0.0
    for a in (at, g, bt):
        a.setflags(write=False)
    return Matrices(at, g, bt)


def _kron(a: Array, d: int) -> Array:
    """``a ⊗ … ⊗ a`` (``d`` factors)."""
    return functools.reduce(np.kron, [a] * d)


@functools.cache
def _cast(m: int, dtype: np.dtype[Any], d: int = 2) -> tuple[Array, Array, Array, Array, Array]:
    """``Aᵀ``, ``Bᵀ`` and the ``d``-fold ``Bᵀ ⊗ Bᵀ``, ``Aᵀ ⊗ Aᵀ`` and ``A ⊗ A`` in ``dtype`` (contiguous)."""
    mat = matrices(m)
    at, bt = mat.at.astype(dtype), mat.bt.astype(dtype)
    return at, bt, _kron(bt, d), _kron(at, d), np.ascontiguousarray(_kron(at, d).T)


@functools.cache
def _kron_g(m: int, d: int = 2, flip: bool = False) -> Array:
    """``G ⊗ G`` (``α² × 9``; ``d``-fold: ``α^d × 3^d``): ``(G w Gᵀ)[α, α'] = Σ_{ij} G[α, i] G[α', j] w[i, j]``;
    ``flip``: its columns reversed, the same product for the kernel reversed in every dimension (``w[2 − i, 2 − j]``
    is element ``8 − (3i + j)`` of the flattened kernel)."""
    kron = _kron(matrices(m).g, d)
    return np.ascontiguousarray(kron[:, ::-1]) if flip else kron


def applies(geom: Geometry) -> bool:
    """Two or three spatial dimensions, a 3×3 (3×3×3) kernel, stride 1 (any dilation: :func:`stacked`), one group,
    some outputs."""
    d = geom.d
    return (d in TILES_BY_DIM and geom.kernel == (3,) * d and geom.stride == (1,) * d and geom.groups == 1
            and geom.n > 0)


@functools.lru_cache(maxsize=256)
def stacked(geom: Geometry) -> Geometry:
    """The undilated geometry a dilated layer is computed as: its ``Π δ_i`` polyphase grids stacked as samples.

    With dilation ``δ``, output ``q`` reads the padded input at ``q + k·δ``, so
    the outputs ``q ≡ r (mod δ)`` are an undilated 3×3 correlation of the
    input positions ``≡ r (mod δ)``. The padded input (size ``P``, extended
    with zeros to ``L·δ``, ``L = ⌈P/δ⌉``) splits into ``δ1·δ2`` grids of
    ``L1 × L2``, each with ``L − 2`` outputs (those beyond ``Q`` are dropped),
    and every grid uses the same weights: one undilated convolution of
    ``δ1·δ2·N`` samples, no padding. Undilated geometries are returned as
    they are.

    Examples
    --------
    >>> from convgrad._geometry import conv_geometry
    >>> stacked(conv_geometry((4, 8, 64, 64), (8, 8, 3, 3), padding=2, dilation=2)).input_shape
    (16, 8, 34, 34)
    """
    if _undilated(geom):
        return geom
    from .._geometry import conv_geometry

    lengths = tuple(-(-p // dl) for p, dl in zip(geom.padded_size, geom.dilation))
    return conv_geometry((geom.n * prod(geom.dilation), geom.c_in) + lengths, geom.weight_shape)


def _undilated(geom: Geometry) -> bool:
    return all(dl == 1 for dl in geom.dilation)


def compiled_available(d: int = 2) -> bool:
    """Whether the compiled transforms can be used for ``d`` spatial dimensions (2-d only; Numba can be imported,
    it is not imported here)."""
    return d == 2 and winograd_jit.available()


def use_compiled(d: int = 2) -> bool:
    """Whether ``method="auto"``/``"winograd"`` take the compiled transforms: where they can be used (2-d, Numba
    installed), on one thread, and on several where threadpoolctl is installed, so that whole chunks can run one
    per thread with the BLAS limited to one thread (:func:`_blas_scope`; a call with one chunk, such as one
    sample, splits each stage over the threads instead, and ``"auto"`` leaves its forward pass and input gradient
    to the direct routes, :func:`choose`). With the weight transform on the
    multi-threaded BLAS they had measured slower than the NumPy transforms at two threads — the BLAS's spinning
    threads shared the cores with the chunk threads —; without that, 64→64 56², N=8, 2 threads, forward: 6.7 ms
    compiled F(4×4) against 14.4 with the NumPy transforms."""
    return compiled_available(d) and (copy_threads() == 1 or blas_controller() is not None)


def _op_size(geom: Geometry, op: str) -> tuple[int, ...]:
    """Outputs of the correlation contraction ``op`` computes: the input's size for the input gradient."""
    size = geom.out_size if op != "input" else (geom.in_size if _direct_padding(geom) else geom.padded_size)
    return tuple(size)


def variant_cost(geom: Geometry, m: int, op: str, compiled: bool) -> float:
    """Estimated cost of contraction ``op`` by F(m×m, 3×3), in GEMM flops (see :mod:`convgrad.engine.cost`).

    ``α²`` GEMMs of ``O × C × N·T`` over ``T`` tiles, plus the transforms: ``α²`` elements per tile and channel of
    ``V`` and ``M``, and the ``α²·O·C`` of the transformed weight (its
    gradient), at :data:`WEIGHT_FLOPS_PER_ELEMENT`.
    """
    t = prod(_tiles(_op_size(geom, op), m))
    alpha2 = prod((m + 2,) * geom.d)
    elements = alpha2 * geom.n * t * (geom.c_in + geom.c_out)
    per = COMPILED_TRANSFORM_FLOPS_PER_ELEMENT if compiled else NUMPY_TRANSFORM_FLOPS_PER_ELEMENT_BY_DIM[geom.d]
    efficiency = GEMM_EFFICIENCY[m] if geom.d == 2 else GEMM_EFFICIENCY_3D
    return (efficiency * 2.0 * alpha2 * geom.n * t * geom.c_in * geom.c_out + per * elements
            + WEIGHT_FLOPS_PER_ELEMENT * alpha2 * geom.c_in * geom.c_out)


def variant(geom: Geometry, dtype: np.dtype[Any], op: str, compiled: bool | None = None) -> int:
    """The tile size for contraction ``op``: the cheapest variant whose error factor is within
    :data:`MAX_ERROR_FACTOR` (F(2×2, 3×3) if none is).

    Examples
    --------
    >>> from convgrad._geometry import conv_geometry
    >>> geom = conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    >>> variant(geom, np.dtype("float32"), "input", compiled=True)   # F(4×4)'s error there is 13× the direct's
    2
    """
    del dtype
    compiled = use_compiled(geom.d) if compiled is None else compiled and geom.d == 2
    factors = ERROR_FACTOR_BY_DIM[geom.d]
    ok = [m for m in TILES_BY_DIM[geom.d] if factors[m][op] <= MAX_ERROR_FACTOR] or [2]
    return min(ok, key=lambda m: variant_cost(geom, m, op, compiled))


def choose(geom: Geometry, dtype: np.dtype[Any], method: str, op: str, *, exact: bool, finite: bool) -> str | None:
    """``"winograd"`` where it applies to floating, finite data and is asked for (or cheaper, for ``"auto"``).

    ``method="winograd"`` forces it wherever it applies; ``"auto"`` takes it
    where the cost of the variant :func:`variant` picks is below the direct
    routes' cost (:func:`convgrad.engine.cost.gemm_cost`, ``grid_cost``) and
    its measured error factor is within :data:`MAX_ERROR_FACTOR`, undilated
    layers only (a dilated layer takes it when forced, on its polyphase grids, :func:`stacked`);
    ``"direct"`` and ``"fft"`` never.

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
    if method == "auto" and not _undilated(geom):  # with the polyphase copies, slower than the direct routes in
        return None  # every measurement (forward pass of 3×3 d2 64→64 at 64², float32, 2 threads: 11.7 ms against 10.7)
    if method == "auto" and op != "weight" and geom.d == 2 and geom.n < 2 and copy_threads() > 1:
        # one sample: no chunks to run one per thread, so each stage is split over the threads next to the
        # multi-threaded BLAS; measured slower than the direct routes there (2 threads, N=1, 64→64 at 224²:
        # forward 23.7 against 21.3 ms, input gradient 33.7 against 21.1; 128→128 at 28²: 1.75 against 1.49,
        # 2.06 against 1.65; the weight gradient 28.5 against 34.7 and 1.89 against 1.72). (3-d layers keep
        # the cost model's choice: the U-Net stage's one-sample forward pass measured faster on Winograd.)
        return None
    original, geom = geom, stacked(geom)
    compiled = use_compiled(geom.d)
    m = variant(geom, dtype, op, compiled)
    size = _op_size(geom, op)
    itemsize = np.dtype(dtype).itemsize
    if _sample_bytes(op, geom.c_in, geom.c_out, size, m, itemsize, compiled) + _whole_copies(original, itemsize) > \
            get_workspace_budget():
        return None
    if method == "winograd":
        return "winograd"
    if ERROR_FACTOR_BY_DIM[geom.d][m][op] > MAX_ERROR_FACTOR or cost.gemm_cost(original) < cost.MIN_DIRECT_COST:
        return None
    direct = min(cost.gemm_cost(original), cost.grid_cost(original))
    if op != "weight" and implicit.choose(original, dtype, method, op, exact=exact, finite=finite) is not None:
        direct = min(direct, implicit.op_cost(original, op))
    return "winograd" if variant_cost(geom, m, op, compiled) < direct else None


def _whole_copies(geom: Geometry, itemsize: int) -> int:
    """Bytes of the whole-array copies made before the chunks: the padded input for padding modes other than
    zeros, and for a dilated layer its polyphase grids of the padded input and of the output as well."""
    if _direct_padding(geom) and _undilated(geom):
        return 0
    padded = geom.n * geom.c_in * prod(geom.padded_size)
    if _undilated(geom):
        return itemsize * padded
    return itemsize * 2 * (padded + geom.n * geom.c_out * prod(geom.out_size))


# ----------------------------------------------------------------------------- the transforms


def _tiles(size: tuple[int, ...], m: int) -> tuple[int, ...]:
    """Tiles per dimension for ``size`` outputs (``m`` per tile)."""
    return tuple(-(-s // m) for s in size)


def _sample_bytes(op: str, c: int, o: int, size: tuple[int, ...], m: int, itemsize: int, compiled: bool) -> int:
    """Workspace of one sample for contraction ``op``: ``V`` and ``M`` (or the gradient's transform), and without
    the compiled kernels the tile grid, the tile matrix and the output transform's result."""
    if op == "input":
        c, o = o, c
    tiles = _tiles(size, m)
    t, alpha2 = prod(tiles), prod((m + 2,) * len(size))
    elements = alpha2 * t * (c + o)
    if not compiled:
        grid = c * prod(tuple(m * ti + 2 for ti in tiles))
        elements += grid + alpha2 * t * c + prod((m,) * len(size)) * t * o
    return elements * itemsize


def _split_tiles(nb: int, ch: int, tiles: tuple[int, ...], m: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The shape ``(nb, ch, T1, m, T2, m, …)`` of a disjoint tile grid, and the axes that take it to
    ``(m, …, m, ch, nb, T1, T2, …)`` (the within-tile axes first)."""
    d = len(tiles)
    shape = (nb, ch) + tuple(x for ti in tiles for x in (ti, m))
    return shape, tuple(3 + 2 * i for i in range(d)) + (1, 0) + tuple(2 + 2 * i for i in range(d))


def _np_input_transform(d: Array, kron_bt: Array, m: int, tiles: tuple[int, ...], tmat: Array, v: Array) -> None:
    """``v (α^d, C, nb·T) = (Bᵀ ⊗ … ⊗ Bᵀ) @ tiles`` for the zero tile grid ``d (nb, C, m·T1 + 2, …)``: the
    overlapping tiles copied into ``tmat (α^d, C, nb, T1, …)`` from a strided view, then one GEMM."""
    nb, c = d.shape[:2]
    alpha, dims = m + 2, len(tiles)
    s = d.strides
    view = np.lib.stride_tricks.as_strided(d, (alpha,) * dims + (c, nb) + tiles,
                                           s[2:] + (s[1], s[0]) + tuple(m * x for x in s[2:]), writeable=False)
    tmat.reshape((alpha,) * dims + (c, nb) + tiles)[...] = view
    np.matmul(kron_bt, tmat.reshape(alpha**dims, -1), out=v.reshape(alpha**dims, -1))


def _np_output_transform(mm: Array, kron_at: Array, m: int, tiles: tuple[int, ...], r: Array, y: Array) -> None:
    """``y[n, o, m·t + a] = (Aᵀ M_t A)[a]`` (``d``-fold): one GEMM ``(Aᵀ ⊗ … ⊗ Aᵀ) @ M`` into
    ``r (m^d, O, nb, T1, …)``, then one copy into ``y (nb, O, m·T1, …)``."""
    nb, o = y.shape[:2]
    shape, axes = _split_tiles(nb, o, tiles, m)
    np.matmul(kron_at, mm.reshape(mm.shape[0], -1), out=r.reshape(kron_at.shape[0], -1))
    y.reshape(shape)[...] = r.reshape((m,) * len(tiles) + (o, nb) + tiles).transpose(np.argsort(axes))


def _np_grad_transform(g: Array, kron_a: Array, m: int, tiles: tuple[int, ...], tmat: Array, gt: Array) -> None:
    """``gt (α^d, O, nb·T) = (A ⊗ … ⊗ A) @ tiles`` for ``g (nb, O, m·T1, …)``: the disjoint tiles copied into
    ``tmat (m^d, O, nb, T1, …)``, then one GEMM."""
    nb, o = g.shape[:2]
    shape, axes = _split_tiles(nb, o, tiles, m)
    tmat.reshape((m,) * len(tiles) + (o, nb) + tiles)[...] = g.reshape(shape).transpose(axes)
    np.matmul(kron_a, tmat.reshape(kron_a.shape[1], -1), out=gt.reshape(gt.shape[0], -1))


def weight_transform(w: Array, dtype: np.dtype[Any], m: int = 2, *, flip: bool = False,
                     split: bool = False) -> Array:
    """``U[α, o, c] = (G w[o, c] Gᵀ)[α]``: ``(α², O, C)`` from ``w (O, C, 3, 3)`` (3-d: ``(α³, O, C)`` from
    ``(O, C, 3, 3, 3)``); ``flip``: of the kernel reversed in every dimension (the input gradient's, whose
    channels are swapped by using ``U[α]ᵀ``), without copying the reversed kernel.

    One GEMM by ``G ⊗ G`` (a thin one: 9 columns in), or with ``split`` one per range of output channels on the
    engine's threads (for a caller that holds the one-thread BLAS, :func:`_blas_scope`: one call alone would
    leave the other cores idle — 256→256, F(2×2): 0.75 ms on one thread).

    Examples
    --------
    >>> weight_transform(np.ones((1, 1, 3, 3)), np.dtype("float64"))[:, 0, 0].reshape(4, 4)[0]
    array([1., 3., 1., 1.])
    """
    o, c = w.shape[:2]
    d = w.ndim - 2
    flat = np.ascontiguousarray(w, dtype=dtype).reshape(o * c, 3**d)
    kron = _kron_g(m, d, flip).astype(dtype)
    u: Array = np.empty((kron.shape[0], o, c), dtype=dtype)
    rows = u.reshape(kron.shape[0], o * c)

    def work(o0: int, o1: int) -> None:
        np.matmul(kron, flat[o0 * c : o1 * c].T, out=rows[:, o0 * c : o1 * c])

    _by_output_channel(o, u.size, split, work)
    return u


def _by_output_channel(o: int, elements: int, split: bool, work: Callable[[int, int], None]) -> None:
    """``work(o0, o1)`` over the output channels ``[0, o)``: with ``split`` one range per thread of the engine's
    pool (:func:`convgrad.engine.state.split_run`), else all of them on the calling thread."""
    if split:
        split_run(o, elements, work)
    else:
        work(0, o)


def inverse_weight_transform(parts: list[Array], m: int, d: int, *, split: bool = False) -> Array:
    """``gw[o, c] = Σ_p Gᵀ P_p[:, o, c] G`` (``(O, C, 3, 3)``; 3-d ``(O, C, 3, 3, 3)``) for the transformed
    weight-gradient sums ``parts`` ``(α^d, O, C)``, added in their order after the transform (the transformed sums
    are 9/16 (27/64) the size): the adjoint of :func:`weight_transform`. One GEMM per part by ``G ⊗ G``, or with
    ``split`` per range of output channels on the engine's threads (see :func:`weight_transform`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> w, p = rng.standard_normal((2, 3, 3, 3)), rng.standard_normal((16, 2, 3))
    >>> u = weight_transform(w, np.dtype("float64"))   # ⟨U(w), P⟩ = ⟨w, Uᵀ(P)⟩
    >>> bool(np.isclose(np.vdot(u, p), np.vdot(w, inverse_weight_transform([p], 2, 2))))
    True
    """
    alpha_d, o, c = parts[0].shape
    kron = _kron_g(m, d).astype(parts[0].dtype)
    gw: Array = np.empty((o * c, kron.shape[1]), dtype=parts[0].dtype)
    flats = [p.reshape(alpha_d, o * c) for p in parts]

    def work(o0: int, o1: int) -> None:
        rows = slice(o0 * c, o1 * c)
        np.matmul(flats[0][:, rows].T, kron, out=gw[rows])
        for f in flats[1:]:
            gw[rows] += f[:, rows].T @ kron

    _by_output_channel(o, parts[0].size, split, work)
    return gw.reshape((o, c) + (3,) * d)


def _place(src: Array, offset: tuple[int, ...], d: Array) -> None:
    """``d`` = zeros with ``src`` at ``offset`` (rows that fall outside ``d`` are left out: they meet junk only)."""
    src_sl, dst_sl = [], []
    for i in range(len(offset)):
        first, last = max(0, -offset[i]), min(src.shape[2 + i], d.shape[2 + i] - offset[i])
        last = max(first, last)
        src_sl.append(slice(first, last))
        dst_sl.append(slice(first + offset[i], last + offset[i]))
    d[...] = 0
    d[(slice(None), slice(None)) + tuple(dst_sl)] = src[(slice(None), slice(None)) + tuple(src_sl)]


def _carve(shapes: list[tuple[int, ...]], dtype: np.dtype[Any], reuse: bool = True) -> list[Array]:
    """Arrays of ``shapes`` carved from this thread's scratch buffer (no fresh pages per call), or with
    ``reuse=False`` from a fresh buffer (on the pool's threads, which must not keep a scratch buffer)."""
    sizes = [prod(s) for s in shapes]
    buf = scratch((sum(sizes),), dtype) if reuse else np.empty(sum(sizes), dtype=dtype)
    out, start = [], 0
    for shape, size in zip(shapes, sizes):
        out.append(buf[start : start + size].reshape(shape))
        start += size
    return out


def _plan(n: int, per_sample: int, compiled: bool, weights: int = 0,
          accumulate: bool = False) -> tuple[list[tuple[int, int]], bool]:
    """The chunks of samples, and whether to run whole chunks in parallel, one thread each.

    Compiled, with several threads and threadpoolctl installed, each thread
    takes whole chunks (transforms on its own core, the GEMMs in a
    single-threaded BLAS) — the stages of a chunk then share that core's cache
    and never wait for one another; with ``accumulate`` (the weight gradient)
    each thread keeps an accumulator of ``weights`` bytes, which counts against
    the budget too. Otherwise the chunks run one after another, each stage
    split over the threads.

    A chunk's GEMMs read all of the transformed weight (``weights`` bytes), so
    a parallel chunk holds at least twice that in tiles, up to the budget:
    256→256 at 14², F(2×2), whose 4 MiB of ``U`` had been read for every two
    samples, measured 8.30 → 7.36 ms forward, 9.10 → 8.02 weight gradient with
    chunks of four samples, while the 64→64 layers, whose ``U`` is small, lose
    with chunks above :data:`CHUNK_BYTES` (7.6 → 8.7 ms at 8 MiB).
    """
    budget, threads = get_workspace_budget(), copy_threads()
    shared = weights if accumulate else 0
    parallel = (compiled and threads > 1 and n > 1 and blas_controller() is not None
                and threads * (per_sample + shared) <= budget and shared <= CHUNK_BYTES[compiled])
    if parallel:
        target = min(max(CHUNK_BYTES[compiled], 2 * weights), budget // threads - shared)
        step = max(1, min(target // max(1, per_sample), -(-n // threads)))
    else:
        step = max(1, min(budget, max(CHUNK_BYTES[compiled], 2 * shared)) // max(1, per_sample))
    chunks = [(n0, min(n, n0 + step)) for n0 in range(0, n, step)]
    return chunks, parallel and len(chunks) > 1


def _blas_scope(parallel: bool) -> contextlib.AbstractContextManager[None]:
    """The BLAS on one thread for the whole call where its chunks run in parallel, one per thread.

    Every BLAS call of such a call — the weight transform before the chunks,
    the weight gradient's inverse transform after them, not only the chunks'
    GEMMs — must stay on the calling thread: a multi-threaded GEMM wakes the
    BLAS's worker threads, which then spin for about 0.1 s and share the cores
    with the chunk threads (64→64 at 56², forward, 2 threads: 10–22 ms with the
    weight transform on the multi-threaded BLAS, 6.8–7.5 ms without).
    """
    return single_threaded_blas(blas_controller()) if parallel else contextlib.nullcontext()


def _run_chunks(chunks: list[tuple[int, int]], parallel: bool, run: Callable[[int, int, bool, int], None]) -> None:
    """``run(n0, n1, split, part)`` for every chunk: in parallel (whole chunks per thread, ``split=False``; the
    caller holds :func:`_blas_scope`), or one after another (``split=True``: each stage uses every thread).

    ``part`` numbers the range of chunks the call belongs to (its first chunk; 0 when they run one after
    another): the ranges depend only on the number of chunks and of threads, not on which thread finishes first,
    so sums kept per part and added in its order give the same bits on every call."""
    if not parallel:
        for n0, n1 in chunks:
            run(n0, n1, True, 0)
        return

    def work(i0: int, i1: int) -> None:
        for n0, n1 in chunks[i0:i1]:
            run(n0, n1, False, i0)

    split_run(len(chunks), PARALLEL_MIN_ELEMENTS, work)


def _input_v(src: Array, offset: tuple[int, ...], m: int, tiles: tuple[int, ...], v: Array, compiled: bool,
             extra: list[Array], split: bool = True) -> None:
    """``V`` of ``src`` placed at ``offset``: compiled (2-d), or through the NumPy grid (``extra``: grid, tile
    matrix)."""
    _, bt, kron_bt, _, _ = _cast(m, v.dtype, len(tiles))
    if compiled:
        winograd_jit.input_transform(src, bt, v, (offset[0], offset[1]), (tiles[0], tiles[1]), m, split)
        return
    d, tmat = extra
    _place(src, offset, d)
    _np_input_transform(d, kron_bt, m, tiles, tmat, v)


def _correlate(src: Array, w: Array, offset: tuple[int, ...], size: tuple[int, ...], dtype: np.dtype[Any], m: int,
               compiled: bool, bias: Array | None = None, flip: bool = False) -> Array:
    """``out[n, o, p] = Σ_{c,k} w[o, c, k]·src[n, c, p + k − offset] (+ bias[o])``: the valid 3×3 (3×3×3)
    correlation of ``src`` placed at ``offset`` in a zero grid, ``size`` outputs; ``w`` ``(O, C, 3, …)``
    (transformed here), or with ``flip`` the kernel ``w[c, o, 2 − k]`` of ``w`` ``(C, O, 3, …)`` (the input
    gradient's, reversed and its channels swapped). ``bias`` (compiled transforms only) is added as the output
    transform writes each plane."""
    n, c = src.shape[:2]
    o = w.shape[1] if flip else w.shape[0]
    dims = len(size)
    alpha2 = (m + 2) ** dims
    tiles = _tiles(size, m)
    t = prod(tiles)
    at, _, _, kron_at, _ = _cast(m, dtype, dims)
    out = np.empty((n, o) + size, dtype=dtype)
    whole = all(s % m == 0 for s in size)
    per_sample = _sample_bytes("forward", c, o, size, m, np.dtype(dtype).itemsize, compiled)

    def run(n0: int, n1: int, split: bool, part: int) -> None:
        del part
        nb = n1 - n0
        shapes: list[tuple[int, ...]] = [(alpha2, c, nb * t), (alpha2, o, nb * t)]
        if not compiled:
            shapes += [(nb, c) + tuple(m * ti + 2 for ti in tiles), (alpha2, c, nb * t), (m**dims, o, nb * t)]
        bufs = _carve(shapes, dtype, split)  # split: on the calling thread, which keeps a scratch buffer
        v, mm = bufs[0], bufs[1]
        _input_v(src[n0:n1], offset, m, tiles, v, compiled, bufs[2:4], split)
        np.matmul(u.swapaxes(1, 2) if flip else u, v, out=mm)  # (a transposed operand costs nothing more)
        if compiled:
            winograd_jit.output_transform(mm, at, out[n0:n1], (tiles[0], tiles[1]), split, bias)
        elif whole:
            _np_output_transform(mm, kron_at, m, tiles, bufs[4], out[n0:n1])
        else:
            y = np.empty((nb, o) + tuple(m * ti for ti in tiles), dtype=dtype)
            _np_output_transform(mm, kron_at, m, tiles, bufs[4], y)
            out[n0:n1] = y[(slice(None), slice(None)) + tuple(slice(0, s) for s in size)]

    chunks, parallel = _plan(n, per_sample, compiled, alpha2 * o * c * np.dtype(dtype).itemsize)
    with _blas_scope(parallel):
        u = weight_transform(w, dtype, m, flip=flip, split=parallel)
        _run_chunks(chunks, parallel, run)
    return out


# ----------------------------------------------------------------------------- the routes


def _direct_padding(geom: Geometry) -> bool:
    """Zero padding (or cropping), no input dilation: the input goes into the tile grid as it is."""
    return geom.padding_mode == "zeros" and all(a == 1 for a in geom.input_dilation)


def _setup(geom: Geometry, dtype: np.dtype[Any], op: str, tile: int | None, compiled: bool | None) -> tuple[int, bool]:
    """The tile size and whether to use the compiled transforms (2-d only: a 3-d layer takes the NumPy ones)."""
    compiled = use_compiled(geom.d) if compiled is None else compiled and geom.d == 2
    if tile is not None and tile not in TILES_BY_DIM[geom.d]:
        raise ValueError(f"tile must be one of {TILES_BY_DIM[geom.d]} for {geom.d}-d layers, got {tile}")
    return (variant(geom, dtype, op, compiled) if tile is None else tile), compiled


def _phase_slices(geom: Geometry) -> list[tuple[tuple[int, ...], tuple[slice, ...]]]:
    """Each residue ``r`` of the dilation and the slices ``[..., r1::δ1, r2::δ2, …]`` of its grid."""
    dil = geom.dilation
    return [(r, (slice(None), slice(None)) + tuple(slice(ri, None, di) for ri, di in zip(r, dil)))
            for r in itertools.product(*(range(di) for di in dil))]


def _to_phases(a: Array, geom: Geometry, size: tuple[int, ...]) -> Array:
    """``(N, ch, S1, S2, …)`` → ``(Π δ_i · N, ch, L1, L2, …)``: the grids ``a[..., r1::δ1, r2::δ2, …]``,
    zero-extended to ``size`` (positions beyond ``S`` are zeros)."""
    n, ch = a.shape[:2]
    out = np.zeros(geom.dilation + (n, ch) + size, dtype=a.dtype)
    for r, sl in _phase_slices(geom):
        part = a[sl]
        out[r + (slice(None), slice(None)) + tuple(slice(0, s) for s in part.shape[2:])] = part
    return out.reshape((prod(geom.dilation) * n, ch) + size)


def _from_phases(a: Array, geom: Geometry, size: tuple[int, ...]) -> Array:
    """The adjoint of :func:`_to_phases` for disjoint grids: ``(Π δ_i · N, ch, L1, …)`` → ``(N, ch, S1, …)``,
    each grid put back at ``[..., r1::δ1, r2::δ2, …]`` (what lies beyond ``S`` dropped)."""
    ch = a.shape[1]
    n = a.shape[0] // prod(geom.dilation)
    phases = a.reshape(geom.dilation + (n, ch) + a.shape[2:])
    out = np.empty((n, ch) + size, dtype=a.dtype)
    for r, sl in _phase_slices(geom):
        dest = out[sl]
        dest[...] = phases[r + (slice(None), slice(None)) + tuple(slice(0, s) for s in dest.shape[2:])]
    return out


def _dilated(op: str, a: Array, b: Array, geom: Geometry, tile: int | None, compiled: bool | None) -> Array:
    """Contraction ``op`` of a dilated layer as the undilated convolution of its stacked grids (:func:`stacked`)."""
    inner = stacked(geom)
    lengths = inner.in_size
    out_lengths = inner.out_size
    if op == "forward":  # a = x, b = w
        y = winograd_forward(_to_phases(pad(a, geom), geom, lengths), b, inner, tile, compiled)
        return _from_phases(y, geom, geom.out_size)
    g = _to_phases(a, geom, out_lengths)
    if op == "input":  # a = g, b = w
        gxp = _from_phases(winograd_input_grad(g, b, inner, tile, compiled), geom, geom.padded_size)
        return np.ascontiguousarray(pad_adjoint(gxp, geom))
    return winograd_weight_grad(g, _to_phases(pad(b, geom), geom, lengths), inner, tile, compiled)


def winograd_forward(x: Array, w: Array, geom: Geometry, tile: int | None = None,
                     compiled: bool | None = None, bias: Array | None = None) -> Array:
    """``y = conv(x, w) (+ bias)`` by F(m×m, 3×3): input transform, ``α²`` GEMMs, output transform, per chunk of
    samples.

    ``tile`` (``m``: 2 or 4) defaults to :func:`variant`'s choice, ``compiled``
    to whether Numba is installed. Dilated layers are computed on their
    polyphase grids (:func:`stacked`). ``bias`` ``(O,)``: added to ``y`` — by
    the compiled output transform as it writes each plane (no second pass over
    ``y``), else in place afterwards; ``y + b`` either way, the same bits.
    """
    if not _undilated(geom):
        return _add_bias(_dilated("forward", x, w, geom, tile, compiled), bias, geom)
    dtype = np.result_type(x, w)
    m, compiled = _setup(geom, dtype, "forward", tile, compiled)
    size = tuple(geom.out_size)
    fused = bias if compiled and bias is not None and bias.dtype == dtype else None
    if _direct_padding(geom):
        y = _correlate(x, w, tuple(geom.pad_lo), size, dtype, m, compiled, fused)
    else:
        y = _correlate(pad(x, geom), w, (0,) * geom.d, size, dtype, m, compiled, fused)
    return y if fused is not None else _add_bias(y, bias, geom)


def _add_bias(y: Array, bias: Array | None, geom: Geometry) -> Array:
    """``y`` with ``bias`` added afterwards (:func:`convgrad.engine.add_bias`), or as it is without one."""
    if bias is None:
        return y
    from . import add_bias  # the engine package imports this module: the helper is looked up at call time

    return add_bias(y, bias, geom)


def winograd_input_grad(g: Array, w: Array, geom: Geometry, tile: int | None = None,
                        compiled: bool | None = None) -> Array:
    """``gx = pad_adjoint(full correlation of g with w flipped, channels swapped)`` by F(m×m, 3×3)."""
    if not _undilated(geom):
        return _dilated("input", g, w, geom, tile, compiled)
    dtype = np.result_type(g, w)
    m, compiled = _setup(geom, dtype, "input", tile, compiled)
    if _direct_padding(geom):  # (the reversed, channel-swapped kernel is never copied: weight_transform's flip)
        return _correlate(g, w, tuple(2 - p for p in geom.pad_lo), tuple(geom.in_size), dtype, m, compiled,
                          flip=True)
    gxp = _correlate(g, w, (2,) * geom.d, tuple(geom.padded_size), dtype, m, compiled, flip=True)
    return np.ascontiguousarray(pad_adjoint(gxp, geom))


def winograd_weight_grad(g: Array, x: Array, geom: Geometry, tile: int | None = None,
                         compiled: bool | None = None) -> Array:
    """``gw = Gᵀ [Σ_{n,t} (A g Aᵀ) ⊙ (Bᵀ d B)] G``: both transforms, ``α²`` GEMMs summed over chunks."""
    if not _undilated(geom):
        return _dilated("weight", g, x, geom, tile, compiled)
    dtype = np.result_type(g, x)
    m, compiled = _setup(geom, dtype, "weight", tile, compiled)
    c, o, dims = geom.c_in, geom.c_out, geom.d
    alpha2 = (m + 2) ** dims
    size = tuple(geom.out_size)
    tiles = _tiles(size, m)
    t = prod(tiles)
    direct = _direct_padding(geom)
    src = x if direct else pad(x, geom)
    offset = tuple(geom.pad_lo) if direct else (0,) * dims
    at, _, _, _, kron_a = _cast(m, dtype, dims)
    padded_tiles = tuple(m * ti for ti in tiles)
    per_sample = _sample_bytes("weight", c, o, size, m, np.dtype(dtype).itemsize, compiled)
    chunks, parallel = _plan(x.shape[0], per_sample, compiled, alpha2 * o * c * np.dtype(dtype).itemsize, True)
    partial: dict[int, Array] = {}  # one accumulator per range of chunks (each range runs on one thread)

    def run(n0: int, n1: int, split: bool, part: int) -> None:
        nb = n1 - n0
        shapes: list[tuple[int, ...]] = [(alpha2, c, nb * t), (alpha2, o, nb * t)]
        if not compiled:
            shapes += [(nb, c) + tuple(m * ti + 2 for ti in tiles), (alpha2, c, nb * t), (m**dims, o, nb * t)]
        bufs = _carve(shapes, dtype, split)
        v, gt = bufs[0], bufs[1]
        _input_v(src[n0:n1], offset, m, tiles, v, compiled, bufs[2:4], split)
        if compiled:
            winograd_jit.grad_transform(g[n0:n1], at, gt, (tiles[0], tiles[1]), split)
        else:
            gg = g[n0:n1]
            if size != padded_tiles:
                gg = np.zeros((nb, o) + padded_tiles, dtype=dtype)
                gg[(slice(None), slice(None)) + tuple(slice(0, s) for s in size)] = g[n0:n1]
            _np_grad_transform(gg, kron_a, m, tiles, bufs[4], gt)
        if part in partial:
            partial[part] += np.matmul(gt, v.swapaxes(1, 2))
        else:
            partial[part] = np.matmul(gt, v.swapaxes(1, 2))

    with _blas_scope(parallel):
        _run_chunks(chunks, parallel, run)
        # Gᵀ P G per range of chunks, added in the ranges' order
        return inverse_weight_transform([partial[part] for part in sorted(partial)], m, dims, split=parallel)


def _forward_route(x: Array, w: Array, geom: Geometry) -> Array:
    return winograd_forward(x, w, geom)


def _input_route(g: Array, w: Array, geom: Geometry) -> Array:
    return winograd_input_grad(g, w, geom)


def _weight_route(g: Array, x: Array, geom: Geometry) -> Array:
    return winograd_weight_grad(g, x, geom)


ROUTES: dict[str, dict[str, Any]] = {
    "forward": {"winograd": _forward_route},
    "input": {"winograd": _input_route},
    "weight": {"winograd": _weight_route},
}
"""This module's routes, per contraction, with the signature of :data:`convgrad.engine.dispatch.ROUTES`' entries."""

__all__ = [
    "ERROR_FACTOR",
    "ERROR_FACTOR_BY_DIM",
    "MAX_ERROR_FACTOR",
    "POINTS",
    "ROUTES",
    "TILES",
    "TILES_BY_DIM",
    "Matrices",
    "applies",
    "choose",
    "compiled_available",
    "inverse_weight_transform",
    "matrices",
    "stacked",
    "use_compiled",
    "variant",
    "variant_cost",
    "weight_transform",
    "winograd_forward",
    "winograd_input_grad",
    "winograd_weight_grad",
]
