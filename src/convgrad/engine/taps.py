"""The taps route: a 1-d layer with a short kernel as one GEMM per kernel tap, on shifted views, no im2col.

At stride 1 in one dimension, tap ``k`` of output ``q`` reads padded position
``q + k·δ``, so for each sample ``n``

* forward: ``y[n] = Σ_k w[:, :, k] @ xp[n, :, k·δ : k·δ + Q]``;
* input gradient: ``gxp[n, :, k·δ : k·δ + Q] += w[:, :, k]ᵀ @ g[n]``, then the padding's adjoint;
* weight gradient: ``gw[:, :, k] = Σ_n g[n] @ xp[n, :, k·δ : k·δ + Q]ᵀ``;

each view a plain strided matrix the BLAS reads in place, and each tap after
the first added into the result by the BLAS itself (``β = 1`` through
:mod:`convgrad.engine.blas`; a product and an add where that binding is not
found). The im2col route writes ``K`` copies of the input and reads them
back; with ``K ≤`` :data:`MAX_TAPS` that round trip costs more than the
sums here. Measured (float32, 2 threads; forward / input / weight, ms): 32→32
``k = 2`` at ``L = 16384`` (the WaveNet layers) 0.64 / 0.65 / 1.1 against the
gemm route's 1.2 / 1.2 / 1.2 (with a product and an add per tap: 0.81 / 1.03
/ 1.1); 64→64 ``k = 3`` at ``L = 4096``, 8 samples, forward / input 6.2 / 5.8
(a product and an add per tap: 7.6 / 8.4; the gemm route's forward 9.2); with
``k = 9`` no faster than im2col.

Examples
--------
>>> import numpy as np
>>> from convgrad._geometry import conv_geometry
>>> from convgrad.engine.gemm import gemm_forward
>>> rng = np.random.default_rng(0)
>>> x, w = rng.standard_normal((2, 3, 400)), rng.standard_normal((4, 3, 2))
>>> geom = conv_geometry(x.shape, w.shape, dilation=5, padding=1)
>>> applies(geom)
True
>>> bool(np.allclose(taps_forward(x, w, geom), gemm_forward(x, w, geom)))
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry
from . import blas
from .padding import pad, pad_adjoint

Array = npt.NDArray[Any]

MAX_TAPS = 3
"""Longest kernel the taps route takes (``k = 9`` measured no faster than im2col)."""

MIN_POSITIONS = 256
"""Fewest output positions per sample: each tap is one GEMM per sample, whose inner or outer size this is."""


def applies(geom: Geometry) -> bool:
    """1-d, stride 1, ``groups == 1``, 2 to :data:`MAX_TAPS` taps, at least :data:`MIN_POSITIONS` outputs per sample."""
    return (geom.d == 1 and geom.stride == (1,) and geom.groups == 1 and 1 < geom.kernel[0] <= MAX_TAPS
            and geom.out_size[0] >= MIN_POSITIONS and not geom.dilates_input)


def sums_in_blas(geom: Geometry, dtype: np.dtype[Any]) -> bool:
    """Whether the taps are summed by the BLAS: the binding found for ``dtype`` and every size it is given below
    its 32-bit integer limit (:data:`convgrad.engine.blas.INDEX_LIMIT`)."""
    sizes = (geom.c_in, geom.c_out, geom.padded_size[0], geom.out_size[0])
    return blas.available(dtype) and max(sizes) < blas.INDEX_LIMIT


def _views(a: Array, n: int, geom: Geometry) -> list[Array]:
    """Sample ``n``'s ``K`` shifted ``(channels, Q)`` views of the padded ``a``."""
    q, dl = geom.out_size[0], geom.dilation[0]
    return [a[n, :, k * dl : k * dl + q] for k in range(geom.kernel[0])]


def taps_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``y[n] = Σ_k w[:, :, k] @ xp[n, :, k·δ : k·δ + Q]`` (each tap added into ``y`` by the BLAS where it can be
    called directly, :mod:`convgrad.engine.blas`)."""
    xp = pad(x, geom)
    dtype = np.result_type(x, w)
    y = np.empty((x.shape[0], geom.c_out) + geom.out_size, dtype=dtype)
    wk = [np.ascontiguousarray(w[:, :, k], dtype=dtype) for k in range(geom.kernel[0])]
    if sums_in_blas(geom, dtype):
        xp = np.ascontiguousarray(xp, dtype=dtype)
        lp, q, dl = xp.shape[-1], geom.out_size[0], geom.dilation[0]
        for n in range(x.shape[0]):
            for k, wt in enumerate(wk):
                blas.gemm(wt, xp, lp, y, 1.0 if k else 0.0, b_start=(n * geom.c_in * lp) + k * dl, n=q,
                          c_start=n * geom.c_out * q)
        return y
    part = np.empty((geom.c_out,) + geom.out_size, dtype=dtype)
    for n in range(x.shape[0]):
        views = _views(xp, n, geom)
        np.matmul(wk[0], views[0], out=y[n])
        for wt, view in zip(wk[1:], views[1:]):
            y[n] += np.matmul(wt, view, out=part)
    return y


def taps_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``gxp[n, :, k·δ : k·δ + Q] += w[:, :, k]ᵀ @ g[n]``, then ``pad_adjoint`` (each tap added into ``gxp`` by the
    BLAS where it can be called directly)."""
    dtype = np.result_type(g, w)
    wk = [np.ascontiguousarray(w[:, :, k].T, dtype=dtype) for k in range(geom.kernel[0])]
    q, dl = geom.out_size[0], geom.dilation[0]
    if sums_in_blas(geom, dtype):
        gxp = np.empty((g.shape[0], geom.c_in) + geom.padded_size, dtype=dtype)
        gxp[:, :, q:] = 0  # tap 0 (shift 0) overwrites the first Q positions of each row, the others add
        g = np.ascontiguousarray(g, dtype=dtype)
        lp = gxp.shape[-1]
        for n in range(g.shape[0]):
            for k, wt in enumerate(wk):
                blas.gemm(wt, g, q, gxp, 1.0 if k else 0.0, b_start=n * geom.c_out * q, n=q,
                          c_start=(n * geom.c_in * lp) + k * dl, ldc=lp)
    else:
        gxp = np.zeros((g.shape[0], geom.c_in) + geom.padded_size, dtype=dtype)
        part = np.empty((geom.c_in,) + geom.out_size, dtype=dtype)
        for n in range(g.shape[0]):
            for wt, view in zip(wk, _views(gxp, n, geom)):
                view += np.matmul(wt, g[n], out=part)
    return np.ascontiguousarray(pad_adjoint(gxp, geom))


def taps_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``gw[:, :, k] = Σ_n g[n] @ xp[n, :, k·δ : k·δ + Q]ᵀ``."""
    xp = pad(x, geom)
    dtype = np.result_type(g, x)
    gw = np.zeros((geom.kernel[0], geom.c_out, geom.c_in), dtype=dtype)
    part = np.empty((geom.c_out, geom.c_in), dtype=dtype)
    for n in range(x.shape[0]):
        for k, view in enumerate(_views(xp, n, geom)):
            gw[k] += np.matmul(g[n], view.T, out=part)
    return np.ascontiguousarray(np.moveaxis(gw, 0, 2))
