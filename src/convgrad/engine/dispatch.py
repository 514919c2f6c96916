"""The route table and the rule that picks a route for each contraction.

Every route computes what the gemm route computes (same arguments, same
dtypes); only the order of the arithmetic, the speed and the workspace differ.
The rule (:func:`route`), in order, for one contraction ``op`` (``"forward"``,
``"input"`` or ``"weight"``):

1. ``"fft"`` — ``method="fft"``, or ``method="auto"`` when the cost model of
   :mod:`convgrad.engine.cost` estimates it cheaper (large kernels). Only for
   finite floating data whose spectra fit the workspace budget: integer data
   must come out exact, and a NaN or an infinity would spread over a whole
   block; such calls take the direct routes below, ``method="fft"`` included.
2. the optional routes, each by its own ``choose`` rule: ``"jit_direct"``
   (when Numba is installed: thin dense layers of 8–32 channels at stride 1,
   finite data, all three contractions by compiled direct kernels;
   :func:`convgrad.engine.jit.direct_applies`), ``"winograd"``
   (:mod:`convgrad.engine.winograd`: ``method="winograd"``, or ``"auto"`` where
   its cost and its float32 error allow it; 3×3 stride-1 layers, finite
   data), ``"s2d"`` (:mod:`convgrad.engine.s2d`: the forward pass and input
   gradient of a strided layer whose kernel is a multiple of its stride, as
   the stride-1 layer of its stride phases stacked as channels, where that
   layer takes the implicit route),
   ``"implicit"`` (:mod:`convgrad.engine.implicit`: the forward pass and
   input gradient at stride 1 as one in-place BLAS GEMM per kernel offset on
   the padded grid, no window matrix, where its cost is below the gemm and
   grid routes'; the input gradient of strided dense layers as the stride's
   phases of its full correlation where each phase takes it; float32 and
   float64 with NumPy's BLAS reachable), and, when Numba is installed,
   ``"jit_depthwise"`` (depthwise layers) and ``"jit_dense"`` (the input
   gradient of dense stride-1 layers that are not ``taps`` layers: GEMM into
   cache-sized blocks, compiled fold; both :mod:`convgrad.engine.jit`).
3. ``"pointwise"`` — every kernel size is 1 and there is no padding.
   ``"small"`` — ``method`` ``"auto"`` or ``"direct"`` and a window matrix of
   at most :data:`~convgrad.engine.small.SMALL_WINDOWS` entries: one gather of
   the windows through a remembered index and one GEMM, without the chunking of
   the routes below.
   ``"taps"`` — 1-d, stride 1, ``groups=1``, 2 or 3 taps, at least 256 outputs
   per sample: one GEMM per tap on shifted views, no im2col
   (:mod:`convgrad.engine.taps`).
4. ``"depthwise"`` — ``groups == C == O > 1``, all three contractions, any
   stride, where the phase grids of :mod:`convgrad.engine.depthwise` hold at
   most :data:`~convgrad.engine.depthwise.MAX_JUNK` positions per output:
   multiply-adds of whole rows, one per kernel offset (the weight gradient:
   dot products of whole rows).
5. ``"grid"`` — the forward pass and input gradient of layers with two or
   more spatial dimensions: stride 1 in every dimension, a window matrix of at least
   :data:`~convgrad.engine.cost.GRID_MIN_ELEMENTS` entries, one sample's grid
   windows within the budget, and a lower estimated cost than the gemm route
   (the grid computes at every padded position, ``P`` per sample, not ``Q``).
6. ``"gemm"`` — everything else: im2col and one GEMM per group and chunk.

A geometry with input dilation is first split into ordinary convolutions
(:mod:`convgrad.engine.phases`), each routed by the rule above.

Arrays of any other library (CuPy, torch tensors, ``array_api_strict``, JAX,
Dask) take the one generic route of :mod:`convgrad.engine.generic`, which
uses array-API functions only; the rule above, its cost model and the FFT
are NumPy's. :func:`run` tells the two apart by one ``type(a) is np.ndarray``
test, so NumPy calls pay nothing for it. :func:`run_generic` is that route on its own
(the tests put it in place of :func:`run` to compare it with the tuned routes on NumPy arrays).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry, prod
from . import cost, depthwise, implicit, jit, phases, s2d, small, taps, winograd
from .depthwise import depthwise_forward, depthwise_input_grad, depthwise_weight_grad
from .fft import fft_forward, fft_input_grad, fft_weight_grad
from .gemm import gemm_forward, gemm_input_grad, gemm_weight_grad
from .grid import grid_forward, grid_input_grad, grid_weight_grad
from .pointwise import pointwise_forward, pointwise_input_grad, pointwise_weight_grad
from .small import small_forward, small_input_grad, small_weight_grad
from .state import cache, get_workspace_budget
from .taps import taps_forward, taps_input_grad, taps_weight_grad

Array = npt.NDArray[Any]
_NDARRAY = np.ndarray
Contraction = Callable[[Array, Array, Geometry], Array]

ROUTES: dict[str, dict[str, Contraction]] = {
    "forward": {
        "fft": fft_forward, "pointwise": pointwise_forward, "small": small_forward, "taps": taps_forward,
        "depthwise": depthwise_forward, "grid": grid_forward, "gemm": gemm_forward,
    },
    "input": {
        "fft": fft_input_grad, "pointwise": pointwise_input_grad, "small": small_input_grad,
        "taps": taps_input_grad, "depthwise": depthwise_input_grad, "grid": grid_input_grad, "gemm": gemm_input_grad,
    },
    "weight": {
        "fft": fft_weight_grad, "pointwise": pointwise_weight_grad, "small": small_weight_grad,
        "taps": taps_weight_grad, "depthwise": depthwise_weight_grad, "grid": grid_weight_grad,
        "gemm": gemm_weight_grad,
    },
}
"""Each contraction's implementation on every route :func:`route` can pick for it."""

for _op in ("forward", "input", "weight"):
    ROUTES[_op].update(winograd.ROUTES[_op])
    ROUTES[_op].update(s2d.ROUTES[_op])
    ROUTES[_op].update(implicit.ROUTES[_op])
    ROUTES[_op].update(jit.ROUTES[_op])

FINITE_ONLY = frozenset({"fft", "winograd", "jit_direct"})
"""Routes taken for finite data only: their transforms would spread a NaN or an infinity over a block or tile, and
the thin layers' direct kernels would multiply one by the padding's zeros (the compiled depthwise kernels multiply
real zeros of the padding too, but only where PyTorch does, so NaN and infinity land where PyTorch puts them)."""


def is_pointwise(geom: Geometry) -> bool:
    """Every kernel size is 1 and the padding map is the identity (no padding, crop or input dilation)."""
    return all(k == 1 for k in geom.kernel) and not geom.pads_input


def is_depthwise(geom: Geometry) -> bool:
    """One input and one output channel per group, and more than one group: ``groups == C == O > 1``.

    (A single channel is one GEMV, which the gemm route does with less Python overhead.)
    """
    return geom.c_in == geom.c_out == geom.groups > 1


def grid_applies(geom: Geometry, itemsize: int, budget: int) -> bool:
    """Stride 1, not tiny, one sample's grid windows within ``budget``, and cheaper than the gemm route."""
    if any(s != 1 for s in geom.stride):
        return False
    if geom.n * geom.c_in * prod(geom.kernel) * prod(geom.padded_size) < cost.GRID_MIN_ELEMENTS:
        return False
    if cost.grid_sample_bytes(geom, itemsize) > budget:
        return False
    return cost.grid_cost(geom) <= cost.gemm_cost(geom)


def fft_applies(geom: Geometry, itemsize: int, budget: int, method: str) -> bool:
    """``method="fft"``, or ``"auto"`` and cheaper by the cost model; and its fixed spectra plus one sample's fit."""
    if method == "direct" or geom.n == 0:
        return False
    if method == "auto":
        if prod(geom.kernel) <= 8:  # below this the direct routes always won in the measurements
            return False
        direct = cost.gemm_cost(geom)
        if direct < cost.MIN_DIRECT_COST or cost.fft_cost(geom) >= direct:
            return False
    return cost.fft_fixed_bytes(geom, itemsize) + cost.fft_sample_bytes(geom, itemsize) <= budget


@cache(maxsize=1024)
def _route(geom: Geometry, itemsize: int, method: str, op: str, fft_ok: bool, budget: int, kind: str = "f",
           exact: bool = False, finite: bool = True) -> str:
    if fft_ok and fft_applies(geom, itemsize, budget, "auto" if method == "winograd" else method):
        return "fft"
    if kind in "fc":
        dtype = np.dtype(f"{kind}{itemsize}")
        # the optional routes, each saying where it applies (the thin layers' direct kernels before Winograd and the
        # implicit route, which would take them too)
        for choose in (jit.choose_direct, winograd.choose, s2d.choose, implicit.choose, jit.choose):
            name: str | None = choose(geom, dtype, method, op, exact=exact, finite=finite)
            if name is not None:
                return name
    if is_pointwise(geom):
        return "pointwise"
    if method in ("auto", "direct") and small.applies(geom):
        return "small"
    if taps.applies(geom):
        return "taps"
    if is_depthwise(geom) and depthwise.applies(geom):
        return "depthwise"
    return "grid" if grid_op(geom, op) and grid_applies(geom, itemsize, budget) else "gemm"


def grid_op(geom: Geometry, op: str) -> bool:
    """Whether a dense layer's contraction ``op`` may take the grid route: forward and input gradient, 2-d and up.

    The gemm route's weight gradient, and every contraction in 1-d (whose im2col rows are as long and
    contiguous as the grid's), measured as fast or faster (float32, 2 threads): 1-d k9 64→64 at L = 16000,
    71 / 76 / 71 ms against 76 / 79 / 87 (forward / input / weight); the weight gradients of 3×3×3 16→32
    and 3×3 d2 64→64, 13 and 10 ms against 14 and 12.
    """
    return geom.d >= 2 and op != "weight"  # (the grid's weight gradient stays in ROUTES, tested against gemm)


def route(geom: Geometry, dtype: np.dtype[Any], method: str = "auto", op: str = "forward", *,
          exact: bool = False, finite: bool = True) -> str:
    """The route for one contraction ``op`` (``"forward"``, ``"input"`` or ``"weight"``), remembered per geometry.

    ``exact``: the data are integers or bools (no FFT); ``finite``: no NaN or
    infinity in the operands (the FFT and Winograd need both).
    """
    return lookup(geom, dtype, method, op, exact=exact, finite=finite)


def lookup(geom: Geometry, dtype: np.dtype[Any], method: str = "auto", op: str = "forward", *,
           exact: bool = False, finite: bool = True) -> str:
    """What :func:`route` returns, for the engine's own questions about a layer's routes (the tests replace
    :func:`route` to record the routes that calls take; these questions are not calls)."""
    dtype = np.dtype(dtype)
    fft_ok = finite and not exact and dtype.kind in "fc"
    return _route(geom, dtype.itemsize, method, op, fft_ok, get_workspace_budget(), dtype.kind, exact, finite)


def run(op: str, a: Array, b: Array, geom: Geometry, method: str = "auto", *, exact: bool = False) -> Array:
    """Contraction ``op`` of ``a`` and ``b`` (batched, in the compute dtype) by the route :func:`route` picks.

    NumPy arrays take the tuned routes; arrays of any other library the
    generic route (:func:`convgrad.engine.generic.run`), in their own namespace.
    """
    if geom.dilates_input:  # the polyphase split: ordinary convolutions, no product on an inserted zero
        return _split_phases(op, a, b, geom, method, exact)
    if type(a) is not _NDARRAY:
        return run_generic(op, a, b, geom, method, exact=exact)
    with np.errstate(invalid="ignore"):  # NaN from inf·0 or inf − inf is the answer, as in PyTorch: no warning
        if op == "weight":
            dtype = np.result_type(a, b)
            name = route(geom, dtype, method, op, exact=exact)
            if name in FINITE_ONLY:
                # The weight gradient is small: check it instead of both operands (two passes over g and x saved).
                # These routes evaluate every product they form (no zero operand is skipped, by them or by the
                # BLAS) and every value they read reaches at least one entry of the result, so a NaN or an
                # infinity they read makes the result non-finite: a finite result read only finite data and is
                # the answer. Otherwise (non-finite data, or a sum that overflowed) the call is computed again;
                # the first pass's own overflow is not reported (the second pass reports its own).
                with np.errstate(over="ignore"):
                    result: Array = ROUTES[op][name](a, b, geom)
                if np.isfinite(result).all():
                    return result
                name = route(geom, dtype, method, op, exact=exact, finite=False)
        else:
            name = checked_route(op, a, b, geom, method, exact=exact)
        return ROUTES[op][name](a, b, geom)  # type: ignore[no-any-return]


def checked_route(op: str, a: Array, b: Array, geom: Geometry, method: str = "auto", *, exact: bool = False,
                  name: str | None = None) -> str:
    """The route :func:`run` takes for the forward pass or the input gradient of these NumPy operands: a route for
    finite data only (:data:`FINITE_ONLY`) where both are finite, else the route for any data. ``name``: the
    route :func:`route` gave for finite data, when the caller has it already."""
    dtype = np.result_type(a, b)
    if name is None:
        name = route(geom, dtype, method, op, exact=exact)
    if name in FINITE_ONLY and not (np.isfinite(a).all() and np.isfinite(b).all()):
        name = route(geom, dtype, method, op, exact=exact, finite=False)
    return name


def _split_phases(op: str, a: Array, b: Array, geom: Geometry, method: str, exact: bool) -> Array:
    if type(a) is _NDARRAY:
        xp: Any = np
    else:
        from .._namespace import array_api_compat

        xp = array_api_compat().array_namespace(a, b)
    result: Array = phases.split(op, a, b, geom, lambda o, a_, b_, g_: run(o, a_, b_, g_, method, exact=exact), xp)
    return result


def run_generic(op: str, a: Array, b: Array, geom: Geometry, method: str = "auto", *, exact: bool = False) -> Array:
    """Contraction ``op`` by the generic array-API route, whatever the arrays' library (tests force it on NumPy
    arrays by putting this function in place of :func:`run`)."""
    from . import generic

    return generic.run(op, a, b, geom, method, exact=exact)  # type: ignore[no-any-return]
