"""The compiled routes (``pip install 'convgrad[jit]'``): Numba kernels where NumPy must make extra passes.

A depthwise convolution (``groups == C == O``) does about 2·K flops per
element it reads, so it is bound by memory traffic. The NumPy routes make one
pass over the data per kernel offset (a multiply, then an add into a strided
slice), or copy the windows into a matrix first; a compiled loop reads each
input row once per offset *from the cache* and writes each output row once.
The three kernels here run over whole rows of one ``(sample, channel)`` plane,
with zero padding (and cropping) done by clipping the row ranges, so the
padded input is never built:

* forward ``y[q] = Σ_k w[k] · x[q·s + k·δ − l]``;
* input gradient ``gx[q·s + k·δ − l] += w[k] · g[q]`` (scattered per plane,
  so two planes never write the same memory);
* weight gradient ``gw[c, k] = Σ_{n,q} g[n, c, q] · x[n, c, q·s + k·δ − l]``,
  one channel at a time, each row's dot product summed in float64.

Other padding modes and input dilation go through :func:`convgrad.engine.padding.pad`
and its adjoint first (the kernels then see no padding). Up to three spatial
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
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry, prod
from .padding import pad, pad_adjoint
from .state import split_run

Array = npt.NDArray[Any]

MAX_DIMS = 3
"""Spatial dimensions the kernels handle (fewer are padded to three with sizes of 1)."""

_lock = threading.Lock()
_compiled: dict[str, Callable[..., None]] = {}
COMPILE_SECONDS: dict[str, float] = {}
"""Seconds the first call of each kernel (per dtype) took in this process: compilation, or loading the cache."""


def available() -> bool:
    """Whether Numba can be imported (looked up, not imported; ``sys.modules['numba'] = None`` counts as absent).

    Examples
    --------
    >>> isinstance(available(), bool)
    True
    """
    if "numba" in sys.modules:
        return sys.modules["numba"] is not None
    try:
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):  # pragma: no cover - a broken installation counts as absent
        return False


def is_depthwise(geom: Geometry) -> bool:
    """``groups == C == O > 1`` (the same test as the dispatcher's)."""
    return geom.c_in == geom.c_out == geom.groups > 1


def choose(geom: Geometry, dtype: np.dtype[Any], method: str, op: str, *, exact: bool, finite: bool) -> str | None:
    """The compiled route for contraction ``op`` of this geometry, or ``None`` to take the NumPy rule.

    ``"jit_depthwise"`` for a depthwise convolution of float32 or float64 data
    in at most three spatial dimensions, for every ``method`` (the kernels are
    direct, so ``"direct"`` allows them; ``"fft"`` and ``"winograd"`` reach this
    only where their own routes do not apply), when Numba is installed.
    Finite data only: the kernels skip the taps that fall on zero padding, so a
    NaN or an infinity in the weight would not reach the outputs at the border
    as it does in PyTorch (``0·NaN``); such calls take the NumPy routes.

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
    if op not in ("forward", "input", "weight") or not is_depthwise(geom) or geom.d > MAX_DIMS or geom.n == 0:
        return None
    return "jit_depthwise" if available() else None


# ----------------------------------------------------------------------------- the kernels (plain Python)
# Compiled by _kernel() on first use. Arrays come flat; `geo` holds the stride, the dilation and the low padding l
# of each of the three dimensions (input position = q·s + k·δ − l), then the sizes: input (3), output (3),
# kernel (3) and the channel count. The innermost loops index with unsigned integers: Numba then omits the
# negative-index wrap-around test, which otherwise keeps LLVM from vectorising them (measured 12.7 -> 3.9 ms).
# Each kernel is self-contained (a compiled function cannot call a global that is still plain Python).


def _dw_forward(x: Array, wk: Array, y: Array, geo: Array, p0: int, p1: int) -> None:  # pragma: no cover - compiled
    s1, s2, s3, d1, d2, d3, l1, l2, l3 = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6], geo[7], geo[8]
    n1, n2, n3, q1, q2, q3, k1, k2, k3, c_count = (geo[9], geo[10], geo[11], geo[12], geo[13], geo[14], geo[15],
                                                  geo[16], geo[17], geo[18])
    us3 = np.uint64(s3)
    for p in range(p0, p1):
        c = p % c_count
        for a in range(q1):
            for b in range(q2):
                yrow = ((p * q1 + a) * q2 + b) * q3
                for j in range(q3):
                    y[yrow + j] = 0
                uy = np.uint64(yrow)
                for i1 in range(k1):
                    z = a * s1 + i1 * d1 - l1
                    if z < 0 or z >= n1:
                        continue
                    for i2 in range(k2):
                        v = b * s2 + i2 * d2 - l2
                        if v < 0 or v >= n2:
                            continue
                        xrow = ((p * n1 + z) * n2 + v) * n3
                        for i3 in range(k3):
                            off = i3 * d3 - l3
                            lo = max(0, -(off // s3))
                            hi = min(q3, (n3 - 1 - off) // s3 + 1)
                            if hi <= lo:
                                continue
                            wv = wk[(c * k1 + i1) * k2 * k3 + i2 * k3 + i3]
                            ux = np.uint64(xrow + lo * s3 + off)
                            uyl = uy + np.uint64(lo)
                            if s3 == 1:
                                for j in range(np.uint64(hi - lo)):
                                    y[uyl + j] += wv * x[ux + j]
                            else:
                                for j in range(np.uint64(hi - lo)):
                                    y[uyl + j] += wv * x[ux + j * us3]


def _dw_input(g: Array, wk: Array, gx: Array, geo: Array, p0: int, p1: int) -> None:  # pragma: no cover - compiled
    s1, s2, s3, d1, d2, d3, l1, l2, l3 = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6], geo[7], geo[8]
    n1, n2, n3, q1, q2, q3, k1, k2, k3, c_count = (geo[9], geo[10], geo[11], geo[12], geo[13], geo[14], geo[15],
                                                  geo[16], geo[17], geo[18])
    us3 = np.uint64(s3)
    plane = n1 * n2 * n3
    for p in range(p0, p1):
        c = p % c_count
        for i in range(p * plane, (p + 1) * plane):
            gx[i] = 0
        for a in range(q1):
            for i1 in range(k1):
                z = a * s1 + i1 * d1 - l1
                if z < 0 or z >= n1:
                    continue
                for b in range(q2):
                    ug = np.uint64(((p * q1 + a) * q2 + b) * q3)
                    for i2 in range(k2):
                        v = b * s2 + i2 * d2 - l2
                        if v < 0 or v >= n2:
                            continue
                        xrow = ((p * n1 + z) * n2 + v) * n3
                        for i3 in range(k3):
                            off = i3 * d3 - l3
                            lo = max(0, -(off // s3))
                            hi = min(q3, (n3 - 1 - off) // s3 + 1)
                            if hi <= lo:
                                continue
                            wv = wk[(c * k1 + i1) * k2 * k3 + i2 * k3 + i3]
                            ux = np.uint64(xrow + lo * s3 + off)
                            ugl = ug + np.uint64(lo)
                            if s3 == 1:
                                for j in range(np.uint64(hi - lo)):
                                    gx[ux + j] += wv * g[ugl + j]
                            else:
                                for j in range(np.uint64(hi - lo)):
                                    gx[ux + j * us3] += wv * g[ugl + j]


def _dw_weight(g: Array, x: Array, gw: Array, geo: Array, c0: int, c1: int) -> None:  # pragma: no cover - compiled
    s1, s2, s3, d1, d2, d3, l1, l2, l3 = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6], geo[7], geo[8]
    n1, n2, n3, q1, q2, q3, k1, k2, k3, c_count = (geo[9], geo[10], geo[11], geo[12], geo[13], geo[14], geo[15],
                                                  geo[16], geo[17], geo[18])
    batch = g.size // (c_count * q1 * q2 * q3)
    us3 = np.uint64(s3)
    kk = k1 * k2 * k3
    acc = np.zeros(kk, dtype=np.float64)
    for c in range(c0, c1):
        acc[:] = 0.0
        for n in range(batch):
            p = n * c_count + c
            for a in range(q1):
                for i1 in range(k1):
                    z = a * s1 + i1 * d1 - l1
                    if z < 0 or z >= n1:
                        continue
                    for b in range(q2):
                        grow = ((p * q1 + a) * q2 + b) * q3
                        for i2 in range(k2):
                            v = b * s2 + i2 * d2 - l2
                            if v < 0 or v >= n2:
                                continue
                            xrow = ((p * n1 + z) * n2 + v) * n3
                            for i3 in range(k3):
                                off = i3 * d3 - l3
                                lo = max(0, -(off // s3))
                                hi = min(q3, (n3 - 1 - off) // s3 + 1)
                                if hi <= lo:
                                    continue
                                ux = np.uint64(xrow + lo * s3 + off)
                                ugl = np.uint64(grow + lo)
                                part = g[0] * 0
                                if s3 == 1:
                                    for j in range(np.uint64(hi - lo)):
                                        part += g[ugl + j] * x[ux + j]
                                else:
                                    for j in range(np.uint64(hi - lo)):
                                        part += g[ugl + j] * x[ux + j * us3]
                                acc[(i1 * k2 + i2) * k3 + i3] += part
        for i in range(kk):
            gw[c * kk + i] = acc[i]


_SOURCES: dict[str, Callable[..., None]] = {"forward": _dw_forward, "input": _dw_input, "weight": _dw_weight}


def _kernel(name: str) -> Callable[..., None]:
    """The compiled kernel ``name``, compiled (or loaded from the cache) on first use; imports Numba."""
    kernel = _compiled.get(name)
    if kernel is None:
        with _lock:
            kernel = _compiled.get(name)
            if kernel is None:
                import numba  # type: ignore[import-untyped, unused-ignore]

                # fastmath "reassoc" lets the row dot products vectorise; no flag assumes finite values
                kernel = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})(_SOURCES[name])
                _compiled[name] = kernel
    return kernel


def _run(name: str, args: tuple[Any, ...], total: int, elements: int) -> None:
    """Run kernel ``name`` over ``[0, total)`` split on the thread pool; time its first call per dtype."""
    kernel = _kernel(name)
    key = f"{name}[{args[0].dtype}]"
    if key not in COMPILE_SECONDS:
        import time

        t0 = time.perf_counter()
        kernel(*args, 0, min(1, total))  # compiles (or loads from the cache) on one plane or channel
        COMPILE_SECONDS[key] = time.perf_counter() - t0

    def work(a: int, b: int) -> None:
        kernel(*args, a, b)

    split_run(total, elements, work)


def _geo(geom: Geometry, padded: bool, in_size: tuple[int, ...]) -> Array:
    """The kernels' geometry vector (see the kernels' comment), padded to three dimensions (``l = 0`` if padded)."""
    extra = (1,) * (MAX_DIMS - geom.d)
    lo = (0,) * geom.d if padded else geom.pad_lo
    return np.array(
        extra + geom.stride + extra + geom.dilation + (0,) * len(extra) + lo
        + extra + in_size + extra + geom.out_size + extra + geom.kernel + (geom.c_in,),
        dtype=np.int64,
    )


def _direct_padding(geom: Geometry) -> bool:
    """Zero padding (or cropping) without input dilation: the kernels clip their rows instead of padding."""
    return geom.padding_mode == "zeros" and all(a == 1 for a in geom.input_dilation)


def _flat(a: Array, dtype: np.dtype[Any]) -> Array:
    """``a`` as a contiguous 1-d array of ``dtype`` (a view where it already is one)."""
    return np.ascontiguousarray(a, dtype=dtype).reshape(-1)


def depthwise_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``y[n, c, q] = Σ_k w[c, 0, k] · pad(x)[n, c, q·s + k·δ]`` by the compiled row kernel."""
    dtype = np.result_type(x, w)
    direct = _direct_padding(geom)
    src = x if direct else pad(x, geom)
    y = np.empty((x.shape[0], geom.c_out) + geom.out_size, dtype=dtype)
    geo = _geo(geom, not direct, tuple(src.shape[2:]))
    _run("forward", (_flat(src, dtype), _flat(w, dtype), y.reshape(-1), geo), x.shape[0] * geom.c_in,
         y.size * prod(geom.kernel))
    return y


def depthwise_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``gx = pad_adjoint(Σ_k scatter_k(w[c, 0, k] · g))`` by the compiled row kernel (no padded copy for zeros)."""
    dtype = np.result_type(g, w)
    direct = _direct_padding(geom)
    size = geom.in_size if direct else geom.padded_size
    out = np.empty((g.shape[0], geom.c_in) + size, dtype=dtype)
    _run("input", (_flat(g, dtype), _flat(w, dtype), out.reshape(-1), _geo(geom, not direct, size)),
         g.shape[0] * geom.c_in, g.size * prod(geom.kernel))
    return out if direct else np.ascontiguousarray(pad_adjoint(out, geom))


def depthwise_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``gw[c, 0, k] = Σ_{n,q} g[n, c, q] · pad(x)[n, c, q·s + k·δ]``, one channel per kernel call, float64 sums."""
    dtype = np.result_type(g, x)
    direct = _direct_padding(geom)
    src = x if direct else pad(x, geom)
    gw = np.empty(geom.weight_shape, dtype=dtype)
    _run("weight", (_flat(g, dtype), _flat(src, dtype), gw.reshape(-1), _geo(geom, not direct, tuple(src.shape[2:]))),
         geom.c_in, g.size * prod(geom.kernel))
    return gw


ROUTES: dict[str, dict[str, Callable[[Array, Array, Geometry], Array]]] = {
    "forward": {"jit_depthwise": depthwise_forward},
    "input": {"jit_depthwise": depthwise_input_grad},
    "weight": {"jit_depthwise": depthwise_weight_grad},
}
"""This module's routes, per contraction, with the signature of :data:`convgrad.engine.dispatch.ROUTES`' entries."""
