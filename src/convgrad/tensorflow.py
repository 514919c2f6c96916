"""TensorFlow's ``tf.nn`` convolutions on NumPy arrays, with explicit gradients.

The names, argument orders and semantics of ``tf.nn`` and of the ``tf.raw_ops``
gradient ops, so that a TensorFlow call can be copied (TensorFlow is not
needed): channels-last data (``NWC`` / ``NHWC`` / ``NDHWC``; channels first
accepted), filters ``[*K, in_channels, out_channels]``, ``strides`` /
``dilations`` as an int or a list of length 1, ``d`` or ``d + 2``. Every
function is a layout change around one call of the core (:func:`convgrad.conv`,
:func:`convgrad.conv_input_grad` or :func:`convgrad.conv_weight_grad`); the
1-D and 3-D names are the 2-D ones with another ``d``.

Each forward op and transpose has a ``*_backward`` that returns what
``tape.gradient(y, [input, filters], g)`` does; the raw gradient ops are the
``*_backprop_input`` / ``*_backprop_filter`` names.

Padding. ``"VALID"`` pads nothing. ``"SAME"`` gives ``ceil(S / s)`` outputs: a
dimension of size ``S`` (filter ``k``, stride ``s``, dilation ``δ``) is padded by
``max((ceil(S / s) − 1)·s + (k − 1)·δ + 1 − S, 0)``, the odd element after
(TensorFlow's "Notes on padding"; ``GetWindowedOutputSizeVerbose``). An explicit
list has ``d + 2`` ``[before, after]`` pairs in data-format order, ``[0, 0]`` at
batch and channel. The transposes and ``backprop_input`` ops are the input
gradient of the forward convolution of ``output_shape`` / ``input_sizes``,
with that convolution's padding; its output must have the given input's size.

Differences, all accepting more: groups are inferred everywhere, explicit
padding is accepted by every op, stride > 1 may be combined with dilation > 1,
``output_shape`` / ``input_sizes`` may hold the spatial sizes only, and dtypes
follow the core (NumPy promotion; integers give exact float64 results).
``name`` is ignored. A ``"VALID"`` output of size 0 is an error. Results are
new C-contiguous arrays in TensorFlow's layout.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, TypeVar, Union

import numpy as np

from ._arguments import Shape, check_array, check_int, is_int, normalize_shape, normalize_tuple, same_padding
from ._arguments import _is_sequence as _is_list
from ._conv import Array, ArrayLike
from ._conv import conv as _conv
from ._conv import conv_input_grad as _input_grad
from ._conv import conv_weight_grad as _weight_grad
from ._geometry import out_size, transposed_size

__all__ = [
    "TFGrads", "conv1d", "conv1d_backprop_filter", "conv1d_backprop_input", "conv1d_backward", "conv1d_transpose",
    "conv1d_transpose_backward", "conv2d", "conv2d_backprop_filter", "conv2d_backprop_input", "conv2d_backward",
    "conv2d_transpose", "conv2d_transpose_backward", "conv3d", "conv3d_backprop_filter", "conv3d_backprop_input",
    "conv3d_backward", "conv3d_transpose", "conv3d_transpose_backward", "conv_transpose", "conv_transpose_backward",
    "convolution", "convolution_backward", "depthwise_conv2d", "depthwise_conv2d_backprop_filter",
    "depthwise_conv2d_backprop_input", "depthwise_conv2d_backward",
]


def __dir__() -> list[str]:
    return sorted(__all__)


IntList = Union[int, Sequence[int], None]
TFPadding = Union[str, Sequence[Sequence[int]]]
ShapeLike = Union[Sequence[int], ArrayLike]
Pads = tuple[tuple[int, int], ...]
_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")

_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


class TFGrads(NamedTuple):
    """What ``tape.gradient(y, [input, filters], output_gradients=g)`` returns: both in their operand's layout."""

    input: Array
    filters: Array


# ----------------------------------------------------------------------------- arguments


def _channels_first(data_format: object, d: int, op: str) -> bool:
    """``data_format`` -> whether channels come right after the batch."""
    if data_format is None:
        return False
    if d not in _FORMATS:
        raise ValueError(f"{op}: data_format must be None (channels last) for {d} spatial dimensions; "
                         f"got {data_format!r}")
    last, first = _FORMATS[d]
    if isinstance(data_format, str) and data_format in (last, first):
        return data_format == first
    raise ValueError(f"{op}: data_format must be {last!r} (channels last, the default) or {first!r} (channels first) "
                     f"for {d} spatial dimension(s); got {data_format!r}")


def _layout(items: Sequence[_T], channels_first: bool) -> tuple[int, tuple[_T, ...]]:
    """Entries in data-format order (a shape, strides, padding pairs) -> (the channel's index, the spatial entries)."""
    return (1, tuple(items[2:])) if channels_first else (len(items) - 1, tuple(items[1:-1]))


def _lengths(d: int) -> str:
    """The list lengths TensorFlow accepts for strides and dilations: ``"1, 2 or 4"``."""
    return ", ".join(str(n) for n in sorted({1, d})) + f" or {d + 2}"


def _spatial(value: object, d: int, channels_first: bool, name: str, op: str) -> Shape:
    """TensorFlow's stride/dilation forms (int, length 1, d or d + 2) -> one int per spatial dimension."""
    if value is None or is_int(value):
        return normalize_tuple(1 if value is None else value, d, name, 1)
    if not _is_list(value):
        raise TypeError(f"{op}: {name} must be an int or a list of ints; got {value!r}")
    items = list(value)  # type: ignore[call-overload]
    if len(items) == d + 2:
        full = normalize_tuple(items, d + 2, name, 1)
        channel, spatial = _layout(full, channels_first)
        if full[0] != 1 or full[channel] != 1:
            raise ValueError(f"{op}: {name} must be 1 in the batch and channel dimensions ({name}[0] and "
                             f"{name}[{channel}]); got {name}={list(full)}")
        return spatial
    if len(items) not in (1, d):
        raise ValueError(f"{op}: {name} must be an int or a list of length {_lengths(d)}; "
                         f"got {items} of length {len(items)}")
    return normalize_tuple(items, d, name, 1)


def _tf_same_padding(sizes: Shape, kernel: Shape, stride: Shape, dilation: Shape) -> Pads:
    """TensorFlow's SAME, which differs from the core's (stride-1) ``"same"``: ``ceil(S / s)`` outputs (the
    :func:`out_size` of a one-wide window) need an input of their :func:`transposed_size`; the shortfall ``t`` (or
    0) is split as :func:`same_padding` splits a window spanning ``t + 1``: the odd element after."""
    totals = [max(transposed_size(out_size(s, 1, st), k, st, dl) - s, 0)
              for s, k, st, dl in zip(sizes, kernel, stride, dilation, strict=True)]
    lo, hi = same_padding(tuple(t + 1 for t in totals), (1,) * len(totals))
    return tuple(zip(lo, hi))


def _explicit_pairs(pairs: Any, d: int, channels_first: bool, op: str, name: str) -> Pads:
    """``d + 2`` ``[before, after]`` pairs in data-format order -> the spatial pairs."""
    if not _is_list(pairs) or len(pairs) != d + 2:
        raise ValueError(f"{op}: explicit {name} must be a list of {d + 2} [before, after] pairs, one per dimension "
                         f"of the input in data_format order; got {pairs!r}")
    checked = []
    for i, pair in enumerate(pairs):
        if not _is_list(pair) or len(pair) != 2:
            raise ValueError(f"{op}: {name}[{i}] must be a [before, after] pair of ints; got {pair!r}")
        checked.append((check_int(pair[0], f"{name}[{i}][0]", 0), check_int(pair[1], f"{name}[{i}][1]", 0)))
    channel, spatial = _layout(checked, channels_first)
    if checked[0] != (0, 0) or checked[channel] != (0, 0):
        raise ValueError(f"{op}: explicit padding must be [0, 0] in the batch and channel dimensions ({name}[0] and "
                         f"{name}[{channel}]); got {[list(p) for p in checked]}")
    return spatial


def _padding(padding: object, explicit_paddings: object, sizes: Shape, kernel: Shape, stride: Shape,
             dilation: Shape, channels_first: bool, op: str) -> Pads:
    d = len(sizes)
    if explicit_paddings is not None and (_is_list(padding) or padding != "EXPLICIT"):
        raise ValueError(f"{op}: explicit_paddings is only used with padding='EXPLICIT'; got padding={padding!r}")
    if _is_list(padding):
        return _explicit_pairs(padding, d, channels_first, op, "padding")
    rule = f"{op}: padding must be 'SAME', 'VALID' or a list of [before, after] pairs; got {padding!r}"
    if not isinstance(padding, str):
        raise TypeError(rule)
    if padding == "VALID":
        return ((0, 0),) * d
    if padding == "SAME":
        return _tf_same_padding(sizes, kernel, stride, dilation)
    if padding == "EXPLICIT":
        flat = list(explicit_paddings) if _is_list(explicit_paddings) else []  # type: ignore[call-overload]
        if len(flat) != 2 * (d + 2):
            raise ValueError(f"{op}: padding='EXPLICIT' needs explicit_paddings with {2 * (d + 2)} ints (before, "
                             f"after for each of the {d + 2} dimensions); got {explicit_paddings!r}")
        pairs = [flat[i : i + 2] for i in range(0, len(flat), 2)]
        return _explicit_pairs(pairs, d, channels_first, op, "explicit_paddings")
    hint = " (TensorFlow's names are upper-case)" if padding.upper() in ("SAME", "VALID") else ""
    raise ValueError(rule + hint)


# ----------------------------------------------------------------------------- one checked convolution


@dataclass(frozen=True)
class _Plan:
    """One TensorFlow convolution ``y = conv(x, f)`` in the core's terms (channels first, ``(O, C/G, *K)``)."""

    d: int
    channels_first: bool
    input_shape: Shape
    weight_shape: Shape
    output_shape: Shape
    stride: Shape
    dilation: Shape
    pads: Pads
    groups: int

    def kwargs(self) -> dict[str, Any]:
        return {"stride": self.stride, "padding": self.pads, "dilation": self.dilation, "groups": self.groups}

    def tf_shape(self, core_shape: Shape) -> Shape:
        """``(N, C, *S)`` in TensorFlow's data format."""
        return core_shape if self.channels_first else (core_shape[0], *core_shape[2:], core_shape[1])

    def to_core(self, a: Array) -> Array:
        """Data in TensorFlow's format -> ``(N, C, *S)`` (a view)."""
        return a if self.channels_first else np.moveaxis(a, -1, 1)

    def from_core(self, a: Array) -> Array:
        """``(N, C, *S)`` -> a new array in TensorFlow's format."""
        return a if self.channels_first else np.ascontiguousarray(np.moveaxis(a, 1, -1))

    def filters_to_core(self, f: Array) -> Array:
        """``[*K, in, out]`` -> ``(out, in, *K)`` (a view)."""
        return np.transpose(f, (self.d + 1, self.d, *range(self.d)))

    def filters_from_core(self, w: Array) -> Array:
        """``(out, in, *K)`` -> a new ``[*K, in, out]`` array."""
        return np.ascontiguousarray(w.transpose((*range(2, self.d + 2), 1, 0)))


def _plan(op: str, d: int, x_shape: Shape, f_shape: Shape, strides: object, padding: object, data_format: object,
          dilations: object, *, x_name: str, f_name: str, explicit_paddings: object = None,
          strides_name: str = "strides") -> _Plan:
    """TensorFlow's arguments -> the core's, each TensorFlow rule checked once, naming TensorFlow's arguments.

    The sizes are :mod:`convgrad._geometry`'s; the core's check of the call that follows cannot fail."""
    channels_first = _channels_first(data_format, d, op)
    layout = _FORMATS[d][int(channels_first)] if d in _FORMATS else "N" + "S" * d + "C"
    if len(x_shape) != d + 2:
        raise ValueError(f"{op}: {x_name} must have {d + 2} dimensions ({layout}); got shape {x_shape}")
    if len(f_shape) != d + 2:
        raise ValueError(f"{op}: {f_name} must have {d + 2} dimensions ([*filter_size, in_channels, out_channels]); "
                         f"got shape {f_shape}")
    for name, shape in ((x_name, x_shape), (f_name, f_shape)):
        if any(s < 1 for s in shape):
            raise ValueError(f"{op}: every dimension of {name} must be >= 1; got shape {shape}")
    channel, sizes = _layout(x_shape, channels_first)
    n, c, kernel, f_in, f_out = x_shape[0], x_shape[channel], f_shape[:d], f_shape[d], f_shape[d + 1]
    if c % f_in:
        raise ValueError(f"{op}: the input channels ({c}) must be a multiple of {f_name}.shape[{d}] ({f_in}), the "
                         f"filters' input depth (groups = input channels / filter depth)")
    groups = c // f_in
    if f_out % groups:
        raise ValueError(f"{op}: {f_name}.shape[{d + 1}] ({f_out} output channels) must be divisible by the number of "
                         f"groups {groups} (= {c} input channels / filter depth {f_in})")
    stride = _spatial(strides, d, channels_first, strides_name, op)
    dilation = _spatial(dilations, d, channels_first, "dilations", op)
    pads = _padding(padding, explicit_paddings, sizes, kernel, stride, dilation, channels_first, op)
    out = tuple(out_size(s, k, st, dl, lo, hi) for s, k, st, dl, (lo, hi) in zip(sizes, kernel, stride, dilation, pads))
    for i, (q, s, k, dl, (lo, hi)) in enumerate(zip(out, sizes, kernel, dilation, pads)):
        if q < 1:
            span = transposed_size(1, k, dilation=dl)  # the input one output needs
            raise ValueError(f"{op}: output size would be < 1 in spatial dimension {i}: input size {s} + padding {lo} "
                             f"+ {hi} is smaller than the dilated filter size {span} (dilation {dl} * (filter {k} - 1) "
                             f"+ 1)")
    return _Plan(d, channels_first, (n, c, *sizes), (f_out, f_in, *kernel), (n, f_out, *out), stride, dilation, pads,
                 groups)


def _check_shape(a: Array, expected: Shape, name: str, op: str, why: str) -> None:
    if a.shape != expected:
        raise ValueError(f"{op}: {name}.shape {a.shape} must equal {expected}, {why}")


def _rank(a: Array, d: int, name: str, op: str) -> None:
    if a.ndim != d + 2:
        raise ValueError(f"{op}: {name} must have {d + 2} dimensions; got shape {a.shape}")


def _ndim_of(input: ArrayLike, op: str) -> int:  # d of the generic names
    x = check_array(input, "input")
    if x.ndim < 3:
        raise ValueError(f"{op}: input must have at least 3 dimensions (batch, spatial..., channels); "
                         f"got shape {x.shape}")
    return x.ndim - 2


# ----------------------------------------------------------------------------- the generic operations


def _forward(op: str, d: int, input: ArrayLike, filters: ArrayLike, strides: object, padding: object,
             data_format: object, dilations: object, *, f_name: str = "filters",
             strides_name: str = "strides") -> Array:
    x, f = check_array(input, "input"), check_array(filters, f_name)
    p = _plan(op, d, x.shape, f.shape, strides, padding, data_format, dilations, x_name="input", f_name=f_name,
              strides_name=strides_name)
    return p.from_core(_conv(p.to_core(x), p.filters_to_core(f), **p.kwargs()))


def _backward(op: str, d: int, grad_output: ArrayLike, input: ArrayLike, filters: ArrayLike, strides: object,
              padding: object, data_format: object, dilations: object, *, f_name: str = "filters",
              strides_name: str = "strides") -> TFGrads:
    g, x, f = check_array(grad_output, "grad_output"), check_array(input, "input"), check_array(filters, f_name)
    p = _plan(op, d, x.shape, f.shape, strides, padding, data_format, dilations, x_name="input", f_name=f_name,
              strides_name=strides_name)
    _check_shape(g, p.tf_shape(p.output_shape), "grad_output", op, "the shape of the forward output")
    gc = p.to_core(g)
    gx = _input_grad(gc, p.filters_to_core(f), input_shape=p.input_shape, **p.kwargs())
    gw = _weight_grad(gc, p.to_core(x), weight_shape=p.weight_shape, **p.kwargs())
    return TFGrads(p.from_core(gx), p.filters_from_core(gw))


def _input_grad_plan(op: str, d: int, sizes_arg: object, f: Array, g: Array, strides: object, padding: object,
                     data_format: object, dilations: object, explicit_paddings: object, *, sizes_name: str,
                     f_name: str, g_name: str, channels: Optional[int] = None) -> _Plan:
    """The forward convolution whose input (of ``sizes_arg``) gradient is wanted; checks ``g`` is its output."""
    _rank(f, d, f_name, op)
    _rank(g, d, g_name, op)
    sizes = normalize_shape(sizes_arg, sizes_name)
    if len(sizes) == d:
        c = f.shape[d] if channels is None else channels
        sizes = (g.shape[0], c, *sizes) if _channels_first(data_format, d, op) else (g.shape[0], *sizes, c)
    elif len(sizes) != d + 2:
        raise ValueError(f"{op}: {sizes_name} must hold the {d} spatial sizes or the full {d + 2}-D shape; "
                         f"got {list(sizes)}")
    p = _plan(op, d, sizes, f.shape, strides, padding, data_format, dilations, x_name=sizes_name, f_name=f_name,
              explicit_paddings=explicit_paddings)
    _check_shape(g, p.tf_shape(p.output_shape), g_name, op,
                 f"the output shape of the forward convolution of {sizes_name} {list(sizes)} with {f_name}.shape "
                 f"{f.shape}, strides {p.stride}, dilations {p.dilation} and padding {padding!r} (per dimension "
                 f"(before, after) = {p.pads})")
    return p


def _backprop_input(op: str, d: int, input_sizes: object, filter: ArrayLike, out_backprop: ArrayLike, strides: object,
                    padding: object, data_format: object, dilations: object, explicit_paddings: object = None, *,
                    sizes_name: str = "input_sizes", f_name: str = "filter", g_name: str = "out_backprop",
                    channels: Optional[int] = None) -> Array:
    f, g = check_array(filter, f_name), check_array(out_backprop, g_name)
    p = _input_grad_plan(op, d, input_sizes, f, g, strides, padding, data_format, dilations, explicit_paddings,
                         sizes_name=sizes_name, f_name=f_name, g_name=g_name, channels=channels)
    return p.from_core(_input_grad(p.to_core(g), p.filters_to_core(f), input_shape=p.input_shape, **p.kwargs()))


def _backprop_filter(op: str, d: int, input: ArrayLike, filter_sizes: object, out_backprop: ArrayLike,
                     strides: object, padding: object, data_format: object, dilations: object,
                     explicit_paddings: object = None) -> Array:
    x, g = check_array(input, "input"), check_array(out_backprop, "out_backprop")
    sizes = normalize_shape(filter_sizes, "filter_sizes")
    p = _plan(op, d, x.shape, sizes, strides, padding, data_format, dilations, x_name="input",
              f_name="filter_sizes", explicit_paddings=explicit_paddings)
    _check_shape(g, p.tf_shape(p.output_shape), "out_backprop", op, "the shape of the forward output")
    gw = _weight_grad(p.to_core(g), p.to_core(x), weight_shape=p.weight_shape, **p.kwargs())
    return p.filters_from_core(gw)


def _transpose(op: str, d: int, input: ArrayLike, filters: ArrayLike, output_shape: object, strides: object,
               padding: object, data_format: object, dilations: object) -> Array:
    return _backprop_input(op, d, output_shape, filters, input, strides, padding, data_format, dilations,
                           sizes_name="output_shape", f_name="filters", g_name="input")


def _transpose_backward(op: str, d: int, grad_output: ArrayLike, input: ArrayLike, filters: ArrayLike,
                        output_shape: object, strides: object, padding: object, data_format: object,
                        dilations: object) -> TFGrads:
    g, x, f = check_array(grad_output, "grad_output"), check_array(input, "input"), check_array(filters, "filters")
    p = _input_grad_plan(op, d, output_shape, f, x, strides, padding, data_format, dilations, None,
                         sizes_name="output_shape", f_name="filters", g_name="input")
    _check_shape(g, p.tf_shape(p.input_shape), "grad_output", op, "output_shape")
    gc, xc, w = p.to_core(g), p.to_core(x), p.filters_to_core(f)
    # The transpose is A^T x for the forward convolution A of output_shape: its input
    # gradient is A g, its filter gradient the forward weight gradient with x upstream of g.
    gx = _conv(gc, w, **p.kwargs())
    gw = _weight_grad(xc, gc, weight_shape=p.weight_shape, **p.kwargs())
    return TFGrads(p.from_core(gx), p.filters_from_core(gw))


def _depthwise_args(op: str, input: ArrayLike, filter: ArrayLike, data_format: object, dilations: object,
                    rate: object) -> tuple[Array, Array, object]:
    x, f = check_array(input, "input"), check_array(filter, "filter")
    if rate is not None and dilations is not None:
        raise ValueError(f"{op}: give dilations or its older name rate, not both; got dilations={dilations!r}, "
                         f"rate={rate!r}")
    _rank(f, 2, "filter", op)
    _depthwise_channels(op, x, f.shape[2], "filter.shape[2]", data_format)
    return x, f, dilations if rate is None else rate


def _depthwise_channels(op: str, x: Array, depth: int, what: str, data_format: object) -> None:
    _rank(x, 2, "input", op)
    c = x.shape[_layout(x.shape, _channels_first(data_format, 2, op))[0]]
    if depth != c:
        raise ValueError(f"{op}: {what} ({depth}) must equal the input channels ({c})")


def _grouped(f: Array) -> Array:
    """Depthwise ``[kh, kw, C, M]`` -> grouped ``[kh, kw, 1, C·M]``: output channel ``k·M + q`` is ``f[..., k, q]``."""
    return f.reshape(f.shape[0], f.shape[1], 1, f.shape[2] * f.shape[3])


# ----------------------------------------------------------------------------- one docstring template per family


def _words(d: Optional[int]) -> dict[str, str]:
    """The words a docstring for ``d`` spatial dimensions (``None``: any) is written with."""
    if d is None:
        return {"S": "*S", "K": "*K", "Y": "(N, *Q, O) or (N, O, *Q)", "n": "d + 2", "lengths": "1, d or d + 2",
                "d": "d", "formats": "str, optional\n    None (channels last) or a format of conv1d/2d/3d."}
    (last, first), axes = _FORMATS[d], _FORMATS[d][0][1:-1].lower()  # "NHWC" -> "hw"
    q = ", ".join("Q_" + a for a in axes)
    return {"d": str(d), "S": ", ".join(axes.upper()), "K": ", ".join("k" + a for a in axes), "n": str(d + 2),
            "Y": f"(N, {q}, O) or (N, O, {q})", "lengths": _lengths(d), "formats": f'{{"{last}", "{first}"}}'}


_PARAMS = {  # numpydoc entries by argument name; "_t": of a transposed op, "_dw": of a depthwise op
    "grad_output": "array_like, shape={Y}\n    ``∂L/∂y`` for the forward output ``y``.",
    "grad_output_t": "array_like, shape=output_shape\n    ``∂L/∂y`` for the transpose's output ``y``.",
    "input": "array_like, shape=(N, {S}, C) or (N, C, {S})",
    "input_t": "array_like, shape={Y}\n    Shaped like the output of the forward convolution of ``output_shape``.",
    "filters": "array_like, shape=({K}, C / groups, O)\n    Groups are ``C / {name}.shape[{d}]``.",
    "filters_t": "array_like, shape=({K}, C / groups, O)\n    Those of the forward convolution of ``output_shape``.",
    "filters_dw": "array_like, shape=(kh, kw, C, M)\n    ``M`` filters (the channel multiplier) per input channel.",
    "output_shape": "sequence of int\n    ``(N, {S}, C)`` in data-format order, or only the spatial sizes.",
    "input_sizes": "sequence of int\n    The forward input's ``(N, {S}, C)`` (data-format order) or spatial sizes.",
    "filter_sizes": "sequence of int\n    The filter's shape, ``[{K}, C / groups, O]``.",
    "filter_sizes_dw": "sequence of int\n    The filter's shape, ``[kh, kw, C, M]``.",
    "out_backprop": "array_like, shape={Y}\n    ``∂L/∂y`` for the forward output ``y``.",
    "strides": "int or list of {lengths} ints\n    One per spatial dimension, or {n} with 1 at batch and channel.",
    "padding": '"SAME", "VALID"{explicit} or a list of {n} [before, after] pairs\n    SAME: ``ceil(S / s)`` '
               "outputs; pairs in data-format order, [0, 0] at batch and channel (module docstring).",
    "explicit_paddings": 'sequence of int, optional\n    With ``padding="EXPLICIT"``: the {n} pairs, flattened.',
    "data_format": "{formats}",
    "rate": "int or list of ints, optional\n    TensorFlow 1's name for ``dilations`` (give one or the other).",
    "name": "str, optional\n    Ignored.",
}


def _doc(title: Optional[str], examples: str) -> Callable[[_F], _F]:
    """Give a public function its family's docstring: ``d`` and the family from its name, the parameters from its
    signature; ``title`` (``None``: "the d-D 2-D op") and ``examples`` (``[paragraph, blank line,] doctests``)."""

    def attach(fn: _F) -> _F:
        op, names = fn.__name__, [p for p in inspect.signature(fn).parameters if p != "dilations"]
        d = next((int(c) for c in "123" if f"conv{c}d" in op), None)
        words = _words(d) | {"explicit": ', "EXPLICIT"' if "explicit_paddings" in names else ""}
        if "depthwise" in op:
            words["Y"] = words["Y"].replace("O", "C·M")
        params = []
        for name in names:
            key = {"filter": "filters", "stride": "strides"}.get(name, name)
            key += "_t" if "transpose" in op and key in ("input", "filters", "grad_output") else ""
            key += "_dw" if "depthwise" in op and key + "_dw" in _PARAMS else ""
            entry = _PARAMS[key].format(name=name, **words)
            params.append(f"{name}, dilations : {entry}" if key == "strides" else f"{name} : {entry}")
        shaped = {"transpose": "output_shape", "input": "input_sizes", "filter": "filter_sizes"}
        returns = f"TFGrads\n    ``(input, {names[2]})``, shaped like them." if op.endswith("backward") else (
            "numpy.ndarray, shape=" + next((v for k, v in shaped.items() if op.endswith(k)), words["Y"]))
        tf = "" if "back" in op else f", as ``tf.nn.{op}``"
        head = title if title is not None else f"The {d}-D :func:`{op.replace(f'conv{d}d', 'conv2d')}`{tf}."
        intro, code = ("", examples) if examples.startswith(">>>") else examples.split("\n\n", 1)
        fn.__doc__ = (f"{head}\n\nParameters\n----------\n" + "\n".join(params) + "\n\nReturns\n-------\n"
                      f"{returns}\n\nExamples\n--------\n{intro + chr(10) * 2 if intro else ''}"
                      f">>> import numpy as np\n>>> from convgrad import tensorflow as tfc\n{code}\n")
        return fn

    return attach


# ----------------------------------------------------------------------------- forward ops, their gradients, transposes


@_doc("""2-D convolution (cross-correlation), as ``tf.nn.conv2d``.

``output[b, i, j, k] = Σ_{di, dj, q} pad(input)[b, s₀·i + δ₀·di, s₁·j + δ₁·dj, q] · filters[di, dj, q, k]``.""",
      """A 3×3 image under a 3×3 Sobel filter; SAME at stride 2 pads after.

>>> x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
>>> f = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]).reshape(3, 3, 1, 1)
>>> tfc.conv2d(x, f, strides=[1, 1, 1, 1], padding="VALID")
array([[[[-8.]]]])
>>> tfc.conv2d(np.ones((1, 5, 5, 1)), np.ones((2, 2, 1, 1)), 2, "SAME")[0, :, :, 0]
array([[4., 4., 2.],
       [4., 4., 2.],
       [2., 2., 1.]])""")
def conv2d(input: ArrayLike, filters: ArrayLike, /, strides: IntList, padding: TFPadding, *,
           data_format: str = "NHWC", dilations: IntList = None, name: Optional[str] = None) -> Array:
    return _forward("conv2d", 2, input, filters, strides, padding, data_format, dilations)


@_doc(None, """>>> tfc.conv1d(np.arange(5.0).reshape(1, 5, 1), np.array([[[1.0]], [[-1.0]]]), 1, "SAME").ravel()
array([-1., -1., -1., -1.,  4.])""")
def conv1d(input: ArrayLike, filters: ArrayLike, /, stride: IntList, padding: TFPadding, *,
           data_format: str = "NWC", dilations: IntList = None, name: Optional[str] = None) -> Array:
    return _forward("conv1d", 1, input, filters, stride, padding, data_format, dilations, strides_name="stride")


@_doc(None, """>>> tfc.conv3d(np.ones((1, 4, 4, 4, 2)), np.ones((2, 2, 2, 2, 3)), [1, 2, 2, 2, 1], "VALID").shape
(1, 2, 2, 2, 3)""")
def conv3d(input: ArrayLike, filters: ArrayLike, /, strides: IntList, padding: TFPadding, *,
           data_format: str = "NDHWC", dilations: IntList = None, name: Optional[str] = None) -> Array:
    return _forward("conv3d", 3, input, filters, strides, padding, data_format, dilations)


@_doc("N-d convolution, as ``tf.nn.convolution``; ``d = input.ndim − 2`` (any ``d ≥ 1``).", """\
>>> x = np.arange(12.0).reshape(1, 2, 6)            # NCW: two channels of length 6
>>> tfc.convolution(x, np.ones((3, 2, 1)), padding="SAME", data_format="NCW")
array([[[14., 24., 30., 36., 42., 30.]]])""")
def convolution(input: ArrayLike, filters: ArrayLike, /, strides: IntList = None, padding: TFPadding = "VALID", *,
                data_format: Optional[str] = None, dilations: IntList = None, name: Optional[str] = None) -> Array:
    return _forward("convolution", _ndim_of(input, "convolution"), input, filters, strides, padding, data_format,
                    dilations)


@_doc("""Depthwise 2-D convolution, as ``tf.nn.depthwise_conv2d``.

``output[b, i, j, k·M + q] = Σ_{di, dj} filter[di, dj, k, q] · pad(input)[b, s₀·i + δ₀·di, s₁·j + δ₁·dj, k]``:
the grouped convolution with ``groups = C`` and filters ``filter.reshape(kh, kw, 1, C·M)``.""", """\
The example of TensorFlow's documentation:

>>> x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).reshape(1, 3, 2, 1)
>>> kernel = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 1, 1, 2)
>>> tfc.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="VALID")
array([[[[10., 14.],
         [14., 20.]],
<BLANKLINE>
        [[18., 26.],
         [22., 32.]]]])""")
def depthwise_conv2d(input: ArrayLike, filter: ArrayLike, /, strides: IntList, padding: TFPadding, *,
                     data_format: Optional[str] = None, dilations: IntList = None, rate: IntList = None,
                     name: Optional[str] = None) -> Array:
    x, f, dil = _depthwise_args("depthwise_conv2d", input, filter, data_format, dilations, rate)
    return _forward("depthwise_conv2d", 2, x, _grouped(f), strides, padding, data_format, dil, f_name="filter")


@_doc("""Both gradients of :func:`conv2d`, as ``tape.gradient(y, [input, filters], grad_output)``.

The core's input and weight gradients of one convolution (:func:`conv2d_backprop_input` and
:func:`conv2d_backprop_filter` in one call).""", """\
The 3×3 image under a 3×3 Sobel filter, with ``GradientTape``: the gradients of ``L = sum(conv2d(x, f))``.

>>> x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
>>> f = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]).reshape(3, 3, 1, 1)
>>> dx, df = tfc.conv2d_backward(np.ones((1, 1, 1, 1)), x, f, strides=[1, 1, 1, 1], padding="VALID")
>>> np.array_equal(df, x.reshape(3, 3, 1, 1))
True
>>> dx[0, :, :, 0]
array([[ 1.,  0., -1.],
       [ 2.,  0., -2.],
       [ 1.,  0., -1.]])""")
def conv2d_backward(grad_output: ArrayLike, input: ArrayLike, filters: ArrayLike, /, strides: IntList,
                    padding: TFPadding, *, data_format: str = "NHWC", dilations: IntList = None) -> TFGrads:
    return _backward("conv2d_backward", 2, grad_output, input, filters, strides, padding, data_format, dilations)


@_doc(None, """>>> x, f = np.arange(3.0).reshape(1, 3, 1), np.ones((2, 1, 1))
>>> g = tfc.conv1d_backward(np.ones((1, 2, 1)), x, f, 1, "VALID")
>>> g.input.ravel(), g.filters.ravel()
(array([1., 2., 1.]), array([1., 3.]))""")
def conv1d_backward(grad_output: ArrayLike, input: ArrayLike, filters: ArrayLike, /, stride: IntList,
                    padding: TFPadding, *, data_format: str = "NWC", dilations: IntList = None) -> TFGrads:
    return _backward("conv1d_backward", 1, grad_output, input, filters, stride, padding, data_format, dilations,
                     strides_name="stride")


@_doc(None, """>>> x, f = np.ones((1, 2, 2, 2, 1)), np.ones((2, 2, 2, 1, 1))
>>> g = tfc.conv3d_backward(np.ones((1, 1, 1, 1, 1)), x, f, 1, "VALID")
>>> g.input.shape, g.filters.shape, float(g.filters.sum())
((1, 2, 2, 2, 1), (2, 2, 2, 1, 1), 8.0)""")
def conv3d_backward(grad_output: ArrayLike, input: ArrayLike, filters: ArrayLike, /, strides: IntList,
                    padding: TFPadding, *, data_format: str = "NDHWC", dilations: IntList = None) -> TFGrads:
    return _backward("conv3d_backward", 3, grad_output, input, filters, strides, padding, data_format, dilations)


@_doc("Both gradients of :func:`convolution` (see :func:`conv2d_backward`).", """\
>>> g = tfc.convolution_backward(np.ones((1, 3, 1)), np.ones((1, 3, 1)), np.ones((2, 1, 1)), padding="SAME")
>>> g.input.ravel(), g.filters.ravel()
(array([1., 2., 2.]), array([3., 2.]))""")
def convolution_backward(grad_output: ArrayLike, input: ArrayLike, filters: ArrayLike, /, strides: IntList = None,
                         padding: TFPadding = "VALID", *, data_format: Optional[str] = None,
                         dilations: IntList = None) -> TFGrads:
    d = _ndim_of(input, "convolution_backward")
    return _backward("convolution_backward", d, grad_output, input, filters, strides, padding, data_format, dilations)


@_doc("Both gradients of :func:`depthwise_conv2d` (see :func:`conv2d_backward`).", """\
>>> x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).reshape(1, 3, 2, 1)
>>> kernel = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 1, 1, 2)
>>> tfc.depthwise_conv2d_backward(np.ones((1, 2, 2, 2)), x, kernel, 1, "VALID").filters[:, 0, 0, :]
array([[10., 10.],
       [18., 18.]])""")
def depthwise_conv2d_backward(grad_output: ArrayLike, input: ArrayLike, filter: ArrayLike, /, strides: IntList,
                              padding: TFPadding, *, data_format: Optional[str] = None, dilations: IntList = None,
                              rate: IntList = None) -> TFGrads:
    op = "depthwise_conv2d_backward"
    x, f, dil = _depthwise_args(op, input, filter, data_format, dilations, rate)
    gx, gw = _backward(op, 2, grad_output, x, _grouped(f), strides, padding, data_format, dil, f_name="filter")
    return TFGrads(gx, gw.reshape(f.shape))


@_doc("""The transpose of :func:`conv2d`, as ``tf.nn.conv2d_transpose``.

The input gradient of the forward convolution of an ``output_shape`` input with ``filters`` (what
``Conv2DBackpropInput`` computes): the padding is that convolution's (for SAME, computed from
``output_shape``), and its output size must equal ``input``'s spatial size.""", """\
The 3×3 image under a 3×3 Sobel filter, ``conv2d_transpose(y, f, tf.shape(x), ...)``: the upstream
gradient ``y = −8`` pulled back.

>>> f = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]).reshape(3, 3, 1, 1)
>>> tfc.conv2d_transpose(np.array([[[[-8.0]]]]), f, [3, 3], strides=[1, 1, 1, 1], padding="VALID")[0, :, :, 0]
array([[ -8.,   0.,   8.],
       [-16.,   0.,  16.],
       [ -8.,   0.,   8.]])
>>> tfc.conv2d_transpose(np.ones((1, 2, 2, 1)), np.ones((3, 3, 1, 1)), [1, 4, 4, 1], 2)[0, :, :, 0]
array([[1., 1., 2., 1.],
       [1., 1., 2., 1.],
       [2., 2., 4., 2.],
       [1., 1., 2., 1.]])""")
def conv2d_transpose(input: ArrayLike, filters: ArrayLike, /, output_shape: ShapeLike, strides: IntList,
                     padding: TFPadding = "SAME", *, data_format: str = "NHWC", dilations: IntList = None,
                     name: Optional[str] = None) -> Array:
    return _transpose("conv2d_transpose", 2, input, filters, output_shape, strides, padding, data_format, dilations)


@_doc(None, """>>> tfc.conv1d_transpose(np.ones((1, 2, 1)), np.array([1.0, 2.0, 3.0]).reshape(3, 1, 1), [4], 2).ravel()
array([2., 3., 3., 3.])""")
def conv1d_transpose(input: ArrayLike, filters: ArrayLike, /, output_shape: ShapeLike, strides: IntList,
                     padding: TFPadding = "SAME", *, data_format: str = "NWC", dilations: IntList = None,
                     name: Optional[str] = None) -> Array:
    return _transpose("conv1d_transpose", 1, input, filters, output_shape, strides, padding, data_format, dilations)


@_doc(None, """>>> tfc.conv3d_transpose(np.ones((1, 2, 2, 2, 3)), np.ones((2, 2, 2, 4, 3)), [1, 4, 4, 4, 4], 2).shape
(1, 4, 4, 4, 4)""")
def conv3d_transpose(input: ArrayLike, filters: ArrayLike, /, output_shape: ShapeLike, strides: IntList,
                     padding: TFPadding = "SAME", *, data_format: str = "NDHWC", dilations: IntList = None,
                     name: Optional[str] = None) -> Array:
    return _transpose("conv3d_transpose", 3, input, filters, output_shape, strides, padding, data_format, dilations)


@_doc("The transpose of :func:`convolution`, as ``tf.nn.conv_transpose``; ``d = input.ndim − 2``.", """\
>>> tfc.conv_transpose(np.ones((1, 2, 1)), np.array([1.0, 2.0]).reshape(2, 1, 1), [1, 4, 1], 2, "VALID").ravel()
array([1., 2., 1., 2.])""")
def conv_transpose(input: ArrayLike, filters: ArrayLike, /, output_shape: ShapeLike, strides: IntList,
                   padding: TFPadding = "SAME", *, data_format: Optional[str] = None, dilations: IntList = None,
                   name: Optional[str] = None) -> Array:
    d = _ndim_of(input, "conv_transpose")
    return _transpose("conv_transpose", d, input, filters, output_shape, strides, padding, data_format, dilations)


@_doc("""Both gradients of :func:`conv2d_transpose`.

The transpose is ``Aᵀ input`` for the forward convolution ``A`` of ``output_shape``: its input gradient is
``A grad_output`` (a :func:`conv2d`) and its filter gradient the forward filter gradient with ``grad_output``
as the input and ``input`` as the upstream gradient.""", """\
>>> g = tfc.conv2d_transpose_backward(np.ones((1, 3, 3, 1)), np.ones((1, 1, 1, 1)), np.arange(9.0).reshape(3, 3, 1, 1),
...                                   [3, 3], 1, "VALID")
>>> g.input.ravel(), g.filters.ravel()
(array([36.]), array([1., 1., 1., 1., 1., 1., 1., 1., 1.]))""")
def conv2d_transpose_backward(grad_output: ArrayLike, input: ArrayLike, filters: ArrayLike, /,
                              output_shape: ShapeLike, strides: IntList, padding: TFPadding = "SAME", *,
                              data_format: str = "NHWC", dilations: IntList = None) -> TFGrads:
    return _transpose_backward("conv2d_transpose_backward", 2, grad_output, input, filters, output_shape, strides,
                               padding, data_format, dilations)


@_doc(None, """>>> x, f, g = np.ones((1, 2, 1)), np.array([1.0, 2.0]).reshape(2, 1, 1), np.array([1.0, 0.0, 0.0, 1.0])
>>> grads = tfc.conv1d_transpose_backward(g.reshape(1, 4, 1), x, f, [4], 2, "VALID")
>>> grads.input.ravel(), grads.filters.ravel()
(array([1., 2.]), array([1., 1.]))""")
def conv1d_transpose_backward(grad_output: ArrayLike, input: ArrayLike, filters: ArrayLike, /,
                              output_shape: ShapeLike, strides: IntList, padding: TFPadding = "SAME", *,
                              data_format: str = "NWC", dilations: IntList = None) -> TFGrads:
    return _transpose_backward("conv1d_transpose_backward", 1, grad_output, input, filters, output_shape, strides,
                               padding, data_format, dilations)


@_doc(None, """>>> x, f = np.ones((1, 1, 1, 1, 1)), np.ones((2, 2, 2, 1, 1))
>>> g = tfc.conv3d_transpose_backward(np.ones((1, 2, 2, 2, 1)), x, f, [2, 2, 2], 1, "VALID")
>>> float(g.input.sum()), g.filters.shape
(8.0, (2, 2, 2, 1, 1))""")
def conv3d_transpose_backward(grad_output: ArrayLike, input: ArrayLike, filters: ArrayLike, /,
                              output_shape: ShapeLike, strides: IntList, padding: TFPadding = "SAME", *,
                              data_format: str = "NDHWC", dilations: IntList = None) -> TFGrads:
    return _transpose_backward("conv3d_transpose_backward", 3, grad_output, input, filters, output_shape, strides,
                               padding, data_format, dilations)


@_doc("Both gradients of :func:`conv_transpose` (see :func:`conv2d_transpose_backward`).", """\
>>> x, f = np.ones((1, 2, 1)), np.array([1.0, 2.0]).reshape(2, 1, 1)
>>> g = tfc.conv_transpose_backward(np.arange(4.0).reshape(1, 4, 1), x, f, [1, 4, 1], 2, "VALID")
>>> g.input.ravel(), g.filters.ravel()
(array([2., 8.]), array([2., 4.]))""")
def conv_transpose_backward(grad_output: ArrayLike, input: ArrayLike, filters: ArrayLike, /, output_shape: ShapeLike,
                            strides: IntList, padding: TFPadding = "SAME", *, data_format: Optional[str] = None,
                            dilations: IntList = None) -> TFGrads:
    return _transpose_backward("conv_transpose_backward", _ndim_of(input, "conv_transpose_backward"), grad_output,
                               input, filters, output_shape, strides, padding, data_format, dilations)


# ----------------------------------------------------------------------------- the gradient ops (tf.raw_ops)


@_doc("""Gradient of :func:`conv2d` with respect to its input, as ``Conv2DBackpropInput``.

What ``tape.gradient(conv2d(x, filter, ...), x, output_gradients=out_backprop)`` returns for an ``x`` of
shape ``input_sizes``.""", """\
>>> f = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]).reshape(3, 3, 1, 1)
>>> tfc.conv2d_backprop_input([1, 3, 3, 1], f, np.ones((1, 1, 1, 1)), [1, 1, 1, 1], "VALID")[0, :, :, 0]
array([[ 1.,  0., -1.],
       [ 2.,  0., -2.],
       [ 1.,  0., -1.]])""")
def conv2d_backprop_input(input_sizes: ShapeLike, filter: ArrayLike, out_backprop: ArrayLike, /, strides: IntList,
                          padding: TFPadding, *, explicit_paddings: Optional[Sequence[int]] = None,
                          data_format: str = "NHWC", dilations: IntList = None, name: Optional[str] = None) -> Array:
    return _backprop_input("conv2d_backprop_input", 2, input_sizes, filter, out_backprop, strides, padding,
                           data_format, dilations, explicit_paddings)


@_doc(None, """>>> f = np.array([1.0, 2.0]).reshape(2, 1, 1)
>>> tfc.conv1d_backprop_input([1, 4, 1], f, np.ones((1, 3, 1)), 1, "VALID").ravel()
array([1., 3., 3., 2.])""")
def conv1d_backprop_input(input_sizes: ShapeLike, filter: ArrayLike, out_backprop: ArrayLike, /, strides: IntList,
                          padding: TFPadding, *, explicit_paddings: Optional[Sequence[int]] = None,
                          data_format: str = "NWC", dilations: IntList = None, name: Optional[str] = None) -> Array:
    return _backprop_input("conv1d_backprop_input", 1, input_sizes, filter, out_backprop, strides, padding,
                           data_format, dilations, explicit_paddings)


@_doc("The 3-D :func:`conv2d_backprop_input`, as ``Conv3DBackpropInputV2``.", """\
>>> gx = tfc.conv3d_backprop_input([1, 3, 3, 3, 1], np.ones((2, 2, 2, 1, 1)), np.ones((1, 2, 2, 2, 1)), 1, "VALID")
>>> float(gx.sum()), float(gx[0, 1, 1, 1, 0])
(64.0, 8.0)""")
def conv3d_backprop_input(input_sizes: ShapeLike, filter: ArrayLike, out_backprop: ArrayLike, /, strides: IntList,
                          padding: TFPadding, *, explicit_paddings: Optional[Sequence[int]] = None,
                          data_format: str = "NDHWC", dilations: IntList = None, name: Optional[str] = None) -> Array:
    return _backprop_input("conv3d_backprop_input", 3, input_sizes, filter, out_backprop, strides, padding,
                           data_format, dilations, explicit_paddings)


@_doc("Gradient of :func:`depthwise_conv2d` with respect to its input, as "
      "``tf.nn.depthwise_conv2d_backprop_input``.", """\
>>> f = np.ones((2, 2, 1, 2))       # one channel, multiplier 2
>>> tfc.depthwise_conv2d_backprop_input([1, 2, 2, 1], f, np.ones((1, 1, 1, 2)), 1, "VALID")[0, :, :, 0]
array([[2., 2.],
       [2., 2.]])""")
def depthwise_conv2d_backprop_input(input_sizes: ShapeLike, filter: ArrayLike, out_backprop: ArrayLike, /,
                                    strides: IntList, padding: TFPadding, *,
                                    explicit_paddings: Optional[Sequence[int]] = None, data_format: str = "NHWC",
                                    dilations: IntList = None, name: Optional[str] = None) -> Array:
    op = "depthwise_conv2d_backprop_input"
    f = check_array(filter, "filter")
    _rank(f, 2, "filter", op)
    return _backprop_input(op, 2, input_sizes, _grouped(f), out_backprop, strides, padding, data_format, dilations,
                           explicit_paddings, channels=f.shape[2])


@_doc("Gradient of :func:`conv2d` with respect to its filter, as ``Conv2DBackpropFilter``.", """\
>>> x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
>>> tfc.conv2d_backprop_filter(x, [2, 2, 1, 1], np.ones((1, 2, 2, 1)), 1, "VALID")[:, :, 0, 0]
array([[12., 16.],
       [24., 28.]])""")
def conv2d_backprop_filter(input: ArrayLike, filter_sizes: ShapeLike, out_backprop: ArrayLike, /, strides: IntList,
                           padding: TFPadding, *, explicit_paddings: Optional[Sequence[int]] = None,
                           data_format: str = "NHWC", dilations: IntList = None, name: Optional[str] = None) -> Array:
    return _backprop_filter("conv2d_backprop_filter", 2, input, filter_sizes, out_backprop, strides, padding,
                            data_format, dilations, explicit_paddings)


@_doc(None, """>>> x = np.arange(4.0).reshape(1, 4, 1)
>>> tfc.conv1d_backprop_filter(x, [2, 1, 1], np.ones((1, 3, 1)), 1, "VALID").ravel()
array([3., 6.])""")
def conv1d_backprop_filter(input: ArrayLike, filter_sizes: ShapeLike, out_backprop: ArrayLike, /, strides: IntList,
                           padding: TFPadding, *, explicit_paddings: Optional[Sequence[int]] = None,
                           data_format: str = "NWC", dilations: IntList = None, name: Optional[str] = None) -> Array:
    return _backprop_filter("conv1d_backprop_filter", 1, input, filter_sizes, out_backprop, strides, padding,
                            data_format, dilations, explicit_paddings)


@_doc("The 3-D :func:`conv2d_backprop_filter`, as ``Conv3DBackpropFilterV2``.", """\
>>> tfc.conv3d_backprop_filter(np.ones((1, 3, 3, 3, 1)), [2, 2, 2, 1, 1], np.ones((1, 2, 2, 2, 1)), 1, "VALID").ravel()
array([8., 8., 8., 8., 8., 8., 8., 8.])""")
def conv3d_backprop_filter(input: ArrayLike, filter_sizes: ShapeLike, out_backprop: ArrayLike, /, strides: IntList,
                           padding: TFPadding, *, explicit_paddings: Optional[Sequence[int]] = None,
                           data_format: str = "NDHWC", dilations: IntList = None, name: Optional[str] = None) -> Array:
    return _backprop_filter("conv3d_backprop_filter", 3, input, filter_sizes, out_backprop, strides, padding,
                            data_format, dilations, explicit_paddings)


@_doc("Gradient of :func:`depthwise_conv2d` with respect to its filter, as "
      "``tf.nn.depthwise_conv2d_backprop_filter``.", """\
>>> x = np.arange(8.0).reshape(1, 2, 2, 2)    # two channels
>>> tfc.depthwise_conv2d_backprop_filter(x, [1, 1, 2, 1], np.ones((1, 2, 2, 2)), 1, "VALID").ravel()
array([12., 16.])""")
def depthwise_conv2d_backprop_filter(input: ArrayLike, filter_sizes: ShapeLike, out_backprop: ArrayLike, /,
                                     strides: IntList, padding: TFPadding, *,
                                     explicit_paddings: Optional[Sequence[int]] = None, data_format: str = "NHWC",
                                     dilations: IntList = None, name: Optional[str] = None) -> Array:
    op = "depthwise_conv2d_backprop_filter"
    sizes = normalize_shape(filter_sizes, "filter_sizes")
    if len(sizes) != 4:
        raise ValueError(f"{op}: filter_sizes must be [kh, kw, in_channels, channel_multiplier]; got {list(sizes)}")
    x = check_array(input, "input")
    _depthwise_channels(op, x, sizes[2], "filter_sizes[2]", data_format)
    gw = _backprop_filter(op, 2, x, (*sizes[:2], 1, sizes[2] * sizes[3]), out_backprop, strides, padding, data_format,
                          dilations, explicit_paddings)
    return gw.reshape(sizes)
