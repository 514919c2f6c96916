"""The pointwise route: every kernel size 1 and no padding, so each output is a plain matrix product of channels.

No windows at all: ``y[n, o, q] = Σ_c w[o, c] · x[n, c, q·s]`` reads a strided
slice of ``x`` (stride > 1) or ``x`` itself, one GEMM per sample (samples of at
least :data:`ONE_GEMM_POSITIONS` positions) or one over a channel-major copy of all
samples. The weight gradient at stride 1 (float32 and float64, at least
:data:`ACCUMULATE_POSITIONS` positions per sample and :data:`ACCUMULATE_CHANNELS`
channel pairs per group, where the BLAS can be called
directly, :mod:`convgrad.engine.blas`) is one GEMM per sample and
group on the operands in place, each added into the result by the BLAS itself
(``β = 1``); otherwise one GEMM per sample on the operands in place (at least
:data:`PER_SAMPLE_POSITIONS` positions), else one GEMM per group over a
channel-major copy of a chunk, ``(O/G, nb·Q) @ (nb·Q, C/G)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._geometry import Geometry, prod
from . import blas
from .gemm import WIDE_OUTPUT, WeightSum, channel_rows
from .state import batch_chunks
from .windows import window_starts

Array = npt.NDArray[Any]


def _strided_input(x: Array, geom: Geometry) -> Array:
    """``x[n, γ, c, q] = x[n, γ·C/G + c, q·s]`` as a contiguous ``(nb, G, C/G, Q)`` array."""
    xs = np.ascontiguousarray(x[(slice(None), slice(None)) + window_starts(geom)])
    return xs.reshape(x.shape[0], geom.groups, geom.c_in // geom.groups, prod(geom.out_size))


def _grouped(a: Array, geom: Geometry, channels: int) -> Array:
    """``(nb, channels, *Q)`` -> ``(nb, G, channels / G, Q)``."""
    return a.reshape(a.shape[0], geom.groups, channels // geom.groups, prod(geom.out_size))


def _samples(rows: Array, geom: Geometry, nb: int, channels: int) -> Array:
    """The inverse of :func:`~convgrad.engine.gemm.channel_rows`: ``(G, channels / G, nb·Q)`` ->
    ``(nb, channels, *Q)``, contiguous."""
    grouped = rows.reshape(geom.groups, channels // geom.groups, nb, prod(geom.out_size)).transpose(2, 0, 1, 3)
    return np.ascontiguousarray(grouped).reshape((nb, channels) + geom.out_size)


ONE_GEMM_POSITIONS = 128
"""Below this many output positions per sample, the forward pass and the input gradient copy their operand
channel-major, ``(G, channels/G, N·Q)``, and make one GEMM per group instead of one per sample (whose outer size
would be ``Q``). Measured on 2 threads, float32, 8 samples: 512→2048 at 7² (``Q`` = 49), forward 5.1 → 3.5 ms;
512→512 at 14² (``Q`` = 196), 3.35 ms per sample against 3.66 ms with the copies."""


def _one_gemm(geom: Geometry, nb: int) -> bool:
    return nb > 0 and prod(geom.out_size) < ONE_GEMM_POSITIONS


def pointwise_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """1×1 kernel, no padding: ``y[n, o, q] = Σ_c w[o, c] · x[n, c, q·s]``."""
    w_g = w.reshape(geom.groups, geom.c_out // geom.groups, geom.c_in // geom.groups)
    if _one_gemm(geom, x.shape[0]):
        xs = x[(slice(None), slice(None)) + window_starts(geom)]
        return _samples(np.matmul(w_g, channel_rows(xs, geom.groups)), geom, x.shape[0], geom.c_out)
    # (G, O/G, C/G) @ (nb, G, C/G, Q) -> (nb, G, O/G, Q)
    y: Array = np.matmul(w_g, _strided_input(x, geom))
    return y.reshape((x.shape[0], geom.c_out) + geom.out_size)


PER_SAMPLE_POSITIONS = 1024
"""From this many output positions per sample, the weight gradient is one GEMM per sample on the operands in place.

Below it, the per-sample products are short (``Q`` is their inner dimension) and the chunk is copied
channel-major into one long GEMM instead. Measured on 2 threads, float32, 8 samples: 64→256 and 256→64 at
56² (``Q`` = 3136) took 8.7 ms with the copies and 4.3 ms in place; at ``Q`` ≤ 784 the two were within 5 %.
"""


FUSE_RATIO = 2.0
"""``O / C`` from which the bias joins the GEMM at stride 1 (see :func:`bias_fuses`)."""


def bias_fuses(geom: Geometry, dtype: np.dtype[Any]) -> bool:
    """Whether :func:`pointwise_forward_bias` saves time over the product and a separate ``y += b``.

    It copies ``x`` once, with a row of ones; the separate add is one more pass over ``y``. So it pays where
    ``x`` is copied anyway (stride > 1) or is at most half of ``y`` (``O ≥ 2·C``). Measured on 2 threads,
    float32, 8 samples: 64→256 at 56², 5.5 → 4.2 ms; 64→128 at 56², 3.3 → 2.7 ms; 256→64 at 56², 4.6 → 6.7 ms
    (which it therefore leaves alone); 128→512 at 28², 5.0 → 4.2 ms; 512→512 at 14² and 256→256 at 28², no gain.
    Samples shorter than :data:`ONE_GEMM_POSITIONS` keep the separate add (512→2048 at 7²: 3.8 against 4.1 ms),
    and so do complex data (a product by 1 + 0j would turn a bias of inf + 0j into inf + NaN·j).
    """
    if geom.groups != 1 or np.dtype(dtype).kind != "f" or prod(geom.out_size) < ONE_GEMM_POSITIONS:
        return False  # short samples take one channel-major GEMM, after which the separate add measured faster
    return any(s != 1 for s in geom.stride) or geom.c_out >= FUSE_RATIO * geom.c_in


def pointwise_forward_bias(x: Array, w: Array, b: Array, geom: Geometry) -> Array:
    """``y[n, o, q] = b[o] + Σ_c w[o, c] · x[n, c, q·s]`` as one GEMM: ``[w | b] @ [x; 1]`` (``groups == 1``).

    The (strided) input is copied into ``(N, C + 1, Q)`` with a last row of ones, so the bias is the
    GEMM's last term instead of a pass over ``y``.
    """
    n, c, q = x.shape[0], geom.c_in, prod(geom.out_size)
    dtype = np.result_type(x, w, b)
    wa = np.empty((geom.c_out, c + 1), dtype=dtype)
    wa[:, :c] = w.reshape(geom.c_out, c)
    wa[:, c] = b
    xa = np.empty((n, c + 1) + geom.out_size, dtype=dtype)
    xa[:, :c] = x[(slice(None), slice(None)) + window_starts(geom)]
    xa[:, c] = 1
    with np.errstate(invalid="ignore"):  # NaN from inf·0 or inf − inf is the answer, as on every route
        y: Array = np.matmul(wa, xa.reshape(n, c + 1, q))
    return y.reshape((n, geom.c_out) + geom.out_size)


def pointwise_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """1×1 kernel, no padding: ``gw[o, c] = Σ_{n,q} g[n, o, q] · x[n, c, q·s]``.

    Long samples (:data:`PER_SAMPLE_POSITIONS`) take one GEMM per sample, reading ``g`` and ``x`` in
    place (a strided ``x`` is subsampled one sample at a time). Short ones are copied channel-major,
    ``(G, channels/G, nb·Q)``, in chunks of samples within the workspace budget, so the sum over samples
    and positions is one GEMM's inner dimension.
    """
    dtype = np.result_type(g, x)
    if _accumulates(g, x, geom, dtype):
        return _weight_grad_in_place(g, x, geom, dtype)
    gw = WeightSum(geom, dtype)
    if prod(geom.out_size) >= PER_SAMPLE_POSITIONS and geom.c_in > geom.groups:  # (depthwise: G products each)
        for n in range(x.shape[0]):
            gw.add(_grouped(g[n : n + 1], geom, geom.c_out)[0], _strided_input(x[n : n + 1], geom)[0])
        return gw.result()
    per_sample = (geom.c_in + geom.c_out) * prod(geom.out_size) * dtype.itemsize
    for n0, n1 in batch_chunks(x.shape[0], per_sample):
        xs = x[(slice(n0, n1), slice(None)) + window_starts(geom)]
        gw.add(channel_rows(g[n0:n1], geom.groups), channel_rows(xs, geom.groups))
    return gw.result()


ACCUMULATE_POSITIONS = 256
"""Fewest positions per sample for :func:`_weight_grad_in_place`. Each per-sample GEMM reads and writes the
whole ``(O, C)`` result, so short samples pay that traffic (and a call) per few flops: float32, 2 threads, copies
→ in place, 2048→128 at 1², N=256: 2.3 → 12.6 ms; 256→256 at 2², N=64: 0.5 → 1.5;
512→512 at 4², N=32: 1.9 → 4.8; 128→128 at 8², N=64: 1.6 → 2.4; equal at 10²–14² (N=32, 256 channels); from
16² on faster: 256→256 at 16², N=32, 7.8 → 6.4; at 20² 11.7 → 9.5; 256→64 at 28², N=8, 2.4 → 1.4 ms."""

ACCUMULATE_CHANNELS = 2048
"""Fewest ``(O/G)·(C/G)`` for :func:`_weight_grad_in_place`: thin products are mostly call overhead per sample
(float32, 2 threads, copies → in place: 16→16 at 16², N=512, 4.7 → 7.8 ms; 32→32 at 16², N=256, 5.0 → 5.6;
32→32 at 32², N=64, 3.6 → 3.8; but 64→64 at 16², N=256, 15.0 → 11.3)."""


def _accumulates(g: Array, x: Array, geom: Geometry, dtype: np.dtype[Any]) -> bool:
    """Whether :func:`_weight_grad_in_place` applies: stride 1 and as many outputs as inputs (``x[n]`` is the
    ``(C, Q)`` matrix; a transposed layer's ``output_padding`` can leave inputs over), not depthwise, some
    samples of at least :data:`ACCUMULATE_POSITIONS` positions, products of at least
    :data:`ACCUMULATE_CHANNELS` channel pairs, both operands contiguous in the compute dtype,
    sizes the BLAS's integers hold, and the BLAS reachable for it."""
    return (all(s == 1 for s in geom.stride) and geom.out_size == geom.in_size and geom.c_in > geom.groups
            and x.shape[0] > 0 and prod(geom.out_size) >= ACCUMULATE_POSITIONS
            and (geom.c_out // geom.groups) * (geom.c_in // geom.groups) >= ACCUMULATE_CHANNELS
            and g.dtype == x.dtype == dtype and g.flags.c_contiguous and x.flags.c_contiguous
            and max(prod(geom.out_size), geom.c_in, geom.c_out) < blas.INDEX_LIMIT and blas.available(dtype))


def _weight_grad_in_place(g: Array, x: Array, geom: Geometry, dtype: np.dtype[Any]) -> Array:
    """``gw = Σ_n g[n] @ x[n]ᵀ`` per group, each product added into ``gw`` by the BLAS (``β = 1``), reading ``g``
    and ``x`` where they lie: no channel-major copies and no temporary per sample.

    Oriented as :class:`~convgrad.engine.gemm.WeightSum` is (``(O, C)`` from :data:`WIDE_OUTPUT` output channels
    per group, else ``(C, O)`` and transposed once). Measured on 2 threads, float32, 8 samples, against the
    channel-major copies (below 1024 positions per sample) or ``matmul`` and an add per sample: 256→64 at 28²
    1.9 → 1.1 ms, 128→512 at 28² 4.9 → 3.5 ms, 256→256 at 28² 4.5 → 3.6 ms, 512→2048 at 7² 3.5 → 3.1 ms,
    64→128 at 56² 3.0 → 3.0 ms.
    """
    grp, og, cg = geom.groups, geom.c_out // geom.groups, geom.c_in // geom.groups
    q = prod(geom.out_size)
    wide = og >= WIDE_OUTPUT
    out = np.empty((grp, og, cg) if wide else (grp, cg, og), dtype=dtype)
    gs, xs = g.reshape(g.shape[0], geom.c_out * q), x.reshape(x.shape[0], geom.c_in * q)
    for n in range(x.shape[0]):
        beta = 0.0 if n == 0 else 1.0
        for gi in range(grp):
            if wide:  # out[gi] (O/G × C/G) += g[n, group] (O/G × Q) @ x[n, group]ᵀ
                a = gs[n, gi * og * q : (gi + 1) * og * q].reshape(og, q)
                blas.gemm(a, xs, q, out, beta, b_start=n * geom.c_in * q + gi * cg * q, n=cg, c_start=gi * og * cg,
                          trans_b=True)
            else:  # out[gi] (C/G × O/G) += x[n, group] (C/G × Q) @ g[n, group]ᵀ
                a = xs[n, gi * cg * q : (gi + 1) * cg * q].reshape(cg, q)
                blas.gemm(a, gs, q, out, beta, b_start=n * geom.c_out * q + gi * og * q, n=og, c_start=gi * cg * og,
                          trans_b=True)
    gw = out if wide else np.ascontiguousarray(out.swapaxes(1, 2))
    return gw.reshape(geom.weight_shape)


def pointwise_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """1×1 kernel, no padding: ``gx[n, c, q·s] = Σ_o w[o, c] · g[n, o, q]``, zero between strides."""
    n = g.shape[0]
    w_t = w.reshape(geom.groups, geom.c_out // geom.groups, geom.c_in // geom.groups).swapaxes(1, 2)
    gxs: Array
    if _one_gemm(geom, n):
        gxs = _samples(np.matmul(w_t, channel_rows(g, geom.groups)), geom, n, geom.c_in)
    else:  # (G, C/G, O/G) @ (nb, G, O/G, Q) -> (nb, G, C/G, Q)
        gxs = np.matmul(w_t, _grouped(g, geom, geom.c_out)).reshape((n, geom.c_in) + geom.out_size)
    if geom.out_size == geom.in_size:
        return gxs
    gx = np.zeros((n, geom.c_in) + geom.in_size, dtype=gxs.dtype)
    gx[(slice(None), slice(None)) + window_starts(geom)] = gxs
    return gx
