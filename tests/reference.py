"""A slow, obviously correct loop reference: the oracle for any number of spatial dims.

Every output element, kernel tap and padded position is visited by explicit
Python loops; padding is resolved element by element from its definition.
Nothing here is shared with convgrad's implementation.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np


def padded_source(p: int, lo: int, size: int, mode: str) -> int | None:
    """Which input position padded position ``p`` reads (None for a zero)."""
    i = p - lo
    if 0 <= i < size:
        return i
    if mode == "zeros":
        return None
    if mode == "replicate":
        return 0 if i < 0 else size - 1
    if mode == "circular":
        return i % size
    if mode == "reflect":
        while not 0 <= i < size:  # one reflection suffices for pad < size; loop for clarity
            i = -i if i < 0 else 2 * (size - 1) - i
        return i
    raise ValueError(mode)


def _geometry(x_spatial: tuple[int, ...], k: tuple[int, ...], stride: Any, lo: Any, hi: Any, dilation: Any) -> Any:
    q = tuple((s + a + b - dl * (kk - 1) - 1) // st + 1 for s, kk, st, a, b, dl in zip(x_spatial, k, stride, lo, hi, dilation))
    return q


def _taps(n: int, c: int, q: tuple[int, ...], kk: tuple[int, ...], stride: Any, dilation: Any, lo: Any, size: Any, mode: str) -> tuple[int, ...] | None:
    """The input index (n, c, *i) that window q, tap kk reads, or None for a zero."""
    idx = []
    for qi, ki, st, dl, l_, s_ in zip(q, kk, stride, dilation, lo, size):
        src = padded_source(qi * st + ki * dl, l_, s_, mode)
        if src is None:
            return None
        idx.append(src)
    return (n, c, *idx)


def ref_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *, stride: Any, lo: Any, hi: Any, dilation: Any, groups: int, mode: str = "zeros") -> np.ndarray:
    """``y[n, o, q] = b[o] + Σ_{c, k} xpad[n, γ(o)·C/G + c, q·s + k·δ] · w[o, c, k]``."""
    n_ = x.shape[0]
    o_, cg = w.shape[:2]
    k = w.shape[2:]
    size = x.shape[2:]
    q_shape = _geometry(size, k, stride, lo, hi, dilation)
    og = o_ // groups
    y = np.zeros((n_, o_, *q_shape), dtype=np.result_type(x, w, np.float64))
    for n, o in itertools.product(range(n_), range(o_)):
        gamma = o // og
        for q in itertools.product(*(range(v) for v in q_shape)):
            acc = 0.0 if b is None else b[o]
            for c in range(cg):
                for kk in itertools.product(*(range(v) for v in k)):
                    src = _taps(n, gamma * cg + c, q, kk, stride, dilation, lo, size, mode)
                    if src is not None:
                        acc += x[src] * w[(o, c, *kk)]
            y[(n, o, *q)] = acc
    return y


def ref_conv_grads(g: np.ndarray, x: np.ndarray, w: np.ndarray, *, stride: Any, lo: Any, hi: Any, dilation: Any, groups: int, mode: str = "zeros") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three gradients by the chain rule, one product term at a time (real data)."""
    n_ = x.shape[0]
    o_, cg = w.shape[:2]
    k = w.shape[2:]
    size = x.shape[2:]
    q_shape = g.shape[2:]
    og = o_ // groups
    gx = np.zeros(x.shape)
    gw = np.zeros(w.shape)
    for n, o in itertools.product(range(n_), range(o_)):
        gamma = o // og
        for q in itertools.product(*(range(v) for v in q_shape)):
            go = g[(n, o, *q)]
            for c in range(cg):
                for kk in itertools.product(*(range(v) for v in k)):
                    src = _taps(n, gamma * cg + c, q, kk, stride, dilation, lo, size, mode)
                    if src is not None:
                        gx[src] += go * w[(o, c, *kk)]
                        gw[(o, c, *kk)] += go * x[src]
    gb = g.sum(axis=(0, *range(2, g.ndim)))
    return gx, gw, gb
