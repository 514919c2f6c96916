"""Convolutions and their gradients on Dask arrays larger than memory, block by block and lazily.

``convgrad.dask.conv`` and the other functions here take Dask arrays chunked
over the batch and spatial dimensions and return Dask arrays: nothing is
computed until the result is asked for (``.compute()``, ``.persist()``,
``da.store``), and then every block is one ordinary convgrad call on a NumPy
(or CuPy) block, on whatever scheduler is in force: the threaded one by
default, or a ``distributed`` cluster::

    from dask.distributed import Client
    client = Client("tcp://scheduler-address:8786")   # or LocalCluster()
    y = convgrad.dask.conv(x, w, padding=1).compute()

The core functions (:func:`convgrad.conv` and the rest) accept Dask arrays
too and compute them the same way; the functions here check that they were
given a Dask array and take ``split_every`` for the tree sums.

How each contraction is cut into blocks, per spatial dimension (kernel span
``κ = δ(K − 1) + 1``, stride ``s``, padding ``(l, h)``, padded size ``P``):

* the input is padded once, globally, with ``da.pad`` in PyTorch's semantics
  (zeros: constant; reflect: reflect; replicate: edge; circular: wrap), and
  rechunked so that every inner chunk boundary is a multiple of ``s`` and
  every chunk is at least ``κ + s·⌊(κ − 1)/s⌋`` wide (neighbouring chunks
  are merged, not split); ``map_overlap`` is called with
  ``allow_rechunk=False``, so the blocks stay aligned;
* forward: ``map_overlap`` with depth ``(0, κ − 1)`` (a right halo),
  ``boundary="none"``, ``trim=False``; each block is a valid convolution whose
  outputs are exactly the outputs whose windows start in the block;
* input gradient: a gather, not an overlap-add: the upstream gradient gets a
  left halo of ``⌊(κ − 1)/s⌋`` output positions, each block computes the input
  gradient of its extended block and keeps its own positions, and the
  padding's adjoint is applied globally (a crop; reflect, replicate and
  circular add the border strips back onto their sources);
* weight gradient: one weight gradient per pair of an upstream-gradient block
  and its input block (with the forward halo), then a tree sum
  (``split_every``); bias gradient: a sum.

The channels (``C`` of the input, ``O`` of the upstream gradient) must be in
one chunk; the error says how to rechunk. Groups, dilation, every padding
form and mode work. The blocks' type is kept (``meta=`` is passed on), so a
Dask array of CuPy blocks is computed on the GPU by the generic route. The
workspace budget in force when the graph is built (:func:`convgrad.workspace_budget`)
is the budget of every block.

This module needs Dask (``pip install 'convgrad[dask]'``); ``import
convgrad`` never imports it.

Examples
--------
>>> import numpy as np
>>> import dask.array as da                                    # doctest: +SKIP
>>> import convgrad as cg, convgrad.dask as cgd                # doctest: +SKIP
>>> x = np.random.default_rng(0).standard_normal((2, 3, 64, 64))
>>> w = np.random.default_rng(1).standard_normal((4, 3, 3, 3))
>>> xd = da.from_array(x, chunks=(1, 3, 20, 32))               # doctest: +SKIP
>>> y = cgd.conv(xd, w, padding=1, stride=2)                   # doctest: +SKIP
>>> y.chunks                                                   # doctest: +SKIP
((1, 1), (4,), (10, 10, 10, 2), (16, 16))
>>> bool(np.allclose(y.compute(), cg.conv(x, w, padding=1, stride=2)))   # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
from collections.abc import Iterator, Mapping
from typing import Any, Optional

import numpy as np

from ._geometry import Geometry
from ._namespace import a_type, array_api_compat, is_foreign, type_name
from .engine.padding import placement, source_index
from .engine.state import get_workspace_budget, workspace_budget

DASK_MISSING = "convgrad.dask needs Dask: pip install 'convgrad[dask]'"

__all__ = [
    "check_chunks",
    "conv",
    "conv_backward",
    "conv_bias_grad",
    "conv_input_grad",
    "conv_transpose",
    "conv_transpose_backward",
    "conv_weight_grad",
    "run",
]

_split_every: contextvars.ContextVar[Optional[int]] = contextvars.ContextVar("convgrad_split_every", default=None)

_DASK_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}
"""``da.pad`` modes with PyTorch's semantics (``map_overlap``'s ``boundary="reflect"`` would be NumPy's symmetric)."""


def _da() -> Any:
    try:
        import dask.array as da
    except ModuleNotFoundError as err:
        if err.name is not None and err.name.partition(".")[0] != "dask":
            raise
        raise ImportError(DASK_MISSING) from None
    return da


# ----------------------------------------------------------------------------- chunk layout


def min_chunk(span: int, stride: int) -> int:
    """``κ + s·⌊(κ − 1)/s⌋``: the narrowest chunk (padded positions) a block may have along one dimension.

    Examples
    --------
    >>> min_chunk(3, 1), min_chunk(7, 2), min_chunk(1, 3)
    (5, 13, 1)
    """
    return span + stride * ((span - 1) // stride)


def aligned_chunks(chunks: tuple[int, ...], length: int, stride: int, minimum: int) -> tuple[int, ...]:
    """Chunks of ``length`` positions near ``chunks``: inner boundaries multiples of ``stride``, each ``≥ minimum``.

    Every boundary of ``chunks`` is moved down to a multiple of the stride and
    dropped when it would leave a chunk narrower than ``minimum`` (its
    neighbours merge); an axis shorter than two minimum chunks is one chunk.

    Examples
    --------
    >>> aligned_chunks((10, 10, 10, 3), 33, 2, 5)
    (10, 10, 13)
    >>> aligned_chunks((7, 7, 7), 21, 3, 4)
    (6, 6, 9)
    """
    bounds: list[int] = []
    previous = 0
    for b in itertools.accumulate(chunks[:-1]):
        b -= b % stride
        if b - previous >= minimum and length - b >= minimum:
            bounds.append(b)
            previous = b
    edges = [0, *bounds, length]
    return tuple(b - a for a, b in itertools.pairwise(edges))


def _output_chunks(padded: tuple[int, ...], q: int, stride: int) -> tuple[int, ...]:
    """The output positions whose windows start in each padded chunk (the last chunk takes the rest)."""
    inner = tuple(c // stride for c in padded[:-1])
    return (*inner, q - sum(inner))


def _used_length(geom: Geometry, i: int) -> int:
    """``(Q − 1)·s + κ``: the padded positions some window reads along dimension ``i`` (at most ``P``)."""
    return (geom.out_size[i] - 1) * geom.stride[i] + geom.span[i]


def _spatial_layout(chunks: tuple[tuple[int, ...], ...], geom: Geometry, q_space: bool) -> tuple[
        tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """Aligned padded chunks and the matching output chunks of every spatial dimension.

    ``chunks`` are the spatial chunks of the padded input (``q_space=False``)
    or of the upstream gradient (``q_space=True``, boundaries scaled by the stride).
    """
    padded, outputs = [], []
    for i, c in enumerate(chunks):
        s, used = geom.stride[i], _used_length(geom, i)
        if q_space:
            c = tuple(s * v for v in c[:-1]) + (used - s * sum(c[:-1]),)
        p = aligned_chunks(c, used, s, min_chunk(geom.span[i], s))
        padded.append(p)
        outputs.append(_output_chunks(p, geom.out_size[i], s))
    return tuple(padded), tuple(outputs)


def _depth(layout: tuple[tuple[int, ...], ...], halo: tuple[int, ...], left: bool) -> dict[int, Any]:
    """``map_overlap`` depths: a one-sided halo on each spatial axis split into more than one chunk."""
    return {2 + i: ((h, 0) if left else (0, h)) if len(c) > 1 and h else 0
            for i, (c, h) in enumerate(zip(layout, halo))}


def check_chunks(arrays: Mapping[str, Any], geom: Geometry) -> None:
    """The channel axes of the data arrays are one chunk each (version 1 of the block layout), or a ValueError.

    Called by :func:`convgrad._prepare.prepare` for Dask arrays; weights and
    biases may be chunked in any way (they are used whole).
    """
    for name, a in arrays.items():
        if name in ("x", "ggx", "grad_output"):
            axis = 1 if geom.batched else 0
            if len(a.chunks[axis]) > 1:
                raise ValueError(
                    f"{name} is split over its channel axis (axis {axis}) into chunks {a.chunks[axis]}; "
                    f"convgrad.dask needs all channels in one chunk (chunk over the batch and spatial axes "
                    f"only): {name}.rechunk({{{axis}: -1}})"
                )


# ----------------------------------------------------------------------------- the padding map, globally


def pad(x: Any, geom: Geometry) -> Any:
    """The padding map on a batched Dask array, globally: ``(N, C, *S)`` -> ``(N, C, *P)``.

    Zero padding and crops only: input dilation never reaches this route (the engine splits such a
    convolution into phases, ordinary convolutions of the undilated input, first).
    """
    da = _da()
    if not geom.pads_input:
        return x
    if geom.padding_mode != "zeros":
        return da.pad(x, [(0, 0), (0, 0), *zip(geom.pad_lo, geom.pad_hi)], mode=_DASK_MODE[geom.padding_mode])
    src, dst = placement(geom)
    inner = x[(slice(None), slice(None)) + src]
    widths = [(0, 0), (0, 0)]
    for size, sl, p in zip(inner.shape[2:], dst, geom.padded_size):
        start = sl.start if size else 0
        widths.append((start, p - start - size))
    return da.pad(inner, widths, mode="constant")


def _strip_target(sources: list[int]) -> tuple[int, int, str]:
    """Where a border strip goes back: ``(first, stop, how)`` with how ``"same"``, ``"flip"`` or ``"sum"``."""
    if all(v == sources[0] for v in sources):
        return sources[0], sources[0] + 1, "sum"
    if sources == list(range(sources[0], sources[0] + len(sources))):
        return sources[0], sources[-1] + 1, "same"
    return sources[-1], sources[0] + 1, "flip"  # consecutive, decreasing (reflect)


def pad_adjoint(z: Any, geom: Geometry) -> Any:
    """The adjoint of :func:`pad` on a Dask array: ``(N, C, *P)`` -> ``(N, C, *S)``.

    Zero padding gathers the input's positions back (a crop); the other modes
    add each border strip back onto the positions it was copied from, one
    strip per side and dimension (summed for replicate, reversed for reflect),
    as :func:`convgrad.engine.padding.source_index` says.
    """
    da = _da()
    if not geom.pads_input:
        return z
    if geom.padding_mode == "zeros":
        kept, at = placement(geom)
        inner = z[(slice(None), slice(None)) + at]
        widths = [(0, 0), (0, 0)] + [(sl.start, s - sl.stop) if sl.stop > sl.start else (0, s)
                                     for sl, s in zip(kept, geom.in_size)]
        return da.pad(inner, widths, mode="constant")
    out = z
    for axis, (lo, hi, size) in enumerate(zip(geom.pad_lo, geom.pad_hi, geom.in_size), start=2):
        if lo == 0 and hi == 0:
            continue
        whole = out
        before = (slice(None),) * axis
        out = whole[before + (slice(lo, lo + size),)]
        source = source_index(geom.padding_mode, lo, hi, size).tolist()
        for first, stop in ((0, lo), (lo + size, lo + size + hi)):
            if stop == first:
                continue
            strip = whole[before + (slice(first, stop),)]
            start, end, how = _strip_target(source[first:stop])
            if how == "sum":
                strip = strip.sum(axis=axis, keepdims=True)
            elif how == "flip":
                strip = da.flip(strip, axis=axis)
            widths = [(0, 0)] * out.ndim
            widths[axis] = (start, size - end)
            out = out + da.pad(strip, widths, mode="constant").rechunk(out.chunks)
    return out


# ----------------------------------------------------------------------------- the block functions


def _block_geometry(block_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: tuple[int, ...],
                    dilation: tuple[int, ...], groups: int) -> Geometry:
    from ._prepare import checked_geometry

    return checked_geometry(tuple(block_shape), tuple(w_shape), stride=stride, dilation=dilation, groups=groups)


def _block_forward(block: Any, w: Any, *, stride: tuple[int, ...], dilation: tuple[int, ...], groups: int,
                   method: str, exact: bool, budget: int) -> Any:
    """One block's outputs: a valid convolution of the block with its right halo."""
    from . import engine

    geom = _block_geometry(block.shape, w.shape, stride, dilation, groups)
    with workspace_budget(budget):
        return engine.forward(block, w, geom, method, exact=exact)


def _block_input_grad(block: Any, w: Any, *, stride: tuple[int, ...], dilation: tuple[int, ...], groups: int,
                      widths: tuple[tuple[int, ...], ...], halo: tuple[int, ...], method: str, exact: bool,
                      budget: int, block_id: Optional[tuple[int, ...]] = None) -> Any:
    """One padded block of the input gradient, gathered from its upstream block with a left halo."""
    from . import engine

    assert block_id is not None  # dask passes it to functions that take it
    span = tuple(dl * (k - 1) + 1 for dl, k in zip(dilation, w.shape[2:]))
    local, keep = [], []
    for i, (q, s, sp) in enumerate(zip(block.shape[2:], stride, span)):
        j = block_id[2 + i]
        h = halo[i] if j > 0 and len(widths[i]) > 1 else 0
        width = widths[i][j]
        local.append(max((q - 1) * s + sp, h * s + width))
        keep.append(slice(h * s, h * s + width))
    n, c = block.shape[0], w.shape[1] * groups
    geom = _block_geometry((n, c, *local), w.shape, stride, dilation, groups)
    with workspace_budget(budget):
        gx = engine.input_grad(block, w, geom, method, exact=exact)
    return gx[(slice(None), slice(None)) + tuple(keep)]


def _block_weight_grad(x_block: Any, g_block: Any, *, w_shape: tuple[int, ...], stride: tuple[int, ...],
                       dilation: tuple[int, ...], groups: int, method: str, exact: bool, budget: int) -> Any:
    """One block's share of the weight gradient, with a leading one-element axis per block axis."""
    from . import engine

    geom = _block_geometry(x_block.shape, w_shape, stride, dilation, groups)
    with workspace_budget(budget):
        gw = engine.weight_grad(g_block, x_block, geom, method, exact=exact)
    shape = (1,) * x_block.ndim + tuple(w_shape)
    if isinstance(gw, np.ndarray):
        return gw.reshape(shape)
    return array_api_compat().array_namespace(gw).reshape(gw, shape)  # CuPy blocks, any other library


# ----------------------------------------------------------------------------- the three contractions


def _meta(a: Any, dtype: Any, ndim: int) -> Any:
    from dask.array.utils import meta_from_array

    return meta_from_array(a, ndim=ndim, dtype=dtype)  # type: ignore[no-untyped-call]


def _prepared_input(x: Any, geom: Geometry) -> tuple[Any, tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """The padded input, cut to the positions windows read and rechunked to the aligned layout."""
    xp = pad(x, geom)
    used = tuple(_used_length(geom, i) for i in range(geom.d))
    if used != tuple(xp.shape[2:]):
        xp = xp[(slice(None), slice(None)) + tuple(slice(0, u) for u in used)]
    padded, outputs = _spatial_layout(tuple(xp.chunks[2:]), geom, q_space=False)
    return xp.rechunk((xp.chunks[0], -1) + padded), padded, outputs


def _common(geom: Geometry) -> dict[str, Any]:
    return {"stride": geom.stride, "dilation": geom.dilation, "groups": geom.groups,
            "budget": get_workspace_budget()}


def forward(x: Any, w: Any, geom: Geometry, method: str = "auto", *, exact: bool = False) -> Any:
    """``y = conv(x, w)`` (no bias) on batched Dask arrays: ``map_overlap`` with a right halo of ``κ − 1``."""
    da = _da()
    dtype = da.result_type(x, w)
    if geom.n == 0:
        return da.zeros((0, geom.c_out) + geom.out_size, dtype=dtype)
    xp, padded, outputs = _prepared_input(x, geom)
    halo = tuple(sp - 1 for sp in geom.span)
    return da.map_overlap(
        _block_forward, xp, depth=_depth(padded, halo, left=False), boundary="none", trim=False,
        allow_rechunk=False, chunks=(xp.chunks[0], (geom.c_out,)) + outputs, dtype=dtype,
        meta=_meta(x, dtype, x.ndim), w=w.rechunk(-1), method=method, exact=exact, **_common(geom),
    )


def input_grad(g: Any, w: Any, geom: Geometry, method: str = "auto", *, exact: bool = False) -> Any:
    """``gx = pad_adjoint(fold(wᵀ g))`` on batched Dask arrays: a gather with a left halo of ``⌊(κ − 1)/s⌋``."""
    da = _da()
    dtype = da.result_type(g, w)
    if geom.n == 0:
        return da.zeros((0, geom.c_in) + geom.in_size, dtype=dtype)
    padded, outputs = _spatial_layout(tuple(g.chunks[2:]), geom, q_space=True)
    g = g.rechunk((g.chunks[0], -1) + outputs)
    halo = tuple((sp - 1) // s for sp, s in zip(geom.span, geom.stride))
    gxp = da.map_overlap(
        _block_input_grad, g, depth=_depth(padded, halo, left=True), boundary="none", trim=False,
        allow_rechunk=False, chunks=(g.chunks[0], (geom.c_in,)) + padded, dtype=dtype,
        meta=_meta(g, dtype, g.ndim), w=w.rechunk(-1), widths=padded, halo=halo, method=method, exact=exact,
        **_common(geom),
    )
    short = [(0, p - sum(c)) for p, c in zip(geom.padded_size, padded)]
    if any(hi for _, hi in short):  # positions no window reads: their gradient is zero
        gxp = da.pad(gxp, [(0, 0), (0, 0), *short], mode="constant")
    return pad_adjoint(gxp, geom)


def weight_grad(g: Any, x: Any, geom: Geometry, method: str = "auto", *, exact: bool = False) -> Any:
    """``gw = Σ_blocks conv_weight_grad(g_block, x_block)``: one weight gradient per block, then a tree sum."""
    da = _da()
    dtype = da.result_type(g, x)
    if geom.n == 0:
        return da.zeros(geom.weight_shape, dtype=dtype)
    xp, padded, outputs = _prepared_input(x, geom)
    g = g.rechunk((xp.chunks[0], -1) + outputs)
    halo = tuple(sp - 1 for sp in geom.span)
    blocks = tuple(len(c) for c in xp.chunks)
    parts = da.map_overlap(
        _block_weight_grad, xp, g, depth=[_depth(padded, halo, left=False), 0], boundary="none", trim=False,
        allow_rechunk=False, align_arrays=False, new_axis=list(range(x.ndim, 2 * x.ndim)),
        chunks=tuple((1,) * b for b in blocks) + tuple((v,) for v in geom.weight_shape), dtype=dtype,
        meta=_meta(x, dtype, 2 * x.ndim), w_shape=geom.weight_shape, method=method, exact=exact,
        **_common(geom),
    )
    return parts.sum(axis=tuple(range(x.ndim)), split_every=_split_every.get())


def bias_grad(g: Any) -> Any:
    """``gb[o] = Σ_{n,q} g[n, o, q]``: a tree sum."""
    return g.sum(axis=(0, *range(2, g.ndim)), split_every=_split_every.get())


def run(op: str, a: Any, b: Any, geom: Geometry, method: str = "auto", *, exact: bool = False) -> Any:
    """Contraction ``op`` (``"forward"``, ``"input"``, ``"weight"``) of two batched Dask arrays, lazily."""
    contraction = {"forward": forward, "input": input_grad, "weight": weight_grad}[op]
    return contraction(a, b, geom, method, exact=exact)


# ----------------------------------------------------------------------------- the public functions


@contextlib.contextmanager
def _split(split_every: Optional[int]) -> Iterator[None]:
    token = _split_every.set(split_every)
    try:
        yield
    finally:
        _split_every.reset(token)


def _require_dask(a: object, name: str, function: str) -> None:
    da = _da()
    if not isinstance(a, da.Array):
        kind = "NumPy" if not is_foreign(a) else type_name(a)
        raise TypeError(
            f"convgrad.dask.{function} takes Dask arrays; {name} is {a_type(a)} "
            f"(for {kind} arrays call convgrad.{function}, or wrap it: dask.array.from_array({name}, chunks=...))"
        )


def conv(x: Any, w: Any, b: Any = None, /, **options: Any) -> Any:
    """:func:`convgrad.conv` of a Dask array, lazily: a Dask array out.

    Parameters
    ----------
    x : dask.array.Array, shape=(N, C, *S) or (C, *S)
        Chunked over the batch and spatial axes; the channels in one chunk.
    w : array, shape=(O, C / groups, *K)
        A Dask array or an array of ``x``'s blocks' type (a NumPy array).
    b : array, shape=(O,), optional
    **options
        ``stride``, ``padding``, ``dilation``, ``groups``, ``padding_mode``,
        ``input_dilation``, ``method``: as for :func:`convgrad.conv`.

    Returns
    -------
    dask.array.Array, shape=(N, O, *Q) or (O, *Q)
        Chunked like ``x`` (each chunk the outputs whose windows start in it).

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da                                          # doctest: +SKIP
    >>> import convgrad.dask as cgd                                      # doctest: +SKIP
    >>> x = da.ones((1, 1, 12), chunks=(1, 1, 5))                        # doctest: +SKIP
    >>> cgd.conv(x, np.ones((1, 1, 3)), padding=1).compute()             # doctest: +SKIP
    array([[[2., 3., 3., 3., 3., 3., 3., 3., 3., 3., 3., 2.]]])
    """
    from ._conv import conv as core

    _require_dask(x, "x", "conv")
    return core(x, w, b, **options)


def conv_input_grad(grad_output: Any, w: Any, /, **options: Any) -> Any:
    """:func:`convgrad.conv_input_grad` of a Dask array, lazily.

    Parameters
    ----------
    grad_output : dask.array.Array, shape=(N, O, *Q) or (O, *Q)
    w : array, shape=(O, C / groups, *K)
    **options
        ``input_shape`` (required) and the options of :func:`convgrad.conv`.

    Returns
    -------
    dask.array.Array, shape=input_shape
    """
    from ._conv import conv_input_grad as core

    _require_dask(grad_output, "grad_output", "conv_input_grad")
    return core(grad_output, w, **options)


def conv_weight_grad(grad_output: Any, x: Any, /, *, split_every: Optional[int] = None, **options: Any) -> Any:
    """:func:`convgrad.conv_weight_grad` of Dask arrays, lazily: per-block gradients and a tree sum.

    Parameters
    ----------
    grad_output : dask.array.Array, shape=(N, O, *Q) or (O, *Q)
    x : dask.array.Array, shape=(N, C, *S) or (C, *S)
    split_every : int, optional
        How many block gradients each node of the tree sum adds (Dask's default when omitted).
    **options
        ``weight_shape`` (required) and the options of :func:`convgrad.conv`.

    Returns
    -------
    dask.array.Array, shape=weight_shape
    """
    from ._conv import conv_weight_grad as core

    _require_dask(x, "x", "conv_weight_grad")
    with _split(split_every):
        return core(grad_output, x, **options)


def conv_bias_grad(grad_output: Any, /, *, unbatched: bool = False, split_every: Optional[int] = None) -> Any:
    """:func:`convgrad.conv_bias_grad` of a Dask array, lazily (a tree sum).

    Parameters
    ----------
    grad_output : dask.array.Array, shape=(N, O, *Q), or (O, *Q) with ``unbatched=True``
    unbatched : bool
    split_every : int, optional

    Returns
    -------
    dask.array.Array, shape=(O,)
    """
    from ._conv import conv_bias_grad as core

    _require_dask(grad_output, "grad_output", "conv_bias_grad")
    with _split(split_every):
        return core(grad_output, unbatched=unbatched)


def conv_backward(grad_output: Any, x: Any, w: Any, /, *, split_every: Optional[int] = None, **options: Any) -> Any:
    """:func:`convgrad.conv_backward` of Dask arrays, lazily: ``Grads(input, weight, bias)`` of Dask arrays.

    Parameters
    ----------
    grad_output : dask.array.Array, shape=(N, O, *Q) or (O, *Q)
    x : dask.array.Array, shape=(N, C, *S) or (C, *S)
    w : array, shape=(O, C / groups, *K)
    split_every : int, optional
        For the tree sums of the weight and bias gradients.
    **options
        As for :func:`convgrad.conv`.

    Returns
    -------
    convgrad.Grads
        Of Dask arrays; ``dask.compute(*grads)`` computes the three together.
    """
    from ._conv import conv_backward as core

    _require_dask(x, "x", "conv_backward")
    with _split(split_every):
        return core(grad_output, x, w, **options)


def conv_transpose(x: Any, w: Any, b: Any = None, /, **options: Any) -> Any:
    """:func:`convgrad.conv_transpose` of a Dask array, lazily (the input gradient's gather, block by block).

    Parameters
    ----------
    x : dask.array.Array, shape=(N, C_in, *S) or (C_in, *S)
    w : array, shape=(C_in, C_out / groups, *K)
    b : array, shape=(C_out,), optional
    **options
        ``stride``, ``padding``, ``output_padding``, ``dilation``, ``groups``,
        ``output_shape``, ``method``: as for :func:`convgrad.conv_transpose`.

    Returns
    -------
    dask.array.Array
    """
    from ._transpose import conv_transpose as core

    _require_dask(x, "x", "conv_transpose")
    return core(x, w, b, **options)


def conv_transpose_backward(grad_output: Any, x: Any, w: Any, /, *, split_every: Optional[int] = None,
                            **options: Any) -> Any:
    """:func:`convgrad.conv_transpose_backward` of Dask arrays, lazily.

    Parameters
    ----------
    grad_output : dask.array.Array
        Shaped like ``conv_transpose(x, w, ...)``.
    x : dask.array.Array, shape=(N, C_in, *S) or (C_in, *S)
    w : array, shape=(C_in, C_out / groups, *K)
    split_every : int, optional
    **options
        As for :func:`convgrad.conv_transpose`.

    Returns
    -------
    convgrad.Grads
        Of Dask arrays.
    """
    from ._transpose import conv_transpose_backward as core

    _require_dask(x, "x", "conv_transpose_backward")
    with _split(split_every):
        return core(grad_output, x, w, **options)
