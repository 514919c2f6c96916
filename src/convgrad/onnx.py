"""ONNX's convolution operators on NumPy arrays: ``Conv``, ``ConvTranspose``, ``ConvInteger``, ``QLinearConv``.

The operators' semantics from opset 11 on (the ``onnx`` package is not
needed), their attribute names as keywords, and the gradients of the two
floating-point operators:

* ``pads`` is ``[x1_begin, x2_begin, …, x1_end, x2_end, …]``, each ``>= 0``;
  ``strides``, ``dilations`` one int per spatial axis (default 1);
  ``kernel_shape``, if given, must be ``W.shape[2:]``; ``group`` divides the
  channels. ``auto_pad`` and ``pads`` cannot both be given.
* ``auto_pad``: ``"VALID"`` pads nothing; ``"SAME_UPPER"`` / ``"SAME_LOWER"``
  give ``ceil(S / s)`` outputs (``Conv``) with total padding
  ``max((ceil(S / s) − 1)·s + δ(K − 1) + 1 − S, 0)``, the odd element at the
  end for SAME_UPPER and at the beginning for SAME_LOWER.
* ``ConvTranspose``: the output is ``s(S − 1) + output_padding + δ(K − 1) + 1
  − begin − end``. With ``output_shape``, or with SAME_UPPER / SAME_LOWER
  (target ``S·s``), the pads are derived from the wanted size ``out``:
  ``total = s(S − 1) + output_padding + δ(K − 1) + 1 − out``; SAME_UPPER puts
  ``⌊total / 2⌋`` at the beginning and the rest at the end, every other
  ``auto_pad`` the rest at the beginning (the operator's formula, with
  floor division; a negative total grows the output with zeros or bias).
  ``output_padding[i]`` must be ``< max(strides[i], dilations[i])``.
* ``ConvInteger``: ``int8``/``uint8`` data, zero points per tensor (``x``) and
  per tensor or per output channel (``w``); ``Σ (x − x_zp)(w − w_zp)`` exact,
  returned as int32 (wrapped as an int32 accumulator wraps).
* ``QLinearConv``: the same exact int32 accumulation plus the int32 bias,
  then ``y = saturate(round(acc · (x_scale · w_scale / y_scale)) + y_zp)``: the
  multiplier is formed in float32 (the scales' type; per output channel with
  a 1-D ``w_scale``), the product with the accumulator in float64, rounded
  half to even, and clamped to the range of ``y_zero_point``'s type — the
  arithmetic of ``onnx.reference``'s ``QLinearConv``.

Floating-point dtypes follow the core (NumPy promotion of ``X``, ``W`` and
``B``; float32 stays float32). Every check names the ONNX argument and shows
its value, before any work. The backward functions return
``Grads(input=dX, weight=dW, bias=dB)``, what ``torch.autograd.grad`` returns
for the same operator written in PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

from . import _conv, _transpose
from ._arguments import Shape, check_array, check_int
from ._arguments import _is_sequence as _is_list
from ._conv import Array, ArrayLike, Grads
from ._geometry import out_size, transposed_size

__all__ = ["conv", "conv_backward", "conv_integer", "conv_transpose", "conv_transpose_backward", "qlinear_conv"]


def __dir__() -> list[str]:
    return sorted(__all__)


Ints = Optional[Sequence[int]]
AutoPad = Union[str, bytes]
Pads = tuple[tuple[int, int], ...]

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
_QUANTIZED = (np.dtype(np.int8), np.dtype(np.uint8))


# ----------------------------------------------------------------------------- attributes


def _auto_pad(value: object, op: str) -> str:
    if isinstance(value, bytes):  # as onnx.helper.get_attribute_value returns strings
        value = value.decode("ascii", "replace")
    if not isinstance(value, str) or value not in AUTO_PADS:
        raise ValueError(f"{op}: auto_pad must be one of {AUTO_PADS}; got {value!r}")
    return value


def _ints(value: object, n: int, name: str, minimum: int, op: str, default: int) -> Shape:
    """An ONNX list attribute of ``n`` ints ``>= minimum`` (``None``: ``default`` everywhere)."""
    if value is None:
        return (default,) * n
    if not _is_list(value):
        raise TypeError(f"{op}: {name} must be a list of {n} ints; got {value!r}")
    items = list(value)  # type: ignore[call-overload]
    if len(items) != n:
        raise ValueError(f"{op}: {name} must have {n} entries; got {list(items)!r} with {len(items)}")
    return tuple(check_int(v, f"{name}[{i}]", minimum) for i, v in enumerate(items))


def _same_split(total: int, auto_pad: str) -> tuple[int, int]:
    """A total padding split as SAME_UPPER (the odd element at the end) or SAME_LOWER (at the beginning)."""
    small, large = total // 2, total - total // 2
    return (small, large) if auto_pad == "SAME_UPPER" else (large, small)


@dataclass(frozen=True)
class _Attrs:
    """One checked ``Conv`` or ``ConvTranspose`` in the core's terms."""

    op: str
    strides: Shape
    dilations: Shape
    group: int
    pads: Pads
    output_padding: Shape
    output_shape: Shape
    """The full output shape ``(N, M, *out)``."""

    def kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"stride": self.strides, "padding": self.pads, "dilation": self.dilations,
                              "groups": self.group}
        if self.op.startswith("conv_transpose"):
            kw["output_padding"] = self.output_padding
        return kw


def _shapes(X: Array, W: Array, op: str, x: str = "X", w: str = "W") -> int:
    if X.ndim < 3:
        raise ValueError(f"{op}: {x} must have at least 3 dimensions (N, C, D1, …); got shape {X.shape}")
    if W.ndim != X.ndim:
        raise ValueError(f"{op}: {w} must have as many dimensions as {x} ({X.ndim}); got {w}.shape {W.shape} and "
                         f"{x}.shape {X.shape}")
    for name, a in ((x, X), (w, W)):
        if any(s < 1 for s in a.shape[1:]) or (name == w and a.shape[0] < 1):
            raise ValueError(f"{op}: the channel and spatial sizes of {name} must all be >= 1; got shape {a.shape}")
    return X.ndim - 2


def _common(X: Array, W: Array, auto_pad: object, dilations: object, group: object, kernel_shape: object,
            pads: object, strides: object, op: str, x: str, w: str) -> tuple[int, str, Shape, Shape, int, Shape,
                                                                             Optional[Shape]]:
    d = _shapes(X, W, op, x, w)
    mode = _auto_pad(auto_pad, op)
    strides_t = _ints(strides, d, "strides", 1, op, 1)
    dilations_t = _ints(dilations, d, "dilations", 1, op, 1)
    g = check_int(group, "group", 1)
    kernel = tuple(W.shape[2:])
    if kernel_shape is not None and _ints(kernel_shape, d, "kernel_shape", 1, op, 1) != kernel:
        raise ValueError(f"{op}: kernel_shape {list(kernel_shape)!r} must equal {w}.shape[2:] {kernel}")  # type: ignore[call-overload]
    pads_t = None if pads is None else _ints(pads, 2 * d, "pads", 0, op, 0)
    if pads_t is not None and mode != "NOTSET":
        raise ValueError(f"{op}: pads cannot be used together with auto_pad={mode!r}; got pads={list(pads_t)}")
    return d, mode, strides_t, dilations_t, g, kernel, pads_t


def _check_bias(B: Optional[Array], m: int, op: str) -> None:
    if B is not None and B.shape != (m,):
        raise ValueError(f"{op}: B must have shape (M,) = ({m},), one per output channel; got shape {B.shape}")


def _conv_attrs(X: Array, W: Array, B: Optional[Array], auto_pad: object, dilations: object, group: object,
                kernel_shape: object, pads: object, strides: object, op: str, x: str = "X",
                w: str = "W") -> _Attrs:
    d, mode, strides_t, dilations_t, g, kernel, pads_t = _common(X, W, auto_pad, dilations, group, kernel_shape,
                                                                   pads, strides, op, x, w)
    n, c, sizes = X.shape[0], X.shape[1], X.shape[2:]
    m = W.shape[0]
    if c % g or m % g:
        raise ValueError(f"{op}: group={g} must divide the input channels ({x}.shape[1] = {c}) and the output "
                         f"channels ({w}.shape[0] = {m})")
    if W.shape[1] * g != c:
        raise ValueError(f"{op}: {w}.shape[1] ({W.shape[1]}) must equal the input channels / group ({x}.shape[1] = "
                         f"{c}, group = {g}: {c // g})")
    _check_bias(B, m, op)
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        pairs = []
        for s, k, st, dl in zip(sizes, kernel, strides_t, dilations_t):
            wanted = out_size(s, 1, st)  # ceil(S / s)
            pairs.append(_same_split(max(transposed_size(wanted, k, st, dl) - s, 0), mode))
        pad_pairs = tuple(pairs)
    elif pads_t is None:
        pad_pairs = ((0, 0),) * d
    else:
        pad_pairs = tuple(zip(pads_t[:d], pads_t[d:]))
    out = []
    for i, (s, k, st, dl, (lo, hi)) in enumerate(zip(sizes, kernel, strides_t, dilations_t, pad_pairs)):
        q = out_size(s, k, st, dl, lo, hi)
        if q < 1:
            raise ValueError(f"{op}: output size would be < 1 in spatial dimension {i}: {x}.shape[{i + 2}] = {s} "
                             f"padded by ({lo}, {hi}) is shorter than the dilated kernel (dilation {dl} * "
                             f"(kernel {k} - 1) + 1 = {dl * (k - 1) + 1})")
        out.append(q)
    return _Attrs(op, strides_t, dilations_t, g, pad_pairs, (0,) * d, (n, m, *out))


def _transpose_attrs(X: Array, W: Array, B: Optional[Array], auto_pad: object, dilations: object, group: object,
                     kernel_shape: object, output_padding: object, output_shape: object, pads: object,
                     strides: object, op: str) -> _Attrs:
    d, mode, strides_t, dilations_t, g, kernel, pads_t = _common(X, W, auto_pad, dilations, group, kernel_shape,
                                                                   pads, strides, op, "X", "W")
    n, c, sizes = X.shape[0], X.shape[1], X.shape[2:]
    if W.shape[0] != c:
        raise ValueError(f"{op}: W.shape[0] ({W.shape[0]}) must equal the input channels (X.shape[1] = {c}); "
                         f"ConvTranspose's W is (C, M / group, k1, …)")
    if c % g:
        raise ValueError(f"{op}: group={g} must divide the input channels (X.shape[1] = {c})")
    m = W.shape[1] * g
    _check_bias(B, m, op)
    adj = _ints(output_padding, d, "output_padding", 0, op, 0)
    for i, (a, st, dl) in enumerate(zip(adj, strides_t, dilations_t)):
        if a >= max(st, dl):
            raise ValueError(f"{op}: output_padding[{i}] must be < max(strides[{i}], dilations[{i}]) = "
                             f"{max(st, dl)}; got {a}")
    target: Optional[Shape] = None
    if output_shape is not None:
        if not _is_list(output_shape):
            raise TypeError(f"{op}: output_shape must be a list of {d} ints; got {output_shape!r}")
        items = list(output_shape)  # type: ignore[call-overload]
        given = tuple(check_int(v, f"output_shape[{i}]", 1) for i, v in enumerate(items))
        if len(given) == d + 2 and given[:2] == (n, m):
            given = given[2:]
        if len(given) != d:
            raise ValueError(f"{op}: output_shape must hold the {d} spatial sizes (or the full shape "
                             f"({n}, {m}, …)); got {list(given)}")
        target = given
    elif mode in ("SAME_UPPER", "SAME_LOWER"):
        target = tuple(s * st for s, st in zip(sizes, strides_t))
    if target is not None:
        pairs = []
        for s, k, st, dl, a, t in zip(sizes, kernel, strides_t, dilations_t, adj, target):
            total = transposed_size(s, k, st, dl, output_padding=a) - t
            pairs.append(_same_split(total, "SAME_UPPER" if mode == "SAME_UPPER" else "SAME_LOWER"))
        pad_pairs = tuple(pairs)
    elif pads_t is None:
        pad_pairs = ((0, 0),) * d
    else:
        pad_pairs = tuple(zip(pads_t[:d], pads_t[d:]))
    out = []
    for i, (s, k, st, dl, a, (lo, hi)) in enumerate(zip(sizes, kernel, strides_t, dilations_t, adj, pad_pairs)):
        size = transposed_size(s, k, st, dl, lo, hi, a)
        if size < 1:
            raise ValueError(f"{op}: output size would be {size} < 1 in spatial dimension {i}: strides {st} * "
                             f"(X.shape[{i + 2}] {s} - 1) + output_padding {a} + dilation {dl} * (kernel {k} - 1) "
                             f"+ 1 - pads {lo} - {hi}")
        out.append(size)
    return _Attrs(op, strides_t, dilations_t, g, pad_pairs, adj, (n, m, *out))


def _check_grad(dY: Array, attrs: _Attrs) -> None:
    if dY.shape != attrs.output_shape:
        raise ValueError(f"{attrs.op}: dY.shape {dY.shape} must equal the forward output shape {attrs.output_shape}")


# ----------------------------------------------------------------------------- Conv and ConvTranspose


def conv(
    X: ArrayLike,
    W: ArrayLike,
    B: Optional[ArrayLike] = None,
    *,
    auto_pad: AutoPad = "NOTSET",
    dilations: Ints = None,
    group: int = 1,
    kernel_shape: Ints = None,
    pads: Ints = None,
    strides: Ints = None,
) -> Array:
    """ONNX ``Conv``: ``Y[n, m] = B[m] + Σ_{c, k} pad(X)[n, γ(m)·C/G + c, q·s + k·δ] · W[m, c, k]``.

    Parameters
    ----------
    X : array_like, shape=(N, C, D1, …, Dd)
    W : array_like, shape=(M, C / group, k1, …, kd)
    B : array_like, shape=(M,), optional
    auto_pad : {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"}
    dilations, strides : list of d ints, optional
    group : int
    kernel_shape : list of d ints, optional
        Checked against ``W.shape[2:]``.
    pads : list of 2d ints >= 0, optional
        ``[x1_begin, x2_begin, …, x1_end, x2_end, …]``.

    Returns
    -------
    numpy.ndarray, shape=(N, M, *out)

    Examples
    --------
    ONNX's ``test_basic_conv_with_padding``: a 5×5 ramp under a 3×3 box, padded by one.

    >>> import numpy as np
    >>> from convgrad import onnx
    >>> X = np.arange(25.0).reshape(1, 1, 5, 5)
    >>> onnx.conv(X, np.ones((1, 1, 3, 3)), pads=[1, 1, 1, 1])[0, 0]
    array([[ 12.,  21.,  27.,  33.,  24.],
           [ 33.,  54.,  63.,  72.,  51.],
           [ 63.,  99., 108., 117.,  81.],
           [ 93., 144., 153., 162., 111.],
           [ 72., 111., 117., 123.,  84.]])
    >>> onnx.conv(X, np.ones((1, 1, 3, 3)), auto_pad="SAME_LOWER", strides=[2, 2])[0, 0]
    array([[ 12.,  27.,  24.],
           [ 63., 108.,  81.],
           [ 72., 117.,  84.]])
    """
    x, w = check_array(X, "X"), check_array(W, "W")
    b = None if B is None else check_array(B, "B")
    a = _conv_attrs(x, w, b, auto_pad, dilations, group, kernel_shape, pads, strides, "conv")
    return _conv.conv(x, w, b, **a.kwargs())


def conv_backward(
    dY: ArrayLike,
    X: ArrayLike,
    W: ArrayLike,
    *,
    auto_pad: AutoPad = "NOTSET",
    dilations: Ints = None,
    group: int = 1,
    kernel_shape: Ints = None,
    pads: Ints = None,
    strides: Ints = None,
) -> Grads:
    """The gradients of :func:`conv`: ``Grads(input=dX, weight=dW, bias=dB)``.

    Parameters
    ----------
    dY : array_like, shape=(N, M, *out)
        The gradient of the loss with respect to ``Y``.
    X, W, auto_pad, dilations, group, kernel_shape, pads, strides
        As for :func:`conv`.

    Returns
    -------
    Grads
        ``dX`` shaped like ``X``, ``dW`` like ``W``, ``dB`` ``(M,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import onnx
    >>> dX, dW, dB = onnx.conv_backward(np.ones((1, 1, 2)), np.array([[[1.0, 2.0, 3.0]]]), np.ones((1, 1, 2)))
    >>> dX, dW, dB
    (array([[[1., 2., 1.]]]), array([[[3., 5.]]]), array([2.]))
    """
    g, x, w = check_array(dY, "dY"), check_array(X, "X"), check_array(W, "W")
    a = _conv_attrs(x, w, None, auto_pad, dilations, group, kernel_shape, pads, strides, "conv_backward")
    _check_grad(g, a)
    return _conv.conv_backward(g, x, w, **a.kwargs())


def conv_transpose(
    X: ArrayLike,
    W: ArrayLike,
    B: Optional[ArrayLike] = None,
    *,
    auto_pad: AutoPad = "NOTSET",
    dilations: Ints = None,
    group: int = 1,
    kernel_shape: Ints = None,
    output_padding: Ints = None,
    output_shape: Ints = None,
    pads: Ints = None,
    strides: Ints = None,
) -> Array:
    """ONNX ``ConvTranspose``: each input element scatters the kernel into the output at ``q·s − begin + k·δ``.

    Parameters
    ----------
    X : array_like, shape=(N, C, D1, …, Dd)
    W : array_like, shape=(C, M / group, k1, …, kd)
    B : array_like, shape=(M,), optional
    auto_pad : {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"}
        SAME_*: the output is ``X``'s size times the strides, pads derived
        as for ``output_shape``.
    dilations, strides : list of d ints, optional
    group : int
    kernel_shape : list of d ints, optional
    output_padding : list of d ints, optional
        Added at the end; each ``< max(stride, dilation)``.
    output_shape : list of d ints, optional
        The wanted spatial output sizes (or the full ``(N, M, …)``); the pads
        are derived from it (see the module docstring) and ``pads`` ignored.
    pads : list of 2d ints >= 0, optional
        Removed from the output's beginning and end.

    Returns
    -------
    numpy.ndarray, shape=(N, M, *out)

    Examples
    --------
    ONNX's ``test_convtranspose_1d``: a 3-sample ramp under two 3-tap boxes.

    >>> import numpy as np
    >>> from convgrad import onnx
    >>> onnx.conv_transpose(np.array([[[0.0, 1.0, 2.0]]]), np.ones((1, 2, 3)))
    array([[[0., 1., 3., 3., 2.],
            [0., 1., 3., 3., 2.]]])
    >>> onnx.conv_transpose(np.array([[[0.0, 1.0, 2.0]]]), np.ones((1, 1, 3)), strides=[3], output_shape=[10])
    array([[[0., 0., 0., 1., 1., 1., 2., 2., 2., 0.]]])
    """
    x, w = check_array(X, "X"), check_array(W, "W")
    b = None if B is None else check_array(B, "B")
    a = _transpose_attrs(x, w, b, auto_pad, dilations, group, kernel_shape, output_padding, output_shape, pads,
                         strides, "conv_transpose")
    return _transpose.conv_transpose(x, w, b, **a.kwargs())


def conv_transpose_backward(
    dY: ArrayLike,
    X: ArrayLike,
    W: ArrayLike,
    *,
    auto_pad: AutoPad = "NOTSET",
    dilations: Ints = None,
    group: int = 1,
    kernel_shape: Ints = None,
    output_padding: Ints = None,
    output_shape: Ints = None,
    pads: Ints = None,
    strides: Ints = None,
) -> Grads:
    """The gradients of :func:`conv_transpose`: ``Grads(input=dX, weight=dW, bias=dB)``.

    Parameters
    ----------
    dY : array_like, shape=(N, M, *out)
    X, W, auto_pad, dilations, group, kernel_shape, output_padding, output_shape, pads, strides
        As for :func:`conv_transpose`.

    Returns
    -------
    Grads

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import onnx
    >>> dY = np.array([[[1.0, 0.0, 0.0, 0.0, 2.0]]])
    >>> onnx.conv_transpose_backward(dY, np.array([[[0.0, 1.0, 2.0]]]), np.array([[[1.0, 2.0, 3.0]]])).input
    array([[[1., 0., 6.]]])
    """
    g, x, w = check_array(dY, "dY"), check_array(X, "X"), check_array(W, "W")
    a = _transpose_attrs(x, w, None, auto_pad, dilations, group, kernel_shape, output_padding, output_shape, pads,
                         strides, "conv_transpose_backward")
    _check_grad(g, a)
    return _transpose.conv_transpose_backward(g, x, w, **a.kwargs())


# ----------------------------------------------------------------------------- the quantized operators


def _quantized(a: object, name: str, op: str) -> Array:
    arr = check_array(a, name)
    if arr.dtype not in _QUANTIZED:
        raise TypeError(f"{op}: {name} must be int8 or uint8; got dtype {arr.dtype}")
    return arr


def _zero_point(value: object, like: Array, like_name: str, name: str, op: str, m: Optional[int] = None) -> Array:
    """A zero point of ``like``'s type: per tensor, or (``m`` given) per output channel; as int32."""
    if type(value) is int:  # a plain Python int: checked against the type it stands for
        info = np.iinfo(like.dtype)
        if not info.min <= value <= info.max:
            raise ValueError(f"{op}: {name} must be within {like_name}'s type {like.dtype} [{info.min}, {info.max}]; "
                             f"got {value}")
        return np.asarray(value, dtype=np.int32)
    arr = check_array(value, name)
    if arr.dtype != like.dtype:
        raise TypeError(f"{op}: {name} must have {like_name}'s type {like.dtype}; got dtype {arr.dtype}")
    return _per(arr, name, op, m).astype(np.int32)


def _per(arr: Array, name: str, op: str, m: Optional[int]) -> Array:
    """A scalar (or one-element 1-D array) per tensor, or with ``m`` given a 1-D ``(m,)`` per output channel."""
    if arr.size == 1 and arr.ndim <= 1:
        return arr.reshape(())
    if m is not None and arr.shape == (m,):
        return arr
    where = "a scalar" if m is None else f"a scalar or a 1-D array of the {m} output channels"
    raise ValueError(f"{op}: {name} must be {where}; got shape {arr.shape}")


def _scale(value: object, name: str, op: str, m: Optional[int] = None) -> Array:
    arr = check_array(value, name)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{op}: {name} must be a real floating-point scale; got dtype {arr.dtype}")
    scale = _per(arr, name, op, m).astype(np.float32)
    if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise ValueError(f"{op}: {name} must be finite and > 0; got {arr.tolist()!r}")
    return scale


def _accumulate(x: Array, x_zp: Array, w: Array, w_zp: Array, attrs: _Attrs, bias: Optional[Array]) -> Array:
    """``Σ (x − x_zp)(w − w_zp) (+ B)`` exactly, as int64.

    The centred values are at most 255 in magnitude, so every partial sum of
    ``C / group · Π k`` products is an integer far below 2⁵³ for any array
    that fits in memory: the core's float64 arithmetic (integer data never
    takes its FFT route) is exact here.
    """
    xc = x.astype(np.int32) - x_zp
    wc = w.astype(np.int32) - (w_zp.reshape((-1,) + (1,) * (w.ndim - 1)) if w_zp.ndim else w_zp)
    y = _conv.conv(xc, wc, **attrs.kwargs())
    acc = np.rint(y).astype(np.int64)
    if bias is not None:
        acc += bias.astype(np.int64).reshape((-1,) + (1,) * (acc.ndim - 2))
    return acc


def _wrap_int32(a: Array) -> Array:
    """An int64 array as an int32 accumulator would hold it (two's complement wrap-around)."""
    return a.astype(np.int32)


def conv_integer(
    x: ArrayLike,
    w: ArrayLike,
    x_zero_point: Optional[ArrayLike] = None,
    w_zero_point: Optional[ArrayLike] = None,
    *,
    auto_pad: AutoPad = "NOTSET",
    dilations: Ints = None,
    group: int = 1,
    kernel_shape: Ints = None,
    pads: Ints = None,
    strides: Ints = None,
) -> Array:
    """ONNX ``ConvInteger``: ``y = Σ (x − x_zero_point)·(w − w_zero_point)``, exact, as int32.

    The padding is zeros of the centred input, i.e. padded entries contribute
    nothing (as ``x_zero_point`` would). The accumulation is exact; a sum
    beyond the int32 range wraps as an int32 accumulator does.

    Parameters
    ----------
    x : array_like of int8 or uint8, shape=(N, C, D1, …, Dd)
    w : array_like of int8 or uint8, shape=(M, C / group, k1, …, kd)
    x_zero_point : scalar of x's type, optional
        Default 0.
    w_zero_point : scalar or 1-D (M,) array of w's type, optional
        Per tensor, or per output channel. Default 0.
    auto_pad, dilations, group, kernel_shape, pads, strides
        As for :func:`conv`.

    Returns
    -------
    numpy.ndarray of int32, shape=(N, M, *out)

    Examples
    --------
    ONNX's ``test_convinteger_without_padding``:

    >>> import numpy as np
    >>> from convgrad import onnx
    >>> x = np.arange(2, 11, dtype=np.uint8).reshape(1, 1, 3, 3)
    >>> onnx.conv_integer(x, np.ones((1, 1, 2, 2), np.uint8), np.uint8(1))
    array([[[[12, 16],
             [24, 28]]]], dtype=int32)
    """
    op = "conv_integer"
    xq, wq = _quantized(x, "x", op), _quantized(w, "w", op)
    attrs = _conv_attrs(xq, wq, None, auto_pad, dilations, group, kernel_shape, pads, strides, op, "x", "w")
    x_zp = np.zeros((), np.int32) if x_zero_point is None else _zero_point(x_zero_point, xq, "x", "x_zero_point", op)
    w_zp = np.zeros((), np.int32) if w_zero_point is None else _zero_point(w_zero_point, wq, "w", "w_zero_point", op,
                                                                           wq.shape[0])
    return _wrap_int32(_accumulate(xq, x_zp, wq, w_zp, attrs, None))


def qlinear_conv(
    x: ArrayLike,
    x_scale: ArrayLike,
    x_zero_point: ArrayLike,
    w: ArrayLike,
    w_scale: ArrayLike,
    w_zero_point: ArrayLike,
    y_scale: ArrayLike,
    y_zero_point: ArrayLike,
    B: Optional[ArrayLike] = None,
    *,
    auto_pad: AutoPad = "NOTSET",
    dilations: Ints = None,
    group: int = 1,
    kernel_shape: Ints = None,
    pads: Ints = None,
    strides: Ints = None,
) -> Array:
    """ONNX ``QLinearConv``: the quantized convolution, requantized to ``y_zero_point``'s type.

    ``acc = Σ (x − x_zp)·(w − w_zp[m]) + B[m]`` in int32 (exact, wrapping),
    then ``y = clamp(round_half_even(acc · M[m]) + y_zp)`` with ``M[m] =
    x_scale · w_scale[m] / y_scale`` computed in float32 and the product in
    float64, clamped to the range of ``y_zero_point``'s type. The rounding is the
    specification's (of ``acc · M``, before the zero point is added, as in
    ``QuantizeLinear``); onnx 1.23's reference evaluator rounds after adding it,
    which differs by one at exact ties with an odd ``y_zero_point``.

    Parameters
    ----------
    x : array_like of int8 or uint8, shape=(N, C, D1, …, Dd)
    x_scale : float scalar
    x_zero_point : scalar of x's type
    w : array_like of int8 or uint8, shape=(M, C / group, k1, …, kd)
    w_scale : float scalar or 1-D (M,) array
        Per tensor, or per output channel.
    w_zero_point : scalar or 1-D (M,) array of w's type
    y_scale : float scalar
    y_zero_point : int8 or uint8 scalar
        Its type is the result's.
    B : array_like of int32, shape=(M,), optional
        Quantized with scale ``x_scale · w_scale`` and zero point 0.
    auto_pad, dilations, group, kernel_shape, pads, strides
        As for :func:`conv`.

    Returns
    -------
    numpy.ndarray of y_zero_point's type, shape=(N, M, *out)

    Examples
    --------
    Scales that make every product a tie: round half to even, then saturation.

    >>> import numpy as np
    >>> from convgrad import onnx
    >>> x = np.array([[[1, 3, 5, 7, 200]]], dtype=np.uint8)
    >>> onnx.qlinear_conv(x, 0.5, np.uint8(0), np.ones((1, 1, 1), np.int8), 1.0, np.int8(0), 1.0, np.int8(0))
    array([[[  0,   2,   2,   4, 100]]], dtype=int8)
    >>> onnx.qlinear_conv(x, 2.0, np.uint8(0), np.ones((1, 1, 1), np.int8), 1.0, np.int8(0), 1.0, np.int8(0))
    array([[[  2,   6,  10,  14, 127]]], dtype=int8)
    """
    op = "qlinear_conv"
    xq, wq = _quantized(x, "x", op), _quantized(w, "w", op)
    b = None
    if B is not None:
        b = check_array(B, "B")
        if b.dtype != np.int32:
            raise TypeError(f"{op}: B must be int32 (quantized with scale x_scale * w_scale, zero point 0); "
                            f"got dtype {b.dtype}")
    attrs = _conv_attrs(xq, wq, b, auto_pad, dilations, group, kernel_shape, pads, strides, op, "x", "w")
    m = wq.shape[0]
    x_zp = _zero_point(x_zero_point, xq, "x", "x_zero_point", op)
    w_zp = _zero_point(w_zero_point, wq, "w", "w_zero_point", op, m)
    yz = check_array(y_zero_point, "y_zero_point")
    if yz.dtype not in _QUANTIZED:
        raise TypeError(f"{op}: y_zero_point must be int8 or uint8 (its type is the output's); got dtype {yz.dtype}")
    y_zp = _per(yz, "y_zero_point", op, None)
    xs, ws, ys = _scale(x_scale, "x_scale", op), _scale(w_scale, "w_scale", op, m), _scale(y_scale, "y_scale", op)
    acc = _wrap_int32(_accumulate(xq, x_zp, wq, w_zp, attrs, b))
    multiplier = (xs * ws / ys).astype(np.float32)  # float32 arithmetic, per tensor or per output channel
    scaled = acc.astype(np.float64) * multiplier.astype(np.float64).reshape((-1,) + (1,) * (acc.ndim - 2))
    info = np.iinfo(yz.dtype)
    y: Array = np.clip(np.rint(scaled) + int(y_zp), info.min, info.max).astype(yz.dtype)
    return y
