"""TensorFlow's ``tf.nn`` convolutions on NumPy arrays, with explicit gradients.

The names, argument orders and semantics of ``tf.nn`` (and of the
``tf.raw_ops`` gradient ops), so that a TensorFlow call can be copied:
channels-last data (``NWC`` / ``NHWC`` / ``NDHWC``, channels-first accepted),
filters ``[*K, in_channels, out_channels]``, ``strides`` / ``dilations`` as an
int or a list of length 1, ``d`` or ``d + 2``, and ``padding`` ``"SAME"``,
``"VALID"`` or an explicit list of ``[before, after]`` pairs. TensorFlow is not
needed. Every function is a layout change around one call of the core
(:func:`convgrad.conv`, :func:`convgrad.conv_input_grad` or
:func:`convgrad.conv_weight_grad`): there is no second convolution here.

========================================  ===========================================
TensorFlow                                convgrad.tensorflow
========================================  ===========================================
``tf.nn.conv{1,2,3}d``, ``convolution``   same names; ``*_backward`` for both grads
``tf.nn.conv{1,2,3}d_transpose``,         same names; the input gradient of the
``conv_transpose``                        forward convolution of ``output_shape``
``tf.nn.depthwise_conv2d``                same name; a grouped convolution
``Conv2DBackpropInput`` / ``Filter``      ``conv{1,2,3}d_backprop_input`` / ``_filter``
``tape.gradient(y, [x, f], g)``           ``conv2d_backward(g, x, f, ...)`` etc.
========================================  ===========================================

Padding. ``"VALID"`` pads nothing. ``"SAME"`` pads each spatial dimension of
size ``S`` (filter ``k``, stride ``s``, dilation ``δ``) by
``max((ceil(S / s) − 1)·s + (k − 1)·δ + 1 − S, 0)`` in total, the smaller half
before and the odd one after, so that the output has ``ceil(S / s)`` elements
(TensorFlow's "Notes on padding", ``tf.nn``; ``GetWindowedOutputSizeVerbose`` in
``tensorflow/core/framework/kernel_shape_util.cc``). An explicit list has
``d + 2`` pairs in the data format's order, with zero pairs for the batch and
channel dimensions. A transposed convolution and the ``backprop_input`` ops are
the input gradient of the forward convolution of ``output_shape`` /
``input_sizes``; their padding is that forward convolution's, and the forward
output size must equal the given input size.

Differences from TensorFlow, all in the direction of accepting more: groups
are inferred everywhere (input channels a multiple of the filter's input
depth), explicit padding is accepted by every op, stride > 1 may be combined
with dilation > 1 (``tf.nn.convolution`` and ``depthwise_conv2d`` refuse the
combination), ``output_shape`` / ``input_sizes`` may hold the spatial sizes
only, and the dtype rule is the core's (NumPy promotion, integers to
float64) rather than "the same type as ``input``". ``name`` is accepted and
ignored. A ``"VALID"`` output of size 0, which TensorFlow returns as an empty
tensor, is an error here. Results are new C-contiguous arrays in TensorFlow's
layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Union

import numpy as np

from ._arguments import check_array, check_int, normalize_shape
from ._arguments import is_int as _is_int
from ._conv import Array, ArrayLike, conv, conv_input_grad, conv_weight_grad

__all__ = [
    "TFGrads",
    "conv1d",
    "conv1d_backprop_filter",
    "conv1d_backprop_input",
    "conv1d_backward",
    "conv1d_transpose",
    "conv1d_transpose_backward",
    "conv2d",
    "conv2d_backprop_filter",
    "conv2d_backprop_input",
    "conv2d_backward",
    "conv2d_transpose",
    "conv2d_transpose_backward",
    "conv3d",
    "conv3d_backprop_filter",
    "conv3d_backprop_input",
    "conv3d_backward",
    "conv3d_transpose",
    "conv3d_transpose_backward",
    "conv_transpose",
    "conv_transpose_backward",
    "convolution",
    "convolution_backward",
    "depthwise_conv2d",
    "depthwise_conv2d_backprop_filter",
    "depthwise_conv2d_backprop_input",
    "depthwise_conv2d_backward",
]

IntList = Union[int, Sequence[int], None]
TFPadding = Union[str, Sequence[Sequence[int]]]
ShapeLike = Union[Sequence[int], ArrayLike]
Pads = tuple[tuple[int, int], ...]

_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


class TFGrads(NamedTuple):
    """What ``tape.gradient(y, [input, filters], output_gradients=g)`` returns.

    Attributes
    ----------
    input : numpy.ndarray
        Gradient with respect to the op's input, in its layout.
    filters : numpy.ndarray
        Gradient with respect to the filters, in their layout.
    """

    input: Array
    filters: Array


# ----------------------------------------------------------------------------- arguments


def _channels_first(data_format: object, d: int, op: str) -> bool:
    """``data_format`` -> whether channels come right after the batch."""
    if data_format is None:
        return False
    if d in _FORMATS:
        last, first = _FORMATS[d]
        if data_format == last:
            return False
        if data_format == first:
            return True
        raise ValueError(
            f"{op}: data_format must be {last!r} (channels last, the default) or {first!r} (channels first) "
            f"for {d} spatial dimension(s); got {data_format!r}"
        )
    raise ValueError(f"{op}: data_format must be None (channels last) for {d} spatial dimensions; got {data_format!r}")


def _spatial(value: object, d: int, channels_first: bool, name: str, op: str) -> tuple[int, ...]:
    """TensorFlow's stride/dilation forms (int, length 1, d or d + 2) -> one int per spatial dimension."""
    if value is None:
        return (1,) * d
    if _is_int(value):
        items = [value]
    elif isinstance(value, (str, bytes)) or not isinstance(value, Sequence | np.ndarray):
        raise TypeError(f"{op}: {name} must be an int or a list of ints; got {value!r}")
    else:
        items = list(value)
    ints = [check_int(v, f"{name}[{i}]", 1) for i, v in enumerate(items)]
    if len(ints) == 1:
        return (ints[0],) * d
    if len(ints) == d:
        return tuple(ints)
    if len(ints) == d + 2:
        channel = 1 if channels_first else d + 1
        if ints[0] != 1 or ints[channel] != 1:
            raise ValueError(
                f"{op}: {name} must be 1 in the batch and channel dimensions ({name}[0] and {name}[{channel}]); "
                f"got {name}={ints}"
            )
        return tuple(ints[2:] if channels_first else ints[1:-1])
    lengths = ", ".join(str(n) for n in sorted({1, d})) + f" or {d + 2}"
    raise ValueError(f"{op}: {name} must be an int or a list of length {lengths}; got {ints} of length {len(ints)}")


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME: ``ceil(S / s)`` outputs, the odd padding element after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _explicit_pairs(pairs: object, d: int, channels_first: bool, op: str, name: str) -> Pads:
    """``d + 2`` ``[before, after]`` pairs in data-format order -> the spatial pairs."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence | np.ndarray) or len(pairs) != d + 2:
        raise ValueError(
            f"{op}: explicit {name} must be a list of {d + 2} [before, after] pairs, one per dimension of the "
            f"input in data_format order; got {pairs!r}"
        )
    checked = []
    for i, pair in enumerate(pairs):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence | np.ndarray) or len(pair) != 2:
            raise ValueError(f"{op}: {name}[{i}] must be a [before, after] pair of ints; got {pair!r}")
        checked.append((check_int(pair[0], f"{name}[{i}][0]", 0), check_int(pair[1], f"{name}[{i}][1]", 0)))
    channel = 1 if channels_first else d + 1
    if checked[0] != (0, 0) or checked[channel] != (0, 0):
        raise ValueError(
            f"{op}: explicit padding must be [0, 0] in the batch and channel dimensions ({name}[0] and "
            f"{name}[{channel}]); got {[list(p) for p in checked]}"
        )
    spatial = checked[2:] if channels_first else checked[1:-1]
    return tuple(spatial)


def _padding(
    padding: object,
    explicit_paddings: object,
    sizes: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    channels_first: bool,
    op: str,
) -> Pads:
    d = len(sizes)
    if explicit_paddings is not None and padding != "EXPLICIT":
        raise ValueError(f"{op}: explicit_paddings is only used with padding='EXPLICIT'; got padding={padding!r}")
    if isinstance(padding, str):
        if padding == "VALID":
            return ((0, 0),) * d
        if padding == "SAME":
            return tuple(_same_padding(*a) for a in zip(sizes, kernel, stride, dilation, strict=True))
        if padding == "EXPLICIT":
            flat = [] if explicit_paddings is None else list(explicit_paddings)  # type: ignore[call-overload]
            if len(flat) != 2 * (d + 2):
                raise ValueError(
                    f"{op}: padding='EXPLICIT' needs explicit_paddings with {2 * (d + 2)} ints "
                    f"(before, after for each of the {d + 2} dimensions); got {explicit_paddings!r}"
                )
            return _explicit_pairs(
                [flat[i : i + 2] for i in range(0, len(flat), 2)], d, channels_first, op, "explicit_paddings"
            )
        hint = " (TensorFlow's names are upper-case)" if padding.upper() in ("SAME", "VALID") else ""
        raise ValueError(
            f"{op}: padding must be 'SAME', 'VALID' or a list of [before, after] pairs; got {padding!r}{hint}"
        )
    if isinstance(padding, Sequence | np.ndarray):
        return _explicit_pairs(padding, d, channels_first, op, "padding")
    raise TypeError(f"{op}: padding must be 'SAME', 'VALID' or a list of [before, after] pairs; got {padding!r}")


# ----------------------------------------------------------------------------- one checked convolution


@dataclass(frozen=True)
class _Plan:
    """One TensorFlow convolution ``y = conv(x, f)`` in the core's terms (channels first, ``(O, C/G, *K)``)."""

    d: int
    channels_first: bool
    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: Pads
    groups: int

    def kwargs(self) -> dict[str, Any]:
        return {"stride": self.stride, "padding": self.pads, "dilation": self.dilation, "groups": self.groups}

    def tf_shape(self, core_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(N, C, *S)`` in TensorFlow's data format."""
        return core_shape if self.channels_first else (core_shape[0], *core_shape[2:], core_shape[1])


def _plan(
    op: str,
    d: int,
    x_shape: tuple[int, ...],
    f_shape: tuple[int, ...],
    strides: object,
    padding: object,
    data_format: object,
    dilations: object,
    *,
    x_name: str,
    f_name: str,
    explicit_paddings: object = None,
    strides_name: str = "strides",
) -> _Plan:
    channels_first = _channels_first(data_format, d, op)
    layout = _FORMATS[d][int(channels_first)] if d in _FORMATS else "N" + "S" * d + "C"
    if len(x_shape) != d + 2:
        raise ValueError(f"{op}: {x_name} must have {d + 2} dimensions ({layout}); got shape {x_shape}")
    if len(f_shape) != d + 2:
        raise ValueError(
            f"{op}: {f_name} must have {d + 2} dimensions ([*filter_size, in_channels, out_channels]); "
            f"got shape {f_shape}"
        )
    for name, shape in ((x_name, x_shape), (f_name, f_shape)):
        if any(s < 1 for s in shape):
            raise ValueError(f"{op}: every dimension of {name} must be >= 1; got shape {shape}")
    n = x_shape[0]
    c, sizes = (x_shape[1], x_shape[2:]) if channels_first else (x_shape[-1], x_shape[1:-1])
    kernel, f_in, f_out = f_shape[:d], f_shape[d], f_shape[d + 1]
    if c % f_in:
        raise ValueError(
            f"{op}: the input channels ({c}) must be a multiple of {f_name}.shape[{d}] ({f_in}), the filters' "
            f"input depth (groups = input channels / filter depth)"
        )
    groups = c // f_in
    if f_out % groups:
        raise ValueError(
            f"{op}: {f_name}.shape[{d + 1}] ({f_out} output channels) must be divisible by the number of groups "
            f"{groups} (= {c} input channels / filter depth {f_in})"
        )
    stride = _spatial(strides, d, channels_first, strides_name, op)
    dilation = _spatial(dilations, d, channels_first, "dilations", op)
    pads = _padding(padding, explicit_paddings, sizes, kernel, stride, dilation, channels_first, op)
    out = []
    for i, (s, k, st, dl, (lo, hi)) in enumerate(zip(sizes, kernel, stride, dilation, pads, strict=True)):
        span = dl * (k - 1) + 1
        if s + lo + hi < span:
            raise ValueError(
                f"{op}: output size would be < 1 in spatial dimension {i}: input size {s} + padding {lo} + {hi} "
                f"is smaller than the dilated filter size {span} (dilation {dl} * (filter {k} - 1) + 1)"
            )
        out.append((s + lo + hi - span) // st + 1)
    return _Plan(
        d=d,
        channels_first=channels_first,
        input_shape=(n, c, *sizes),
        weight_shape=(f_out, f_in, *kernel),
        output_shape=(n, f_out, *out),
        stride=stride,
        dilation=dilation,
        pads=pads,
        groups=groups,
    )


def _to_core(a: Array, plan: _Plan) -> Array:
    return a if plan.channels_first else np.moveaxis(a, -1, 1)


def _from_core(a: Array, plan: _Plan) -> Array:
    return a if plan.channels_first else np.ascontiguousarray(np.moveaxis(a, 1, -1))


def _filters_to_core(f: Array, d: int) -> Array:
    """``[*K, in, out]`` -> ``(out, in, *K)`` (a view)."""
    view: Array = f.transpose((d + 1, d, *range(d)))
    return view


def _filters_from_core(w: Array, d: int) -> Array:
    """``(out, in, *K)`` -> a new ``[*K, in, out]`` array."""
    return np.ascontiguousarray(w.transpose((*range(2, d + 2), 1, 0)))


def _check_shape(a: Array, expected: tuple[int, ...], name: str, op: str, why: str) -> None:
    if a.shape != expected:
        raise ValueError(f"{op}: {name}.shape {a.shape} must equal {expected}, {why}")


def _full_sizes(
    sizes: tuple[int, ...], d: int, batch: int, channels: int, data_format: object, op: str, name: str
) -> tuple[int, ...]:
    """``input_sizes`` / ``output_shape``: the ``d + 2`` shape, or the ``d`` spatial sizes completed."""
    if len(sizes) == d + 2:
        return sizes
    if len(sizes) == d:
        return (batch, channels, *sizes) if _channels_first(data_format, d, op) else (batch, *sizes, channels)
    raise ValueError(f"{op}: {name} must hold the {d} spatial sizes or the full {d + 2}-D shape; got {list(sizes)}")


def _rank(a: Array, d: int, name: str, op: str) -> None:
    if a.ndim != d + 2:
        raise ValueError(f"{op}: {name} must have {d + 2} dimensions; got shape {a.shape}")


# ----------------------------------------------------------------------------- the generic operations


def _forward(
    op: str, d: int, input: ArrayLike, filters: ArrayLike, strides: object, padding: object, data_format: object,
    dilations: object, *, f_name: str = "filters", strides_name: str = "strides",
) -> Array:
    x, f = check_array(input, "input"), check_array(filters, f_name)
    plan = _plan(op, d, x.shape, f.shape, strides, padding, data_format, dilations,
                 x_name="input", f_name=f_name, strides_name=strides_name)
    return _from_core(conv(_to_core(x, plan), _filters_to_core(f, d), **plan.kwargs()), plan)


def _backward(
    op: str, d: int, grad_output: ArrayLike, input: ArrayLike, filters: ArrayLike, strides: object, padding: object,
    data_format: object, dilations: object, *, f_name: str = "filters", strides_name: str = "strides",
) -> TFGrads:
    g, x, f = check_array(grad_output, "grad_output"), check_array(input, "input"), check_array(filters, f_name)
    plan = _plan(op, d, x.shape, f.shape, strides, padding, data_format, dilations,
                 x_name="input", f_name=f_name, strides_name=strides_name)
    _check_shape(g, plan.tf_shape(plan.output_shape), "grad_output", op, "the shape of the forward output")
    gc, w = _to_core(g, plan), _filters_to_core(f, d)
    gx = conv_input_grad(gc, w, input_shape=plan.input_shape, **plan.kwargs())
    gw = conv_weight_grad(gc, _to_core(x, plan), weight_shape=plan.weight_shape, **plan.kwargs())
    return TFGrads(_from_core(gx, plan), _filters_from_core(gw, d))


def _input_grad_plan(
    op: str, d: int, sizes_arg: object, f: Array, g: Array, strides: object, padding: object, data_format: object,
    dilations: object, explicit_paddings: object, *, sizes_name: str, f_name: str, g_name: str, channels: int,
) -> _Plan:
    """The forward convolution whose input (of ``sizes_arg``) gradient is wanted; checks ``g`` is its output."""
    _rank(g, d, g_name, op)
    sizes = _full_sizes(normalize_shape(sizes_arg, sizes_name), d, g.shape[0], channels, data_format, op, sizes_name)
    plan = _plan(op, d, sizes, f.shape, strides, padding, data_format, dilations,
                 x_name=sizes_name, f_name=f_name, explicit_paddings=explicit_paddings)
    expected = plan.tf_shape(plan.output_shape)
    _check_shape(
        g, expected, g_name, op,
        f"the output shape of the forward convolution of {sizes_name} {list(sizes)} with {f_name}.shape "
        f"{f.shape}, strides {plan.stride}, dilations {plan.dilation} and padding {padding!r} "
        f"(per dimension (before, after) = {plan.pads})",
    )
    return plan


def _backprop_input(
    op: str, d: int, input_sizes: object, filter: ArrayLike, out_backprop: ArrayLike, strides: object,
    padding: object, data_format: object, dilations: object, explicit_paddings: object = None, *,
    sizes_name: str = "input_sizes", f_name: str = "filter", g_name: str = "out_backprop",
    channels: Optional[int] = None,
) -> Array:
    f, g = check_array(filter, f_name), check_array(out_backprop, g_name)
    _rank(f, d, f_name, op)
    plan = _input_grad_plan(op, d, input_sizes, f, g, strides, padding, data_format, dilations, explicit_paddings,
                            sizes_name=sizes_name, f_name=f_name, g_name=g_name,
                            channels=f.shape[d] if channels is None else channels)
    gx = conv_input_grad(_to_core(g, plan), _filters_to_core(f, d), input_shape=plan.input_shape, **plan.kwargs())
    return _from_core(gx, plan)


def _backprop_filter(
    op: str, d: int, input: ArrayLike, filter_sizes: object, out_backprop: ArrayLike, strides: object,
    padding: object, data_format: object, dilations: object, explicit_paddings: object = None,
) -> Array:
    x, g = check_array(input, "input"), check_array(out_backprop, "out_backprop")
    sizes = normalize_shape(filter_sizes, "filter_sizes")
    plan = _plan(op, d, x.shape, sizes, strides, padding, data_format, dilations,
                 x_name="input", f_name="filter_sizes", explicit_paddings=explicit_paddings)
    _check_shape(g, plan.tf_shape(plan.output_shape), "out_backprop", op, "the shape of the forward output")
    gw = conv_weight_grad(_to_core(g, plan), _to_core(x, plan), weight_shape=plan.weight_shape, **plan.kwargs())
    return _filters_from_core(gw, d)


def _transpose_backward(
    op: str, d: int, grad_output: ArrayLike, input: ArrayLike, filters: ArrayLike, output_shape: object,
    strides: object, padding: object, data_format: object, dilations: object,
) -> TFGrads:
    g, x, f = check_array(grad_output, "grad_output"), check_array(input, "input"), check_array(filters, "filters")
    _rank(f, d, "filters", op)
    plan = _input_grad_plan(op, d, output_shape, f, x, strides, padding, data_format, dilations, None,
                            sizes_name="output_shape", f_name="filters", g_name="input", channels=f.shape[d])
    _check_shape(g, plan.tf_shape(plan.input_shape), "grad_output", op, "output_shape")
    gc, xc, w = _to_core(g, plan), _to_core(x, plan), _filters_to_core(f, d)
    # The transpose is A^T x for the forward convolution A of output_shape: its input
    # gradient is A g, its filter gradient the forward weight gradient with x upstream of g.
    gx = conv(gc, w, **plan.kwargs())
    gw = conv_weight_grad(xc, gc, weight_shape=plan.weight_shape, **plan.kwargs())
    return TFGrads(_from_core(gx, plan), _filters_from_core(gw, d))


def _ndim_of(input: ArrayLike, op: str) -> int:
    x = check_array(input, "input")
    if x.ndim < 3:
        raise ValueError(
            f"{op}: input must have at least 3 dimensions (batch, spatial..., channels); got shape {x.shape}"
        )
    return x.ndim - 2


# ----------------------------------------------------------------------------- forward ops


def conv2d(
    input: ArrayLike,
    filters: ArrayLike,
    /,
    strides: IntList,
    padding: TFPadding,
    *,
    data_format: str = "NHWC",
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """2-D convolution (cross-correlation), as ``tf.nn.conv2d``.

    ``output[b, i, j, k] = Σ_{di, dj, q} pad(input)[b, s₀·i + δ₀·di, s₁·j + δ₁·dj, q] · filters[di, dj, q, k]``.

    Parameters
    ----------
    input : array_like, shape=(N, H, W, C) or (N, C, H, W) for "NCHW"
    filters : array_like, shape=(kh, kw, C / groups, O)
        ``[filter_height, filter_width, in_channels, out_channels]``; groups are
        inferred as ``C / filters.shape[2]``.
    strides, dilations : int or list of 1, 2 or 4 ints
        A list of 4 follows ``data_format`` and has 1 at batch and channel.
    padding : "SAME", "VALID" or a list of 4 [before, after] pairs
        SAME: total ``max((ceil(S/s) − 1)·s + (k − 1)·δ + 1 − S, 0)``, the odd
        element after. Explicit: ``[[0, 0], [top, bottom], [left, right], [0, 0]]``
        for NHWC.
    data_format : {"NHWC", "NCHW"}
    name : str, optional
        Ignored.

    Returns
    -------
    numpy.ndarray, shape=(N, Q_h, Q_w, O) or (N, O, Q_h, Q_w)

    Raises
    ------
    ValueError, TypeError
        Naming the argument, before any work (see the module docstring).

    Examples
    --------
    Seed 001: a 3×3 image under a 3×3 Sobel filter.

    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    >>> f = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]).reshape(3, 3, 1, 1)
    >>> tfc.conv2d(x, f, strides=[1, 1, 1, 1], padding="VALID")
    array([[[[-8.]]]])
    >>> tfc.conv2d(np.ones((1, 5, 5, 1)), np.ones((2, 2, 1, 1)), 2, "SAME")[0, :, :, 0]
    array([[4., 4., 2.],
           [4., 4., 2.],
           [2., 2., 1.]])
    """
    return _forward("conv2d", 2, input, filters, strides, padding, data_format, dilations)


def conv1d(
    input: ArrayLike,
    filters: ArrayLike,
    /,
    stride: IntList,
    padding: TFPadding,
    *,
    data_format: str = "NWC",
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """1-D convolution, as ``tf.nn.conv1d``: :func:`conv2d` with one spatial dimension.

    Parameters
    ----------
    input : array_like, shape=(N, W, C) or (N, C, W) for "NCW"
    filters : array_like, shape=(kw, C / groups, O)
    stride, dilations : int or list of 1 or 3 ints
    padding : "SAME", "VALID" or a list of 3 [before, after] pairs
    data_format : {"NWC", "NCW"}
    name : str, optional
        Ignored.

    Returns
    -------
    numpy.ndarray, shape=(N, Q, O) or (N, O, Q)

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> tfc.conv1d(np.arange(5.0).reshape(1, 5, 1), np.array([1.0, -1.0]).reshape(2, 1, 1), 1, "SAME")[0, :, 0]
    array([-1., -1., -1., -1.,  4.])
    """
    return _forward("conv1d", 1, input, filters, stride, padding, data_format, dilations, strides_name="stride")


def conv3d(
    input: ArrayLike,
    filters: ArrayLike,
    /,
    strides: IntList,
    padding: TFPadding,
    *,
    data_format: str = "NDHWC",
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """3-D convolution, as ``tf.nn.conv3d``: :func:`conv2d` with three spatial dimensions.

    Parameters
    ----------
    input : array_like, shape=(N, D, H, W, C) or (N, C, D, H, W) for "NCDHW"
    filters : array_like, shape=(kd, kh, kw, C / groups, O)
    strides, dilations : int or list of 1, 3 or 5 ints
    padding : "SAME", "VALID" or a list of 5 [before, after] pairs
    data_format : {"NDHWC", "NCDHW"}
    name : str, optional
        Ignored.

    Returns
    -------
    numpy.ndarray, shape=(N, Q_d, Q_h, Q_w, O) or (N, O, Q_d, Q_h, Q_w)

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> tfc.conv3d(np.ones((1, 4, 4, 4, 2)), np.ones((2, 2, 2, 2, 3)), [1, 2, 2, 2, 1], "VALID").shape
    (1, 2, 2, 2, 3)
    """
    return _forward("conv3d", 3, input, filters, strides, padding, data_format, dilations)


def convolution(
    input: ArrayLike,
    filters: ArrayLike,
    /,
    strides: IntList = None,
    padding: TFPadding = "VALID",
    *,
    data_format: Optional[str] = None,
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """N-d convolution, as ``tf.nn.convolution``; ``d = input.ndim − 2`` (any ``d ≥ 1``).

    Parameters
    ----------
    input : array_like, shape=(N, *S, C), or (N, C, *S) with a channels-first data_format
    filters : array_like, shape=(*K, C / groups, O)
    strides, dilations : int or list of 1, d or d + 2 ints, optional
    padding : "SAME", "VALID" (the default) or a list of d + 2 [before, after] pairs
    data_format : str, optional
        None (channels last), or for d ≤ 3 ``"NWC"``/``"NCW"``, ``"NHWC"``/``"NCHW"``,
        ``"NDHWC"``/``"NCDHW"``.
    name : str, optional
        Ignored.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> x = np.arange(12.0).reshape(1, 2, 6)            # NCW: two channels of length 6
    >>> f = np.ones((3, 2, 1))
    >>> tfc.convolution(x, f, padding="SAME", data_format="NCW")
    array([[[14., 24., 30., 36., 42., 30.]]])
    """
    d = _ndim_of(input, "convolution")
    return _forward("convolution", d, input, filters, strides, padding, data_format, dilations)


def depthwise_conv2d(
    input: ArrayLike,
    filter: ArrayLike,
    /,
    strides: IntList,
    padding: TFPadding,
    *,
    data_format: Optional[str] = None,
    dilations: IntList = None,
    rate: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """Depthwise 2-D convolution, as ``tf.nn.depthwise_conv2d``.

    ``output[b, i, j, k·M + q] = Σ_{di, dj} filter[di, dj, k, q] · pad(input)[b, s₀·i + δ₀·di, s₁·j + δ₁·dj, k]``:
    each input channel ``k`` gets its own ``M = channel_multiplier`` filters. It
    is the grouped convolution with ``groups = C`` and filters
    ``filter.reshape(kh, kw, 1, C·M)``.

    Parameters
    ----------
    input : array_like, shape=(N, H, W, C) or (N, C, H, W) for "NCHW"
    filter : array_like, shape=(kh, kw, C, M)
    strides, dilations : int or list of 1, 2 or 4 ints
    padding : "SAME", "VALID" or a list of 4 [before, after] pairs
    data_format : {None, "NHWC", "NCHW"}
    rate : int or list of ints, optional
        TensorFlow 1's name for ``dilations`` (give one or the other).
    name : str, optional
        Ignored.

    Returns
    -------
    numpy.ndarray, shape=(N, Q_h, Q_w, C·M) or (N, C·M, Q_h, Q_w)

    Examples
    --------
    The example of TensorFlow's documentation:

    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).reshape(1, 3, 2, 1)
    >>> kernel = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 1, 1, 2)
    >>> tfc.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="VALID")
    array([[[[10., 14.],
             [14., 20.]],
    <BLANKLINE>
            [[18., 26.],
             [22., 32.]]]])
    """
    x, f, dil = _depthwise_args("depthwise_conv2d", input, filter, data_format, dilations, rate)
    y = _forward("depthwise_conv2d", 2, x, _depthwise_as_grouped(f), strides, padding, data_format, dil,
                 f_name="filter")
    return y


def _depthwise_args(
    op: str, input: ArrayLike, filter: ArrayLike, data_format: object, dilations: object, rate: object
) -> tuple[Array, Array, object]:
    x, f = check_array(input, "input"), check_array(filter, "filter")
    if rate is not None and dilations is not None:
        raise ValueError(
            f"{op}: give dilations or its older name rate, not both; got dilations={dilations!r}, rate={rate!r}"
        )
    _rank(x, 2, "input", op)
    _rank(f, 2, "filter", op)
    c = x.shape[1] if _channels_first(data_format, 2, op) else x.shape[-1]
    if f.shape[2] != c:
        raise ValueError(f"{op}: filter.shape[2] ({f.shape[2]}) must equal the input channels ({c})")
    return x, f, dilations if rate is None else rate


def _depthwise_as_grouped(f: Array) -> Array:
    """``[kh, kw, C, M]`` -> ``[kh, kw, 1, C·M]``: output channel ``k·M + q`` is ``f[..., k, q]``."""
    return f.reshape(f.shape[0], f.shape[1], 1, f.shape[2] * f.shape[3])


# ----------------------------------------------------------------------------- transposed ops


def conv2d_transpose(
    input: ArrayLike,
    filters: ArrayLike,
    /,
    output_shape: ShapeLike,
    strides: IntList,
    padding: TFPadding = "SAME",
    *,
    data_format: str = "NHWC",
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """The transpose of :func:`conv2d`, as ``tf.nn.conv2d_transpose``.

    The input gradient of the forward convolution of an ``output_shape`` input
    with ``filters`` (what ``Conv2DBackpropInput`` computes): the padding is that
    forward convolution's (for SAME, computed from ``output_shape``), and its
    output size must equal ``input``'s spatial size.

    Parameters
    ----------
    input : array_like, shape=(N, H, W, O) or (N, O, H, W) for "NCHW"
    filters : array_like, shape=(kh, kw, C / groups, O)
        ``[height, width, output_channels, in_channels]`` of the transpose.
    output_shape : sequence of int
        The full ``(N, H_out, W_out, C)`` shape (data-format order) or the two
        spatial sizes.
    strides, dilations : int or list of 1, 2 or 4 ints
    padding : "SAME" (default), "VALID" or a list of 4 [before, after] pairs
    data_format : {"NHWC", "NCHW"}
    name : str, optional
        Ignored.

    Returns
    -------
    numpy.ndarray, shape=output_shape

    Examples
    --------
    Seed 001's ``conv2d_transpose(y, f, tf.shape(x), ...)``: the gradient of ``y``
    (here ``−8``) pulled back onto a 3×3 input.

    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> f = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]).reshape(3, 3, 1, 1)
    >>> y = np.array([[[[-8.0]]]])
    >>> tfc.conv2d_transpose(y, f, [3, 3], strides=[1, 1, 1, 1], padding="VALID")[0, :, :, 0]
    array([[ -8.,   0.,   8.],
           [-16.,   0.,  16.],
           [ -8.,   0.,   8.]])
    >>> tfc.conv2d_transpose(np.ones((1, 2, 2, 1)), np.ones((3, 3, 1, 1)), [1, 4, 4, 1], 2)[0, :, :, 0]
    array([[1., 1., 2., 1.],
           [1., 1., 2., 1.],
           [2., 2., 4., 2.],
           [1., 1., 2., 1.]])
    """
    return _backprop_input("conv2d_transpose", 2, output_shape, filters, input, strides, padding, data_format,
                           dilations, sizes_name="output_shape", f_name="filters", g_name="input")


def conv1d_transpose(
    input: ArrayLike,
    filters: ArrayLike,
    /,
    output_shape: ShapeLike,
    strides: IntList,
    padding: TFPadding = "SAME",
    *,
    data_format: str = "NWC",
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """The transpose of :func:`conv1d`, as ``tf.nn.conv1d_transpose`` (see :func:`conv2d_transpose`).

    Parameters
    ----------
    input : array_like, shape=(N, W, O) or (N, O, W)
    filters : array_like, shape=(kw, C / groups, O)
    output_shape : sequence of int
        ``(N, W_out, C)`` in data-format order, or ``(W_out,)``.
    strides, dilations : int or list of 1 or 3 ints
    padding : "SAME" (default), "VALID" or a list of 3 [before, after] pairs
    data_format : {"NWC", "NCW"}
    name : str, optional
        Ignored.

    Returns
    -------
    numpy.ndarray, shape=output_shape

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> tfc.conv1d_transpose(np.ones((1, 2, 1)), np.array([1.0, 2.0, 3.0]).reshape(3, 1, 1), [1, 4, 1], 2)[0, :, 0]
    array([2., 3., 3., 3.])
    """
    return _backprop_input("conv1d_transpose", 1, output_shape, filters, input, strides, padding, data_format,
                           dilations, sizes_name="output_shape", f_name="filters", g_name="input")


def conv3d_transpose(
    input: ArrayLike,
    filters: ArrayLike,
    /,
    output_shape: ShapeLike,
    strides: IntList,
    padding: TFPadding = "SAME",
    *,
    data_format: str = "NDHWC",
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """The transpose of :func:`conv3d`, as ``tf.nn.conv3d_transpose`` (see :func:`conv2d_transpose`).

    Parameters
    ----------
    input : array_like, shape=(N, D, H, W, O) or (N, O, D, H, W)
    filters : array_like, shape=(kd, kh, kw, C / groups, O)
    output_shape : sequence of int
        The full 5-D shape in data-format order, or the three spatial sizes.
    strides, dilations : int or list of 1, 3 or 5 ints
    padding : "SAME" (default), "VALID" or a list of 5 [before, after] pairs
    data_format : {"NDHWC", "NCDHW"}
    name : str, optional
        Ignored.

    Returns
    -------
    numpy.ndarray, shape=output_shape

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> tfc.conv3d_transpose(np.ones((1, 2, 2, 2, 3)), np.ones((2, 2, 2, 4, 3)), [1, 4, 4, 4, 4], 2).shape
    (1, 4, 4, 4, 4)
    """
    return _backprop_input("conv3d_transpose", 3, output_shape, filters, input, strides, padding, data_format,
                           dilations, sizes_name="output_shape", f_name="filters", g_name="input")


def conv_transpose(
    input: ArrayLike,
    filters: ArrayLike,
    /,
    output_shape: ShapeLike,
    strides: IntList,
    padding: TFPadding = "SAME",
    *,
    data_format: Optional[str] = None,
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """The transpose of :func:`convolution`, as ``tf.nn.conv_transpose``; ``d = input.ndim − 2``.

    Parameters
    ----------
    input : array_like, shape=(N, *S, O), or (N, O, *S) channels first
    filters : array_like, shape=(*K, C / groups, O)
        ``[*K, output_channels, in_channels]`` of the transpose.
    output_shape : sequence of int
        The full shape in data-format order, or the ``d`` spatial sizes (mandatory).
    strides, dilations : int or list of 1, d or d + 2 ints
    padding : "SAME" (default), "VALID" or a list of d + 2 [before, after] pairs
    data_format : str, optional
        As for :func:`convolution`.
    name : str, optional
        Ignored.

    Returns
    -------
    numpy.ndarray, shape=output_shape

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> tfc.conv_transpose(np.ones((1, 2, 1)), np.array([1.0, 2.0]).reshape(2, 1, 1), [1, 4, 1], 2, "VALID")[0, :, 0]
    array([1., 2., 1., 2.])
    """
    d = _ndim_of(input, "conv_transpose")
    return _backprop_input("conv_transpose", d, output_shape, filters, input, strides, padding, data_format,
                           dilations, sizes_name="output_shape", f_name="filters", g_name="input")


# ----------------------------------------------------------------------------- the gradient ops (tf.raw_ops)


def conv2d_backprop_input(
    input_sizes: ShapeLike,
    filter: ArrayLike,
    out_backprop: ArrayLike,
    /,
    strides: IntList,
    padding: TFPadding,
    *,
    explicit_paddings: Optional[Sequence[int]] = None,
    data_format: str = "NHWC",
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """Gradient of :func:`conv2d` with respect to its input, as ``Conv2DBackpropInput``.

    What ``tape.gradient(conv2d(x, filter, ...), x, output_gradients=out_backprop)``
    returns for an ``x`` of shape ``input_sizes``.

    Parameters
    ----------
    input_sizes : sequence of int
        Shape of the forward input (data-format order), or its two spatial sizes.
    filter : array_like, shape=(kh, kw, C / groups, O)
    out_backprop : array_like
        Gradient with respect to the forward output; must have its shape.
    strides, dilations : int or list of 1, 2 or 4 ints
    padding : "SAME", "VALID", "EXPLICIT" or a list of 4 [before, after] pairs
        With ``"EXPLICIT"`` (``tf.raw_ops``), ``explicit_paddings`` holds the 8
        ints ``[0, 0, top, bottom, left, right, 0, 0]`` (NHWC).
    explicit_paddings : sequence of int, optional
    data_format : {"NHWC", "NCHW"}
    name : str, optional
        Ignored.

    Returns
    -------
    numpy.ndarray, shape=input_sizes

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> f = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]).reshape(3, 3, 1, 1)
    >>> tfc.conv2d_backprop_input([1, 3, 3, 1], f, np.ones((1, 1, 1, 1)), [1, 1, 1, 1], "VALID")[0, :, :, 0]
    array([[ 1.,  0., -1.],
           [ 2.,  0., -2.],
           [ 1.,  0., -1.]])
    """
    return _backprop_input("conv2d_backprop_input", 2, input_sizes, filter, out_backprop, strides, padding,
                           data_format, dilations, explicit_paddings)


def conv2d_backprop_filter(
    input: ArrayLike,
    filter_sizes: ShapeLike,
    out_backprop: ArrayLike,
    /,
    strides: IntList,
    padding: TFPadding,
    *,
    explicit_paddings: Optional[Sequence[int]] = None,
    data_format: str = "NHWC",
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """Gradient of :func:`conv2d` with respect to its filter, as ``Conv2DBackpropFilter``.

    Parameters
    ----------
    input : array_like, shape=(N, H, W, C) or (N, C, H, W)
        The forward input.
    filter_sizes : sequence of int
        ``[kh, kw, C / groups, O]``.
    out_backprop : array_like
        Gradient with respect to the forward output; must have its shape.
    strides, dilations, padding, explicit_paddings, data_format, name
        As for :func:`conv2d_backprop_input`.

    Returns
    -------
    numpy.ndarray, shape=filter_sizes

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    >>> tfc.conv2d_backprop_filter(x, [2, 2, 1, 1], np.ones((1, 2, 2, 1)), 1, "VALID")[:, :, 0, 0]
    array([[12., 16.],
           [24., 28.]])
    """
    return _backprop_filter("conv2d_backprop_filter", 2, input, filter_sizes, out_backprop, strides, padding,
                            data_format, dilations, explicit_paddings)


def conv1d_backprop_input(
    input_sizes: ShapeLike,
    filter: ArrayLike,
    out_backprop: ArrayLike,
    /,
    strides: IntList,
    padding: TFPadding,
    *,
    explicit_paddings: Optional[Sequence[int]] = None,
    data_format: str = "NWC",
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """Gradient of :func:`conv1d` with respect to its input (:func:`conv2d_backprop_input`, one spatial dimension).

    Parameters
    ----------
    input_sizes : sequence of int
        ``(N, W, C)`` in data-format order, or ``(W,)``.
    filter : array_like, shape=(kw, C / groups, O)
    out_backprop : array_like
    strides, padding, explicit_paddings, data_format, dilations, name
        As for :func:`conv2d_backprop_input`, with 1 spatial dimension.

    Returns
    -------
    numpy.ndarray, shape=input_sizes

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> f = np.array([1.0, 2.0]).reshape(2, 1, 1)
    >>> tfc.conv1d_backprop_input([1, 4, 1], f, np.ones((1, 3, 1)), 1, "VALID")[0, :, 0]
    array([1., 3., 3., 2.])
    """
    return _backprop_input("conv1d_backprop_input", 1, input_sizes, filter, out_backprop, strides, padding,
                           data_format, dilations, explicit_paddings)


def conv1d_backprop_filter(
    input: ArrayLike,
    filter_sizes: ShapeLike,
    out_backprop: ArrayLike,
    /,
    strides: IntList,
    padding: TFPadding,
    *,
    explicit_paddings: Optional[Sequence[int]] = None,
    data_format: str = "NWC",
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """Gradient of :func:`conv1d` with respect to its filter (:func:`conv2d_backprop_filter`, one spatial dimension).

    Parameters
    ----------
    input : array_like, shape=(N, W, C) or (N, C, W)
    filter_sizes : sequence of int
        ``[kw, C / groups, O]``.
    out_backprop : array_like
    strides, padding, explicit_paddings, data_format, dilations, name
        As for :func:`conv2d_backprop_input`, with 1 spatial dimension.

    Returns
    -------
    numpy.ndarray, shape=filter_sizes

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> tfc.conv1d_backprop_filter(np.arange(4.0).reshape(1, 4, 1), [2, 1, 1], np.ones((1, 3, 1)), 1, "VALID").ravel()
    array([3., 6.])
    """
    return _backprop_filter("conv1d_backprop_filter", 1, input, filter_sizes, out_backprop, strides, padding,
                            data_format, dilations, explicit_paddings)


def conv3d_backprop_input(
    input_sizes: ShapeLike,
    filter: ArrayLike,
    out_backprop: ArrayLike,
    /,
    strides: IntList,
    padding: TFPadding,
    *,
    explicit_paddings: Optional[Sequence[int]] = None,
    data_format: str = "NDHWC",
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """Gradient of :func:`conv3d` with respect to its input, as ``Conv3DBackpropInputV2``.

    Parameters
    ----------
    input_sizes : sequence of int
        The 5-D input shape in data-format order, or its three spatial sizes.
    filter : array_like, shape=(kd, kh, kw, C / groups, O)
    out_backprop : array_like
    strides, padding, explicit_paddings, data_format, dilations, name
        As for :func:`conv2d_backprop_input`, with 3 spatial dimensions.

    Returns
    -------
    numpy.ndarray, shape=input_sizes

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> gx = tfc.conv3d_backprop_input([1, 3, 3, 3, 1], np.ones((2, 2, 2, 1, 1)), np.ones((1, 2, 2, 2, 1)), 1, "VALID")
    >>> float(gx.sum()), float(gx[0, 1, 1, 1, 0])
    (64.0, 8.0)
    """
    return _backprop_input("conv3d_backprop_input", 3, input_sizes, filter, out_backprop, strides, padding,
                           data_format, dilations, explicit_paddings)


def conv3d_backprop_filter(
    input: ArrayLike,
    filter_sizes: ShapeLike,
    out_backprop: ArrayLike,
    /,
    strides: IntList,
    padding: TFPadding,
    *,
    explicit_paddings: Optional[Sequence[int]] = None,
    data_format: str = "NDHWC",
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """Gradient of :func:`conv3d` with respect to its filter, as ``Conv3DBackpropFilterV2``.

    Parameters
    ----------
    input : array_like, shape=(N, D, H, W, C) or (N, C, D, H, W)
    filter_sizes : sequence of int
        ``[kd, kh, kw, C / groups, O]``.
    out_backprop : array_like
    strides, padding, explicit_paddings, data_format, dilations, name
        As for :func:`conv2d_backprop_input`, with 3 spatial dimensions.

    Returns
    -------
    numpy.ndarray, shape=filter_sizes

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> x, g = np.ones((1, 3, 3, 3, 1)), np.ones((1, 2, 2, 2, 1))
    >>> tfc.conv3d_backprop_filter(x, [2, 2, 2, 1, 1], g, 1, "VALID").ravel()
    array([8., 8., 8., 8., 8., 8., 8., 8.])
    """
    return _backprop_filter("conv3d_backprop_filter", 3, input, filter_sizes, out_backprop, strides, padding,
                            data_format, dilations, explicit_paddings)


def depthwise_conv2d_backprop_input(
    input_sizes: ShapeLike,
    filter: ArrayLike,
    out_backprop: ArrayLike,
    /,
    strides: IntList,
    padding: TFPadding,
    *,
    explicit_paddings: Optional[Sequence[int]] = None,
    data_format: str = "NHWC",
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """Gradient of :func:`depthwise_conv2d` with respect to its input, as ``tf.nn.depthwise_conv2d_backprop_input``.

    Parameters
    ----------
    input_sizes : sequence of int
        The forward input's shape (data-format order), or its two spatial sizes.
    filter : array_like, shape=(kh, kw, C, M)
    out_backprop : array_like, shape=(N, Q_h, Q_w, C·M) or (N, C·M, Q_h, Q_w)
    strides, padding, explicit_paddings, data_format, dilations, name
        As for :func:`conv2d_backprop_input`.

    Returns
    -------
    numpy.ndarray, shape=input_sizes

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> f = np.ones((2, 2, 1, 2))       # one channel, multiplier 2
    >>> tfc.depthwise_conv2d_backprop_input([1, 2, 2, 1], f, np.ones((1, 1, 1, 2)), 1, "VALID")[0, :, :, 0]
    array([[2., 2.],
           [2., 2.]])
    """
    op = "depthwise_conv2d_backprop_input"
    f = check_array(filter, "filter")
    _rank(f, 2, "filter", op)
    return _backprop_input(op, 2, input_sizes, _depthwise_as_grouped(f), out_backprop, strides, padding,
                           data_format, dilations, explicit_paddings, channels=f.shape[2])


def depthwise_conv2d_backprop_filter(
    input: ArrayLike,
    filter_sizes: ShapeLike,
    out_backprop: ArrayLike,
    /,
    strides: IntList,
    padding: TFPadding,
    *,
    explicit_paddings: Optional[Sequence[int]] = None,
    data_format: str = "NHWC",
    dilations: IntList = None,
    name: Optional[str] = None,
) -> Array:
    """Gradient of :func:`depthwise_conv2d` with respect to its filter, as ``tf.nn.depthwise_conv2d_backprop_filter``.

    Parameters
    ----------
    input : array_like, shape=(N, H, W, C) or (N, C, H, W)
    filter_sizes : sequence of int
        ``[kh, kw, C, M]``.
    out_backprop : array_like, shape=(N, Q_h, Q_w, C·M) or (N, C·M, Q_h, Q_w)
    strides, padding, explicit_paddings, data_format, dilations, name
        As for :func:`conv2d_backprop_input`.

    Returns
    -------
    numpy.ndarray, shape=filter_sizes

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> x = np.arange(8.0).reshape(1, 2, 2, 2)    # two channels
    >>> tfc.depthwise_conv2d_backprop_filter(x, [1, 1, 2, 1], np.ones((1, 2, 2, 2)), 1, "VALID").ravel()
    array([12., 16.])
    """
    op = "depthwise_conv2d_backprop_filter"
    sizes = normalize_shape(filter_sizes, "filter_sizes")
    if len(sizes) != 4:
        raise ValueError(f"{op}: filter_sizes must be [kh, kw, in_channels, channel_multiplier]; got {list(sizes)}")
    x = check_array(input, "input")
    _rank(x, 2, "input", op)
    c = x.shape[1] if _channels_first(data_format, 2, op) else x.shape[-1]
    if sizes[2] != c:
        raise ValueError(f"{op}: filter_sizes[2] ({sizes[2]}) must equal the input channels ({c})")
    grouped = (sizes[0], sizes[1], 1, sizes[2] * sizes[3])
    gw = _backprop_filter(op, 2, x, grouped, out_backprop, strides, padding, data_format, dilations, explicit_paddings)
    return gw.reshape(sizes)


# ----------------------------------------------------------------------------- both gradients of each forward op


def conv2d_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    filters: ArrayLike,
    /,
    strides: IntList,
    padding: TFPadding,
    *,
    data_format: str = "NHWC",
    dilations: IntList = None,
) -> TFGrads:
    """Both gradients of :func:`conv2d`, as ``tape.gradient(y, [input, filters], output_gradients=grad_output)``.

    ``input`` gradient: the core's input gradient (:func:`conv2d_backprop_input`);
    ``filters`` gradient: the core's weight gradient (:func:`conv2d_backprop_filter`).

    Parameters
    ----------
    grad_output : array_like
        ``∂L/∂y``, shaped like ``conv2d(input, filters, ...)``.
    input, filters, strides, padding, data_format, dilations
        As for :func:`conv2d`.

    Returns
    -------
    TFGrads
        ``(input, filters)`` gradients in TensorFlow's layouts.

    Examples
    --------
    Seed 001's ``GradientTape`` example: the gradients of ``y = conv2d(x, f)`` (``L = sum(y)``).

    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    >>> f = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]).reshape(3, 3, 1, 1)
    >>> dx, df = tfc.conv2d_backward(np.ones((1, 1, 1, 1)), x, f, strides=[1, 1, 1, 1], padding="VALID")
    >>> dx[0, :, :, 0]
    array([[ 1.,  0., -1.],
           [ 2.,  0., -2.],
           [ 1.,  0., -1.]])
    >>> df[:, :, 0, 0]
    array([[1., 2., 3.],
           [4., 5., 6.],
           [7., 8., 9.]])
    """
    return _backward("conv2d_backward", 2, grad_output, input, filters, strides, padding, data_format, dilations)


def conv1d_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    filters: ArrayLike,
    /,
    stride: IntList,
    padding: TFPadding,
    *,
    data_format: str = "NWC",
    dilations: IntList = None,
) -> TFGrads:
    """Both gradients of :func:`conv1d` (see :func:`conv2d_backward`).

    Parameters
    ----------
    grad_output : array_like
        Shaped like ``conv1d(input, filters, ...)``.
    input, filters, stride, padding, data_format, dilations
        As for :func:`conv1d`.

    Returns
    -------
    TFGrads

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> g = tfc.conv1d_backward(np.ones((1, 2, 1)), np.arange(3.0).reshape(1, 3, 1), np.ones((2, 1, 1)), 1, "VALID")
    >>> g.input.ravel(), g.filters.ravel()
    (array([1., 2., 1.]), array([1., 3.]))
    """
    return _backward("conv1d_backward", 1, grad_output, input, filters, stride, padding, data_format, dilations,
                     strides_name="stride")


def conv3d_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    filters: ArrayLike,
    /,
    strides: IntList,
    padding: TFPadding,
    *,
    data_format: str = "NDHWC",
    dilations: IntList = None,
) -> TFGrads:
    """Both gradients of :func:`conv3d` (see :func:`conv2d_backward`).

    Parameters
    ----------
    grad_output : array_like
        Shaped like ``conv3d(input, filters, ...)``.
    input, filters, strides, padding, data_format, dilations
        As for :func:`conv3d`.

    Returns
    -------
    TFGrads

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> x, f = np.ones((1, 2, 2, 2, 1)), np.ones((2, 2, 2, 1, 1))
    >>> g = tfc.conv3d_backward(np.ones((1, 1, 1, 1, 1)), x, f, 1, "VALID")
    >>> g.input.shape, g.filters.shape, float(g.filters.sum())
    ((1, 2, 2, 2, 1), (2, 2, 2, 1, 1), 8.0)
    """
    return _backward("conv3d_backward", 3, grad_output, input, filters, strides, padding, data_format, dilations)


def convolution_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    filters: ArrayLike,
    /,
    strides: IntList = None,
    padding: TFPadding = "VALID",
    *,
    data_format: Optional[str] = None,
    dilations: IntList = None,
) -> TFGrads:
    """Both gradients of :func:`convolution` (see :func:`conv2d_backward`).

    Parameters
    ----------
    grad_output : array_like
        Shaped like ``convolution(input, filters, ...)``.
    input, filters, strides, padding, data_format, dilations
        As for :func:`convolution`.

    Returns
    -------
    TFGrads

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> x, f = np.ones((1, 3, 1)), np.array([1.0, 2.0]).reshape(2, 1, 1)
    >>> g = tfc.convolution_backward(np.ones((1, 3, 1)), x, f, padding="SAME")
    >>> g.input.ravel(), g.filters.ravel()
    (array([1., 3., 3.]), array([3., 2.]))
    """
    d = _ndim_of(input, "convolution_backward")
    return _backward("convolution_backward", d, grad_output, input, filters, strides, padding, data_format, dilations)


def depthwise_conv2d_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    filter: ArrayLike,
    /,
    strides: IntList,
    padding: TFPadding,
    *,
    data_format: Optional[str] = None,
    dilations: IntList = None,
    rate: IntList = None,
) -> TFGrads:
    """Both gradients of :func:`depthwise_conv2d` (see :func:`conv2d_backward`).

    Parameters
    ----------
    grad_output : array_like
        Shaped like ``depthwise_conv2d(input, filter, ...)``.
    input, filter, strides, padding, data_format, dilations, rate
        As for :func:`depthwise_conv2d`.

    Returns
    -------
    TFGrads
        ``filters`` is shaped like ``filter``, ``(kh, kw, C, M)``.

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).reshape(1, 3, 2, 1)
    >>> kernel = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 1, 1, 2)
    >>> g = tfc.depthwise_conv2d_backward(np.ones((1, 2, 2, 2)), x, kernel, 1, "VALID")
    >>> g.filters[:, 0, 0, :]
    array([[10., 10.],
           [18., 18.]])
    """
    op = "depthwise_conv2d_backward"
    x, f, dil = _depthwise_args(op, input, filter, data_format, dilations, rate)
    gx, gw = _backward(op, 2, grad_output, x, _depthwise_as_grouped(f), strides, padding, data_format, dil,
                       f_name="filter")
    return TFGrads(gx, gw.reshape(f.shape))


def conv2d_transpose_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    filters: ArrayLike,
    /,
    output_shape: ShapeLike,
    strides: IntList,
    padding: TFPadding = "SAME",
    *,
    data_format: str = "NHWC",
    dilations: IntList = None,
) -> TFGrads:
    """Both gradients of :func:`conv2d_transpose`.

    The transpose is ``Aᵀ input`` for the forward convolution ``A`` of
    ``output_shape``; so its input gradient is ``A grad_output`` (a
    :func:`conv2d` of ``grad_output``) and its filter gradient the forward
    convolution's filter gradient with ``grad_output`` as the input and
    ``input`` as the upstream gradient.

    Parameters
    ----------
    grad_output : array_like, shape=output_shape
    input, filters, output_shape, strides, padding, data_format, dilations
        As for :func:`conv2d_transpose`.

    Returns
    -------
    TFGrads

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> x, f = np.ones((1, 1, 1, 1)), np.arange(9.0).reshape(3, 3, 1, 1)
    >>> g = tfc.conv2d_transpose_backward(np.ones((1, 3, 3, 1)), x, f, [3, 3], 1, "VALID")
    >>> g.input.ravel(), g.filters[:, :, 0, 0]
    (array([36.]), array([[1., 1., 1.],
           [1., 1., 1.],
           [1., 1., 1.]]))
    """
    return _transpose_backward("conv2d_transpose_backward", 2, grad_output, input, filters, output_shape, strides,
                               padding, data_format, dilations)


def conv1d_transpose_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    filters: ArrayLike,
    /,
    output_shape: ShapeLike,
    strides: IntList,
    padding: TFPadding = "SAME",
    *,
    data_format: str = "NWC",
    dilations: IntList = None,
) -> TFGrads:
    """Both gradients of :func:`conv1d_transpose` (see :func:`conv2d_transpose_backward`).

    Parameters
    ----------
    grad_output : array_like, shape=output_shape
    input, filters, output_shape, strides, padding, data_format, dilations
        As for :func:`conv1d_transpose`.

    Returns
    -------
    TFGrads

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> x, f = np.ones((1, 2, 1)), np.array([1.0, 2.0]).reshape(2, 1, 1)
    >>> g = tfc.conv1d_transpose_backward(np.array([1.0, 0.0, 0.0, 1.0]).reshape(1, 4, 1), x, f, [4], 2, "VALID")
    >>> g.input.ravel(), g.filters.ravel()
    (array([1., 2.]), array([1., 1.]))
    """
    return _transpose_backward("conv1d_transpose_backward", 1, grad_output, input, filters, output_shape, strides,
                               padding, data_format, dilations)


def conv3d_transpose_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    filters: ArrayLike,
    /,
    output_shape: ShapeLike,
    strides: IntList,
    padding: TFPadding = "SAME",
    *,
    data_format: str = "NDHWC",
    dilations: IntList = None,
) -> TFGrads:
    """Both gradients of :func:`conv3d_transpose` (see :func:`conv2d_transpose_backward`).

    Parameters
    ----------
    grad_output : array_like, shape=output_shape
    input, filters, output_shape, strides, padding, data_format, dilations
        As for :func:`conv3d_transpose`.

    Returns
    -------
    TFGrads

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> x, f = np.ones((1, 1, 1, 1, 1)), np.ones((2, 2, 2, 1, 1))
    >>> g = tfc.conv3d_transpose_backward(np.ones((1, 2, 2, 2, 1)), x, f, [2, 2, 2], 1, "VALID")
    >>> float(g.input.sum()), g.filters.shape
    (8.0, (2, 2, 2, 1, 1))
    """
    return _transpose_backward("conv3d_transpose_backward", 3, grad_output, input, filters, output_shape, strides,
                               padding, data_format, dilations)


def conv_transpose_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    filters: ArrayLike,
    /,
    output_shape: ShapeLike,
    strides: IntList,
    padding: TFPadding = "SAME",
    *,
    data_format: Optional[str] = None,
    dilations: IntList = None,
) -> TFGrads:
    """Both gradients of :func:`conv_transpose` (see :func:`conv2d_transpose_backward`).

    Parameters
    ----------
    grad_output : array_like, shape=output_shape
    input, filters, output_shape, strides, padding, data_format, dilations
        As for :func:`conv_transpose`.

    Returns
    -------
    TFGrads

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import tensorflow as tfc
    >>> x, f = np.ones((1, 2, 1)), np.array([1.0, 2.0]).reshape(2, 1, 1)
    >>> g = tfc.conv_transpose_backward(np.arange(4.0).reshape(1, 4, 1), x, f, [1, 4, 1], 2, "VALID")
    >>> g.input.ravel(), g.filters.ravel()
    (array([2., 8.]), array([2., 4.]))
    """
    d = _ndim_of(input, "conv_transpose_backward")
    return _transpose_backward("conv_transpose_backward", d, grad_output, input, filters, output_shape, strides,
                               padding, data_format, dilations)
