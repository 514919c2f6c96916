"""The engine: the four operations of a convolution on a checked geometry.

Arrays come in batched (``(N, C, *S)``) and in the compute dtype, already
checked by :func:`convgrad._prepare.prepare`; nothing here validates. NumPy
arrays take the tuned routes below; arrays of any other library (CuPy, torch,
``array_api_strict``, JAX) the generic route, in their own namespace, and
Dask arrays the block-wise route of :mod:`convgrad.dask` (``Array`` in these
signatures stands for either).

* :mod:`.dispatch` — the route table and the rule that picks a route;
* :mod:`.cost` — the cost model: estimated time and workspace of each route;
* routes — :mod:`.gemm` (im2col + GEMM, any geometry), :mod:`.grid` (stride 1,
  on the flattened grid), :mod:`.pointwise` (1×1 kernels), :mod:`.small` (a few
  thousand window entries, one piece), :mod:`.taps` (1-d, 2 or 3 taps, no im2col),
  :mod:`.depthwise`, :mod:`.fft` (overlap-save), :mod:`.winograd` and the compiled
  :mod:`.jit`; :mod:`.windows` (the window map and its adjoint)
  and :mod:`.padding` (the padding map and its adjoint) under them;
* :mod:`.phases` — input dilation as a set of ordinary convolutions (a
  polyphase split), so that no product with an inserted zero is computed;
* :mod:`.generic` — the one route of every other array namespace (array-API
  functions only: stepped-slice im2col and fold, ``xp.matmul``);
* :mod:`.state` — every piece of shared mutable state (budget, scratch
  buffers, thread pool, caches), thread-, fork- and interrupt-safe.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry, prod
from . import dispatch, jit, pointwise, small, winograd
from .dispatch import is_depthwise

Array = npt.NDArray[Any]
_NDARRAY = np.ndarray

__all__ = ["add_bias", "backward", "bias_by_blas", "bias_grad", "forward", "forward_bias", "input_grad",
           "is_depthwise", "weight_grad"]


def forward(x: Array, w: Array, geom: Geometry, method: str = "auto", *, exact: bool = False) -> Array:
    """``y[n, o, q] = Σ_{c,k} U[n, γ(o)·C/G + c, q, k] · w[o, c, k]`` (no bias)."""
    return dispatch.run("forward", x, w, geom, method, exact=exact)


def forward_bias(x: Array, w: Array, b: Array, geom: Geometry, method: str = "auto", *, exact: bool = False) -> Array:
    """``forward(x, w) + b[o]`` for NumPy arrays, the bias fused into the GEMM on the pointwise route where that
    saves a pass over ``y`` (:func:`convgrad.engine.pointwise.bias_fuses`), added as each plane is written on the
    compiled depthwise route and by Winograd's compiled output transform, else added in place."""
    if not exact and not geom.dilates_input:
        dtype = np.result_type(x, w, b)
        name = dispatch.route(geom, dtype, method, "forward")
        if name == "pointwise" and pointwise.bias_fuses(geom, dtype):
            return pointwise.pointwise_forward_bias(x, w, b, geom)
        if name == "jit_depthwise" and b.dtype == np.result_type(x, w):
            return jit.depthwise_forward(x, w, geom, b)
        if (name == "winograd" and type(x) is _NDARRAY and b.dtype == np.result_type(x, w)
                and winograd.use_compiled(geom.d)
                and dispatch.checked_route("forward", x, w, geom, method, name=name) == "winograd"):
            with np.errstate(invalid="ignore"):
                return winograd.winograd_forward(x, w, geom, bias=b)  # the bias added as each plane is written
    return add_bias(forward(x, w, geom, method, exact=exact), b, geom)


def add_bias(y: Array, b: Array, geom: Geometry) -> Array:
    """``y + b[o]``: in place where the dtypes agree, else a new array (the API casts all three arrays to one
    dtype; a direct caller may not)."""
    shape = (-1,) + (1,) * geom.d
    if b.dtype != y.dtype:
        return y + b.reshape(shape)  # type: ignore[no-any-return]
    y += b.reshape(shape)
    return y


def backward(g: Array, x: Array, w: Array, geom: Geometry, method: str = "auto", *,
             exact: bool = False) -> tuple[Array, Array, Array] | None:
    """``(input_grad(g, w), weight_grad(g, x), bias_grad(g))`` in one pass where the compiled depthwise kernels
    take both gradients and :func:`convgrad.engine.jit.backward_fuses`, or the two gradients in one piece where
    the small route takes both (:func:`convgrad.engine.small.small_backward`), for NumPy arrays of real floats;
    else ``None``, and the caller computes the three one by one."""
    if exact or geom.dilates_input or not (type(g) is type(x) is type(w) is _NDARRAY):
        return None
    dtype = np.result_type(g, x, w)
    if dtype.kind != "f":
        return None
    if (small.applies(geom) and dispatch.lookup(geom, dtype, method, "input") == "small"
            and dispatch.lookup(geom, dtype, method, "weight") == "small"):
        dispatch.route(geom, dtype, method, "input")  # the routes these two gradients take (asked as run() asks)
        dispatch.route(geom, dtype, method, "weight")
        with np.errstate(invalid="ignore"):  # NaN from inf·0 or inf − inf is the answer, as in PyTorch
            gx, gw = small.small_backward(g, x, w, geom)
        return gx, gw, bias_grad(g, blas=bias_by_blas(g, geom, method))  # the same bits as conv_bias_grad
    if not is_depthwise(geom) or not jit.backward_fuses(geom, dtype.itemsize):
        return None
    if dispatch.route(geom, dtype, method, "input") != "jit_depthwise":
        return None
    if dispatch.route(geom, dtype, method, "weight") != "jit_depthwise":
        return None
    with np.errstate(invalid="ignore"):
        return jit.depthwise_backward(g, x, w, geom)


def bias_by_blas(g: Array, geom: Geometry, method: str = "auto") -> bool:
    """Whether :func:`bias_grad` may sum ``g`` by the BLAS in a backward pass: not where the layer's gradients
    take compiled kernels on the engine's threads (depthwise layers, the thin layers' direct kernels, Winograd with
    the compiled transforms), which run next to the BLAS's spinning threads otherwise. Measured, called back to
    back: conv3d 16→32 at 16×32², 30–33 ms per backward pass with the GEMV against 16–17 ms for its two gradients
    alone; 32→32 at 112² on compiled Winograd, 62 ms with the GEMV against 35 ms without."""
    if is_depthwise(geom):
        return False
    if type(g) is not _NDARRAY or g.dtype.kind != "f" or g.size < GEMV_MIN_ELEMENTS:  # (small: no GEMV anyway)
        return True
    route = dispatch.lookup(geom, g.dtype, method, "weight")
    return route not in jit.ROUTES["weight"] and not (route == "winograd" and winograd.use_compiled(geom.d))


def input_grad(g: Array, w: Array, geom: Geometry, method: str = "auto", *, exact: bool = False) -> Array:
    """``gx = pad_adjoint(fold(Z))``, ``Z[n, c, k, q] = Σ_o g[n, o, q] · w[o, c, k]`` (no conjugation)."""
    return dispatch.run("input", g, w, geom, method, exact=exact)


def weight_grad(g: Array, x: Array, geom: Geometry, method: str = "auto", *, exact: bool = False) -> Array:
    """``gw[o, c, k] = Σ_{n,q} g[n, o, q] · U[n, c, q, k]`` (no conjugation)."""
    return dispatch.run("weight", g, x, geom, method, exact=exact)


def bias_grad(g: Array, *, blas: bool = True) -> Array:
    """``gb[o] = Σ_{n,q} g[n, o, q]``.

    ``blas=False`` keeps the BLAS out of it (NumPy's reduction only): after a multi-threaded BLAS call its
    threads spin for about 0.1 s, and compiled kernels that run next on the engine's threads (the depthwise
    routes) then share a core with them. Measured, a depthwise backward pass (8×128×56², stride 2) called back
    to back: 7.4 ms with the GEMV, 4.3 ms without.
    """
    if type(g) is not _NDARRAY:
        from . import generic

        return generic.bias_grad(g)  # type: ignore[no-any-return]
    n, o, q = g.shape[0], g.shape[1], prod(g.shape[2:])
    with np.errstate(invalid="ignore"):  # inf − inf is NaN, as in PyTorch: no warning
        if (blas and g.dtype.kind == "f" and g.flags.c_contiguous and 0 < q <= GEMV_POSITIONS
                and n * o * q >= GEMV_MIN_ELEMENTS):
            # one GEMV against ones: the multi-threaded BLAS reads g once, 2.7× faster than the reduction on
            # (8, 256, 56, 56) float32, with the same order of rounding error (each row in the BLAS's lanes).
            # Real dtypes only: a complex product by 1 + 0j would turn inf + 0j into inf + NaN·j; and contiguous
            # g only, which the GEMV reads in place (any other g would be copied whole)
            rows: Array = np.matmul(g.reshape(n * o, q), np.ones(q, dtype=g.dtype))
            return rows.reshape(n, o).sum(axis=0)  # type: ignore[no-any-return]
        total: Array = g.sum(axis=(0,) + tuple(range(2, g.ndim)))
    return total


GEMV_MIN_ELEMENTS = 1 << 14
"""Smaller gradients are summed by the reduction, whose call costs a few µs less than the GEMV's."""

GEMV_POSITIONS = 1 << 16
"""Longest row summed by one GEMV in :func:`bias_grad`; longer ones take NumPy's pairwise summation, whose
float32 error stays lower over millions of positions (3.7e-8 against 1.8e-7 at 2²⁰)."""
