"""A slow, obviously correct convolution and its gradients, written to be read.

Every function here is a few nested loops over the definition — every
sample, channel, output position and kernel tap, one multiply-add at a time —
with nothing vectorised, cached or clever. It is what the fast core
(:func:`convgrad.conv` and friends) is tested against, and what to read when
a formula in the README looks too compact. It is slow: keep the arrays small.

The one idea everything rests on is the *tap*: output position ``q`` of a
convolution with stride ``s``, dilation ``δ`` and padding ``l`` (before)
reads, through kernel offset ``k``, the padded input at ``q·s + k·δ``, which
is input entry ``q·s + k·δ − l`` — or, outside the input, a zero (or a copy of
an input entry, for the other padding modes). So:

* forward: ``y[n, o, q] = b[o] + Σ_{c, k} x[n, γ·C/G + c, tap(q, k)] · w[o, c, k]``;
* input gradient: each of those products sends ``g[n, o, q] · w[o, c, k]`` back
  to the input entry it read;
* weight gradient: each sends ``g[n, o, q] · x[n, γ·C/G + c, tap(q, k)]`` to the
  weight it used;
* bias gradient: ``g`` summed over everything but the channel.

``γ = o // (O/G)`` is the group of output channel ``o``; it reads input
channels ``γ·C/G … (γ + 1)·C/G − 1``. Arguments are checked by the core's own
checks (the same errors as :func:`convgrad.conv`); everything after is
computed here. For complex data the gradients follow PyTorch's convention
(the other operand conjugated). Results are float64 (complex128 for complex
data).

Examples
--------
The 1-D example of the notebooks, ``x = [10, …, 14]``, ``w = [1, 2, −1]``:

>>> import numpy as np
>>> from convgrad import reference
>>> x = np.arange(10.0, 15.0).reshape(1, 1, 5)
>>> w = np.array([[[1.0, 2.0, -1.0]]])
>>> reference.conv(x, w, padding=1)
array([[[ 9., 20., 22., 24., 41.]]])
>>> reference.conv_backward(np.ones((1, 1, 5)), x, w, padding=1).input
array([[[3., 2., 2., 2., 1.]]])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from ._conv import Grads
from ._geometry import conv_geometry, transpose_geometry

Array = npt.NDArray[Any]

__all__ = [
    "conv",
    "conv_backward",
    "conv_bias_grad",
    "conv_input_grad",
    "conv_transpose",
    "conv_transpose_backward",
    "conv_weight_grad",
]


# ----------------------------------------------------------------------------- the geometry, from the arguments


def _per_dim(value: Any, d: int) -> tuple[int, ...]:
    """An int or one int per spatial dimension (or a 1-tuple) -> one int per dimension."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * d
    values = tuple(int(v) for v in value)
    return values * d if len(values) == 1 else values


def _padding(padding: Any, kernel: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[tuple[int, ...],
                                                                                         tuple[int, ...]]:
    """Padding before (``lo``) and after (``hi``) each spatial dimension, for every way of writing it."""
    d = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * d, (0,) * d
        # "same": dilation·(K − 1) in total, the odd one after (PyTorch's rule)
        totals = [dl * (k - 1) for k, dl in zip(kernel, dilation)]
        return tuple(t // 2 for t in totals), tuple(t - t // 2 for t in totals)
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * d, (int(padding),) * d
    items = list(padding)
    if len(items) == 1:
        items = items * d
    lo = tuple(int(p) if isinstance(p, (int, np.integer)) else int(p[0]) for p in items)
    hi = tuple(int(p) if isinstance(p, (int, np.integer)) else int(p[1]) for p in items)
    return lo, hi


@dataclass(frozen=True)
class _Setup:
    """Everything the loops need, per spatial dimension where it is a tuple.

    ``size`` is the input's spatial size and ``out`` the output's, for the
    convolution itself (for a transposed convolution: its own input and output).
    """

    batched: bool
    n: int
    c_in: int
    c_out: int
    groups: int
    size: tuple[int, ...]
    kernel: tuple[int, ...]
    out: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    mode: str


def _conv_setup(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Any, padding: Any, dilation: Any,
                groups: int, padding_mode: str) -> _Setup:
    conv_geometry(x_shape, w_shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                  padding_mode=padding_mode)  # the core's checks: the same errors as convgrad.conv
    d = len(w_shape) - 2
    batched = len(x_shape) == d + 2
    n, c_in = (x_shape[0], x_shape[1]) if batched else (1, x_shape[0])
    size, kernel = tuple(x_shape[-d:]), tuple(w_shape[2:])
    stride_t, dilation_t = _per_dim(stride, d), _per_dim(dilation, d)
    lo, hi = _padding(padding, kernel, dilation_t)
    # Q = floor((S + l + h − δ(K − 1) − 1) / s) + 1
    out = tuple((s + a + b - dl * (k - 1) - 1) // st + 1
                for s, k, st, dl, a, b in zip(size, kernel, stride_t, dilation_t, lo, hi))
    return _Setup(batched, n, c_in, w_shape[0], groups, size, kernel, out, stride_t, dilation_t, lo, hi, padding_mode)


def _transpose_setup(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Any, padding: Any,
                     output_padding: Any, dilation: Any, groups: int) -> _Setup:
    transpose_geometry(x_shape, w_shape, stride=stride, padding=padding, output_padding=output_padding,
                       dilation=dilation, groups=groups)  # the core's checks
    d = len(w_shape) - 2
    batched = len(x_shape) == d + 2
    n, c_in = (x_shape[0], x_shape[1]) if batched else (1, x_shape[0])
    size, kernel = tuple(x_shape[-d:]), tuple(w_shape[2:])
    stride_t, dilation_t = _per_dim(stride, d), _per_dim(dilation, d)
    lo, hi = _padding(padding, kernel, dilation_t)
    extra = _per_dim(output_padding, d)
    # out = (S − 1)·s − l − h + δ(K − 1) + output_padding + 1
    out = tuple((s - 1) * st - a - b + dl * (k - 1) + e + 1
                for s, k, st, dl, a, b, e in zip(size, kernel, stride_t, dilation_t, lo, hi, extra))
    return _Setup(batched, n, c_in, w_shape[1] * groups, groups, size, kernel, out, stride_t, dilation_t, lo, hi,
                  "zeros")


# ----------------------------------------------------------------------------- the taps


def _source(position: int, lo: int, size: int, mode: str) -> Optional[int]:
    """The input index that padded position ``position`` holds, or ``None`` for a padding zero."""
    i = position - lo
    if 0 <= i < size:
        return i
    if mode == "zeros":
        return None
    if mode == "replicate":  # the edge entry, repeated
        return 0 if i < 0 else size - 1
    if mode == "circular":  # wrap around
        return i % size
    # reflect: mirrored about the first and last entries, which are not repeated (padding < size)
    return -i if i < 0 else 2 * (size - 1) - i


def _tap(q: tuple[int, ...], k: tuple[int, ...], s: _Setup) -> Optional[tuple[int, ...]]:
    """The input position that output position ``q`` reads through kernel offset ``k`` (``None``: a zero)."""
    index = []
    for qi, ki, st, dl, lo, size in zip(q, k, s.stride, s.dilation, s.lo, s.size):
        i = _source(qi * st + ki * dl, lo, size, s.mode)
        if i is None:
            return None
        index.append(i)
    return tuple(index)


_Product = tuple[int, int, int, int, tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def _products(s: _Setup) -> Iterator[_Product]:
    """Every product ``x[n, channel, position] · w[o, c, k]`` of the forward sum, padding zeros left out.

    Yields ``(n, o, c, channel, q, k, position)``: ``c`` counts the input
    channels within the group, ``channel = γ·C/G + c`` is the input channel itself.
    """
    out_per_group, in_per_group = s.c_out // s.groups, s.c_in // s.groups
    for n in range(s.n):
        for o in range(s.c_out):
            group = o // out_per_group
            for q in np.ndindex(*s.out):
                for c in range(in_per_group):
                    for k in np.ndindex(*s.kernel):
                        position = _tap(q, k, s)
                        if position is not None:
                            yield n, o, c, group * in_per_group + c, q, k, position


def _work_dtype(*arrays: Array) -> np.dtype[Any]:
    return np.dtype(np.complex128 if any(a.dtype.kind == "c" for a in arrays) else np.float64)


def _with_batch(a: Array, batched: bool) -> Array:
    return a if batched else a[np.newaxis]


def _check_grad_output(g: Array, s: _Setup, expected_spatial: tuple[int, ...], channels: int) -> Array:
    expected = ((s.n, channels) if s.batched else (channels,)) + expected_spatial
    if g.shape != expected:
        raise ValueError(f"grad_output.shape {g.shape} must equal the forward output shape {expected}")
    return _with_batch(g, s.batched)


# ----------------------------------------------------------------------------- convolution


def conv(
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    b: Optional[npt.ArrayLike] = None,
    /,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Array:
    """The convolution (cross-correlation) by its definition, one multiply-add at a time.

    ``y[n, o, q] = b[o] + Σ_{c, k} x[n, γ(o)·C/G + c, q·s + k·δ − l] · w[o, c, k]``
    with out-of-range input positions read from the padding.

    Parameters
    ----------
    x : array_like, shape=(N, C, *S) or (C, *S)
    w : array_like, shape=(O, C / groups, *K)
    b : array_like, shape=(O,), optional
    stride, padding, dilation, groups, padding_mode
        As for :func:`convgrad.conv`.

    Returns
    -------
    numpy.ndarray, shape=(N, O, *Q) or (O, *Q)
        float64 (complex128 for complex data).

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import reference
    >>> x = 10 * np.arange(25.0).reshape(1, 1, 5, 5)
    >>> reference.conv(x, np.arange(9.0).reshape(1, 1, 3, 3))[0, 0]
    array([[3120., 3480., 3840.],
           [4920., 5280., 5640.],
           [6720., 7080., 7440.]])
    """
    xa, wa = np.asarray(x), np.asarray(w)
    ba = None if b is None else np.asarray(b)
    s = _conv_setup(xa.shape, wa.shape, stride, padding, dilation, groups, padding_mode)
    xb = _with_batch(xa, s.batched)
    y = np.zeros((s.n, s.c_out) + s.out, dtype=_work_dtype(xa, wa, *([] if ba is None else [ba])))
    if ba is not None:
        for o in range(s.c_out):
            y[:, o] = ba[o]  # the bias, once per output element
    for n, o, c, channel, q, k, position in _products(s):
        y[(n, o) + q] += xb[(n, channel) + position] * wa[(o, c) + k]
    return y if s.batched else y[0]


def conv_input_grad(
    grad_output: npt.ArrayLike,
    w: npt.ArrayLike,
    /,
    *,
    input_shape: Sequence[int],
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Array:
    """The input gradient: each product ``x[…]·w[o, c, k]`` of the forward sum sends ``g[n, o, q]·w[o, c, k]`` back.

    A padded position that copies an input entry (``reflect``, ``replicate``,
    ``circular``) sends its share to that entry; a padding zero sends nothing.

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *Q) or (O, *Q)
    w : array_like, shape=(O, C / groups, *K)
    input_shape : tuple of int
        ``x.shape``.
    stride, padding, dilation, groups, padding_mode
        As for :func:`conv`.

    Returns
    -------
    numpy.ndarray, shape=input_shape

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import reference
    >>> w = np.array([[[1.0, 2.0, -1.0]]])
    >>> reference.conv_input_grad(np.ones((1, 1, 3)), w, input_shape=(1, 1, 5))
    array([[[ 1.,  3.,  2.,  1., -1.]]])
    """
    ga, wa = np.asarray(grad_output), np.asarray(w)
    shape = tuple(int(v) for v in input_shape)
    s = _conv_setup(shape, wa.shape, stride, padding, dilation, groups, padding_mode)
    gb = _check_grad_output(ga, s, s.out, s.c_out)
    gx = np.zeros((s.n, s.c_in) + s.size, dtype=_work_dtype(ga, wa))
    for n, o, c, channel, q, k, position in _products(s):
        gx[(n, channel) + position] += gb[(n, o) + q] * np.conj(wa[(o, c) + k])
    return gx if s.batched else gx[0]


def conv_weight_grad(
    grad_output: npt.ArrayLike,
    x: npt.ArrayLike,
    /,
    *,
    weight_shape: Sequence[int],
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Array:
    """The weight gradient: each product of the forward sum sends ``g[n, o, q]·x[…]`` to the weight ``w[o, c, k]``.

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *Q) or (O, *Q)
    x : array_like, shape=(N, C, *S) or (C, *S)
    weight_shape : tuple of int
        ``w.shape``.
    stride, padding, dilation, groups, padding_mode
        As for :func:`conv`.

    Returns
    -------
    numpy.ndarray, shape=weight_shape

    Examples
    --------
    The 6×5 image under a 3×3 kernel with loss ``y.sum()``:

    >>> import numpy as np
    >>> from convgrad import reference
    >>> x = np.array([[1, 1, 1, 2, 3], [1, 1, 1, 2, 3], [1, 1, 1, 2, 3],
    ...               [2, 2, 2, 2, 3], [3, 3, 3, 3, 3], [4, 4, 4, 4, 4]]).reshape(1, 1, 6, 5)
    >>> reference.conv_weight_grad(np.ones((1, 1, 4, 3)), x, weight_shape=(1, 1, 3, 3))[0, 0]
    array([[15., 18., 25.],
           [21., 23., 28.],
           [30., 31., 34.]])
    """
    ga, xa = np.asarray(grad_output), np.asarray(x)
    shape = tuple(int(v) for v in weight_shape)
    s = _conv_setup(xa.shape, shape, stride, padding, dilation, groups, padding_mode)
    gb, xb = _check_grad_output(ga, s, s.out, s.c_out), _with_batch(xa, s.batched)
    gw = np.zeros(shape, dtype=_work_dtype(ga, xa))
    for n, o, c, channel, q, k, position in _products(s):
        gw[(o, c) + k] += gb[(n, o) + q] * np.conj(xb[(n, channel) + position])
    return gw


def conv_bias_grad(grad_output: npt.ArrayLike, /, *, unbatched: bool = False) -> Array:
    """The bias gradient: ``gb[o] = Σ_{n, q} g[n, o, q]``, one addition per output element.

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *Q), or (O, *Q) with ``unbatched=True``
    unbatched : bool

    Returns
    -------
    numpy.ndarray, shape=(O,)

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import reference
    >>> reference.conv_bias_grad(np.ones((2, 3, 2, 2)))
    array([8., 8., 8.])
    """
    g = np.asarray(grad_output)
    gb4 = g[np.newaxis] if unbatched else g
    gb = np.zeros(gb4.shape[1], dtype=_work_dtype(g))
    for index in np.ndindex(*gb4.shape):
        gb[index[1]] += gb4[index]
    return gb


def conv_backward(
    grad_output: npt.ArrayLike,
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    /,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Grads:
    """All three gradients of :func:`conv`: ``Grads(input, weight, bias)``.

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *Q) or (O, *Q)
    x : array_like, shape=(N, C, *S) or (C, *S)
    w : array_like, shape=(O, C / groups, *K)
    stride, padding, dilation, groups, padding_mode
        As for :func:`conv`.

    Returns
    -------
    convgrad.Grads

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import reference
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> grads = reference.conv_backward(np.ones((1, 1, 2, 2)), x, np.ones((1, 1, 2, 2)))
    >>> grads.weight[0, 0], grads.bias
    (array([[ 8., 12.],
           [20., 24.]]), array([4.]))
    """
    xa, wa = np.asarray(x), np.asarray(w)
    kw: dict[str, Any] = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                              padding_mode=padding_mode)
    return Grads(
        conv_input_grad(grad_output, wa, input_shape=xa.shape, **kw),
        conv_weight_grad(grad_output, xa, weight_shape=wa.shape, **kw),
        conv_bias_grad(grad_output, unbatched=xa.ndim == wa.ndim - 1),
    )


# ----------------------------------------------------------------------------- transposed convolution


def _scatters(s: _Setup) -> Iterator[_Product]:
    """Every product ``x[n, c, q] · w[c, o, k]`` of a transposed convolution that lands inside the output.

    Yields ``(n, c, o, channel, q, k, position)``: input entry ``x[n, c, q]``
    adds ``x[n, c, q]·w[c, o, k]`` to output channel ``channel = γ·O/G + o``
    at ``position = q·s + k·δ − l``.
    """
    in_per_group, out_per_group = s.c_in // s.groups, s.c_out // s.groups
    for n in range(s.n):
        for c in range(s.c_in):
            group = c // in_per_group
            for q in np.ndindex(*s.size):
                for o in range(out_per_group):
                    for k in np.ndindex(*s.kernel):
                        position = tuple(qi * st + ki * dl - lo
                                         for qi, ki, st, dl, lo in zip(q, k, s.stride, s.dilation, s.lo))
                        if all(0 <= p < size for p, size in zip(position, s.out)):
                            yield n, c, o, group * out_per_group + o, q, k, position


def conv_transpose(
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    b: Optional[npt.ArrayLike] = None,
    /,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Array:
    """The transposed convolution by its definition: every input entry scatters a scaled copy of the kernel.

    ``y[n, γ·O/G + o, q·s + k·δ − l] += x[n, c, q] · w[c, o, k]`` for input
    channel ``c`` of group ``γ``; positions outside the output are dropped.

    Parameters
    ----------
    x : array_like, shape=(N, C, *S) or (C, *S)
    w : array_like, shape=(C, O / groups, *K)
    b : array_like, shape=(O,), optional
    stride, padding, output_padding, dilation, groups
        As for :func:`convgrad.conv_transpose`.

    Returns
    -------
    numpy.ndarray, shape=(N, O, *out) or (O, *out)
        ``out = (S − 1)·s − l − h + δ·(K − 1) + output_padding + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import reference
    >>> reference.conv_transpose(np.ones((1, 1, 2)), np.array([[[1.0, 2.0]]]), stride=2)
    array([[[1., 2., 1., 2.]]])
    """
    xa, wa = np.asarray(x), np.asarray(w)
    ba = None if b is None else np.asarray(b)
    s = _transpose_setup(xa.shape, wa.shape, stride, padding, output_padding, dilation, groups)
    xb = _with_batch(xa, s.batched)
    y = np.zeros((s.n, s.c_out) + s.out, dtype=_work_dtype(xa, wa, *([] if ba is None else [ba])))
    if ba is not None:
        for o in range(s.c_out):
            y[:, o] = ba[o]
    for n, c, o, channel, q, k, position in _scatters(s):
        y[(n, channel) + position] += xb[(n, c) + q] * wa[(c, o) + k]
    return y if s.batched else y[0]


def conv_transpose_backward(
    grad_output: npt.ArrayLike,
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    /,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Grads:
    """All three gradients of :func:`conv_transpose`, one product of its sum at a time.

    Each product ``x[n, c, q]·w[c, o, k]`` that landed on output position
    ``p`` sends ``g[n, o, p]·w[c, o, k]`` back to ``x[n, c, q]`` and
    ``x[n, c, q]·g[n, o, p]`` to ``w[c, o, k]``.

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *out) or (O, *out)
    x : array_like, shape=(N, C, *S) or (C, *S)
    w : array_like, shape=(C, O / groups, *K)
    stride, padding, output_padding, dilation, groups
        As for :func:`conv_transpose`.

    Returns
    -------
    convgrad.Grads

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import reference
    >>> g = reference.conv_transpose_backward(np.array([[[1.0, 0.0, 0.0, 1.0]]]), np.ones((1, 1, 2)),
    ...                                       np.array([[[1.0, 2.0]]]), stride=2)
    >>> g.input, g.weight
    (array([[[1., 2.]]]), array([[[1., 1.]]]))
    """
    ga, xa, wa = np.asarray(grad_output), np.asarray(x), np.asarray(w)
    s = _transpose_setup(xa.shape, wa.shape, stride, padding, output_padding, dilation, groups)
    gb, xb = _check_grad_output(ga, s, s.out, s.c_out), _with_batch(xa, s.batched)
    gx = np.zeros((s.n, s.c_in) + s.size, dtype=_work_dtype(ga, wa))
    gw = np.zeros(wa.shape, dtype=_work_dtype(ga, xa))
    for n, c, o, channel, q, k, position in _scatters(s):
        gx[(n, c) + q] += gb[(n, channel) + position] * np.conj(wa[(c, o) + k])
        gw[(c, o) + k] += np.conj(xb[(n, c) + q]) * gb[(n, channel) + position]
    return Grads(gx if s.batched else gx[0], gw, conv_bias_grad(ga, unbatched=not s.batched))
