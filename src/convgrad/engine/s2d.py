"""Space to depth: a strided convolution whose kernel is a multiple of its stride, as a stride-1 convolution of
the input's stride phases stacked as channels.

With stride ``s`` and a kernel of ``K = κ·s`` taps along a dimension, output
``q`` reads the padded input at ``q·s + k``; writing ``k = t·s + r`` (``r < s``,
``t < κ``) that is phase ``r`` of the input at position ``q + t``. So, with the
padded input cut into its ``S = Π s`` phases ``x'[n, c·S + r, m] = x_p[n, c,
m·s + r]`` (zero-extended to a multiple of ``s``) and the kernel likewise
``w'[o, c·S + r, t] = w[o, c, t·s + r]``, the layer is the stride-1
convolution of ``x'`` with ``w'`` — the same products, the same sums (no zero
tap: ``K`` is a multiple of ``s``), on ``C·S`` channels and a ``κ``-tap
kernel. Groups stay groups: channel ``c`` of group ``g`` becomes channels
``c·S … c·S + S − 1``, still inside the group's block.

Why: a stride-1 layer takes the implicit route (:mod:`convgrad.engine.implicit`,
one in-place BLAS GEMM per kernel offset, no window matrix), which a strided
layer cannot; and its GEMMs have ``C·S`` as their inner dimension. The 4×4
stride-2 layer of the benchmark (64→128 at 56², the convolution whose input
gradient is the transposed layer's forward pass), 2 threads: forward 14.6–15.8
→ 11.3–11.6 ms, input gradient 14.6–14.7 → 10.9–11.6 ms (PyTorch 5.8 and
6.5–6.9); its weight gradient measured the same either way (13.0–13.2
against 13.1–13.7), so it keeps its route. A kernel equal to the stride (no overlap) gains
nothing: its window matrix is already the phases' copy.

The three pieces:

* forward: ``y = conv₁(x', w')``;
* input gradient: ``gx = crop(unphase(input_grad₁(g, w')))``;
* weight gradient: ``gw = unphase(weight_grad₁(g, x'))``.

The rewrite is taken only where the padded size is a multiple of the stride
along every dimension (``P = L·s``, as with the usual ``(K − s)/2`` padding on
sizes divisible by the stride). Then the stride-1 layer has exactly the
layer's outputs (``L − K/s + 1 = Q``) and forms exactly the products the
definition forms, those with the padding's zeros included — so a NaN or an
infinity lands where PyTorch puts it. (Other sizes would need the input
extended or cut to a multiple of ``s``, and extra outputs would multiply
zeros PyTorch never multiplies.)

Examples
--------
>>> import numpy as np
>>> from convgrad._geometry import conv_geometry
>>> from convgrad.engine.gemm import gemm_forward
>>> geom = conv_geometry((2, 3, 10, 8), (4, 3, 4, 4), stride=2, padding=1)
>>> inner = geometry(geom)
>>> (inner.c_in, inner.kernel, inner.stride, inner.out_size, geom.out_size)
(12, (2, 2), (1, 1), (5, 4), (5, 4))
>>> geometry(conv_geometry((2, 3, 10, 9), (4, 3, 4, 4), stride=2, padding=1)) is None  # one more output
True
>>> x, w = np.random.default_rng(0).standard_normal((2, 3, 10, 8)), np.ones((4, 3, 4, 4))
>>> bool(np.allclose(s2d_forward(x, w, geom), gemm_forward(x, w, geom)))
True
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry, prod
from .state import cache

Array = npt.NDArray[Any]

ROUTE = "s2d"


@cache(256)
def geometry(geom: Geometry) -> Geometry | None:
    """The stride-1 geometry of the phases stacked as channels, or ``None`` where the rewrite does not apply: zero
    padding (no crop, no input dilation), no dilation, a stride above 1 somewhere, along every strided dimension
    a kernel that is a multiple of the stride and longer than it somewhere (overlapping windows), and a padded
    size that is a multiple of the stride along every dimension."""
    if geom.padding_mode != "zeros" or geom.dilates_input or any(dl != 1 for dl in geom.dilation):
        return None
    if any(p < 0 for p in geom.pad_lo + geom.pad_hi) or all(s == 1 for s in geom.stride):
        return None
    if any(k % s for k, s in zip(geom.kernel, geom.stride)) or all(k == s for k, s in zip(geom.kernel, geom.stride)):
        return None
    if any(p % s for p, s in zip(geom.padded_size, geom.stride)):
        return None  # see the module docstring
    lengths = tuple(p // s for p, s in zip(geom.padded_size, geom.stride))
    kernel = tuple(k // s for k, s in zip(geom.kernel, geom.stride))
    return Geometry(
        batched=True, n=geom.n, c_in=geom.c_in * prod(geom.stride), c_out=geom.c_out, groups=geom.groups,
        in_size=lengths, kernel=kernel, out_size=tuple(ln - k + 1 for ln, k in zip(lengths, kernel)),
        stride=(1,) * geom.d, dilation=(1,) * geom.d, pad_lo=(0,) * geom.d, pad_hi=(0,) * geom.d,
        padding_mode="zeros",
    )


def choose(geom: Geometry, dtype: np.dtype[Any], method: str, op: str, *, exact: bool, finite: bool) -> str | None:
    """``"s2d"`` for the forward pass and the input gradient where :func:`geometry` applies, for ``method="auto"``
    or ``"direct"``, floating data, and where the implicit route applies to the stride-1 layer's contraction by
    its rule (the gain; :func:`s2d_forward` and :func:`s2d_input_grad` then compute it there, whatever another
    rule would pick for that layer). The weight gradient measured the same either way and keeps its route.

    Examples
    --------
    >>> from convgrad._geometry import conv_geometry
    >>> geom = conv_geometry((8, 64, 56, 56), (128, 64, 4, 4), stride=2, padding=1)
    >>> choose(geom, np.dtype("float32"), "auto", "forward", exact=False, finite=True) in ("s2d", None)  # BLAS found?
    True
    >>> choose(geom, np.dtype("float32"), "auto", "weight", exact=False, finite=True) is None
    True
    """
    del finite  # the stride-1 layer's own route checks its data
    if method not in ("auto", "direct") or exact or op not in ("forward", "input") or np.dtype(dtype).kind != "f":
        return None
    inner = geometry(geom)
    if inner is None:
        return None
    from . import implicit

    return ROUTE if implicit.choose(inner, dtype, method, op, exact=False, finite=True) is not None else None


_Slices = tuple[slice, ...]


def _phase_slices(geom: Geometry) -> list[tuple[tuple[int, ...], _Slices, _Slices]]:
    """For each phase ``r``: the slices of the phase's grid (``m``) and of the unpadded input (``i``) that hold
    the input's entries, ``m·s + r = i + lo``."""
    out = []
    for r in itertools.product(*(range(s) for s in geom.stride)):
        grid, data = [], []
        for ri, s, lo, size in zip(r, geom.stride, geom.pad_lo, geom.in_size):
            first = (lo - ri + s - 1) // s  # the first m with m·s + r >= lo
            i0 = first * s + ri - lo
            count = max(0, -(-(size - i0) // s))
            grid.append(slice(first, first + count))
            data.append(slice(i0, i0 + count * s, s) if count else slice(0, 0))
        out.append((r, tuple(grid), tuple(data)))
    return out


def _phases(x: Array, geom: Geometry, inner: Geometry) -> Array:
    """``(N, C, *S)`` → ``(N, C·S, *L)``: the zero-padded input (``lo`` before, up to ``L·s`` after) cut into the
    stride's phases, each phase a channel next to its siblings; one strided copy per phase, straight from ``x``."""
    n, c = x.shape[0], x.shape[1]
    out = np.zeros((n, c) + geom.stride + inner.in_size, dtype=x.dtype)
    both = (slice(None), slice(None))
    for r, grid, data in _phase_slices(geom):
        out[both + r + grid] = x[both + data]
    return out.reshape((n, c * prod(geom.stride)) + inner.in_size)


def _unphase(xs: Array, geom: Geometry, inner: Geometry) -> Array:
    """The adjoint of :func:`_phases`: ``(N, C·S, *L)`` → ``(N, C, *S)`` (the phases put back, the padding cut),
    one strided copy per phase."""
    n, c = xs.shape[0], geom.c_in
    split = xs.reshape((n, c) + geom.stride + inner.in_size)
    out = np.empty((n, c) + tuple(geom.in_size), dtype=xs.dtype)
    both = (slice(None), slice(None))
    for r, grid, data in _phase_slices(geom):
        out[both + data] = split[both + r + grid]
    return out


def weight(w: Array, geom: Geometry) -> Array:
    """``w'[o, c·S + r, t] = w[o, c, t·s + r]``: ``(O, C/G, *K)`` → ``(O, C/G·S, *κ)``."""
    o, cg, d = w.shape[0], w.shape[1], geom.d
    kappa = tuple(k // s for k, s in zip(geom.kernel, geom.stride))
    split = w.reshape((o, cg) + tuple(v for k, s in zip(kappa, geom.stride) for v in (k, s)))
    order = (0, 1) + tuple(3 + 2 * i for i in range(d)) + tuple(2 + 2 * i for i in range(d))
    return np.ascontiguousarray(split.transpose(order)).reshape((o, cg * prod(geom.stride)) + kappa)


def _unweight(wp: Array, geom: Geometry) -> Array:
    """The inverse of :func:`weight`: ``(O, C/G·S, *κ)`` → ``(O, C/G, *K)``, each tap put back at ``t·s + r``."""
    o, cg, d = wp.shape[0], geom.c_in // geom.groups, geom.d
    split = wp.reshape((o, cg) + geom.stride + tuple(wp.shape[2:]))
    order = (0, 1) + tuple(v for i in range(d) for v in (2 + d + i, 2 + i))
    return np.ascontiguousarray(split.transpose(order)).reshape((o, cg) + tuple(geom.kernel))


def _inner(op: str, a: Array, b: Array, inner: Geometry) -> Array:
    """The stride-1 layer's contraction ``op`` on the implicit route where the BLAS is reachable (what
    :func:`choose` checked), else by the engine's rules (a direct call of the functions below)."""
    from . import blas, implicit
    from .dispatch import run

    dtype = np.result_type(a, b)
    if dtype.kind == "f" and blas.available(dtype) and implicit.applies(inner, dtype, op):
        return implicit.ROUTES[op]["implicit"](a, b, inner)  # type: ignore[no-any-return]
    return run(op, a, b, inner)


def s2d_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``y = conv(x, w)`` as the stride-1 convolution of the stacked phases (module docstring)."""
    inner = geometry(geom)
    assert inner is not None, "s2d_forward on a layer the rewrite does not apply to"
    return _inner("forward", _phases(x, geom, inner), weight(w, geom), inner)


def s2d_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``gx``: the stride-1 layer's input gradient, its phases put back and the padding cut."""
    inner = geometry(geom)
    assert inner is not None, "s2d_input_grad on a layer the rewrite does not apply to"
    return _unphase(_inner("input", g, weight(w, geom), inner), geom, inner)


def s2d_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``gw``: the stride-1 layer's weight gradient, its taps put back in place (not taken by ``"auto"``; tested)."""
    from .dispatch import run

    inner = geometry(geom)
    assert inner is not None, "s2d_weight_grad on a layer the rewrite does not apply to"
    return _unweight(run("weight", g, _phases(x, geom, inner), inner), geom)


ROUTES: dict[str, dict[str, Any]] = {
    "forward": {ROUTE: s2d_forward},
    "input": {ROUTE: s2d_input_grad},
    "weight": {ROUTE: s2d_weight_grad},
}
"""This module's routes, per contraction, with the signature of :data:`convgrad.engine.dispatch.ROUTES`' entries."""

__all__ = ["ROUTE", "ROUTES", "choose", "geometry", "s2d_forward", "s2d_input_grad", "s2d_weight_grad", "weight"]
