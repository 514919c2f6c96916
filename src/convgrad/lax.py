"""JAX's ``lax`` convolutions on NumPy arrays, with the gradients ``jax.vjp`` returns.

The names, argument orders and semantics of ``jax.lax.conv_general_dilated``,
``conv``, ``conv_with_general_padding``, ``conv_transpose`` and
``conv_dimension_numbers`` (JAX is not needed): any layout given by
``dimension_numbers`` (letter strings in any order, any number of spatial
dimensions, or a :class:`ConvDimensionNumbers`), ``padding`` ``"SAME"``,
``"SAME_LOWER"``, ``"VALID"`` or ``(low, high)`` pairs that may be negative (a
crop), ``lhs_dilation`` (zeros between the input's entries), ``rhs_dilation``,
``feature_group_count`` and ``batch_group_count`` (XLA's grouping of the
batch, how XLA writes the weight gradient of a grouped convolution).

Every function moves the axes into the core's order — ``(N, C, *S)`` and
``(O, I, *K)``, the spatial dimensions in the order of ``rhs_spec`` (so
``window_strides[i]`` belongs to the ``i``-th spatial letter of the kernel's
spec) — and makes one call of the core: :func:`convgrad.conv` (``lhs_dilation``
is its ``input_dilation``, ``rhs_dilation`` its ``dilation``,
``feature_group_count`` its ``groups``), :func:`convgrad.conv_batch_grouped`,
or, for a unit-stride convolution of a dilated input (which is what
``conv_transpose`` computes), :func:`convgrad.conv_transpose`, which scatters
the kernel instead of multiplying the inserted zeros.

Gradients. :func:`conv_general_dilated_backward` and
:func:`conv_transpose_backward` return ``jax.vjp(f, lhs, rhs)[1](g)``. For
real data that is PyTorch's gradient too. For complex data JAX's vjp is the
transpose of the linear map, *without* conjugation —
``lhs_grad[n, c, p] = Σ g[n, o, q] · rhs[o, c, k]`` over the windows that read
``p`` — while PyTorch's ``autograd.grad`` (and :func:`convgrad.conv_backward`)
conjugate the other operand: ``Σ g · conj(rhs)``. The two are related by
``jax_vjp(g) = conj(torch_grad(conj(g)))``; for a real loss ``L`` with
``g = ∂L/∂y`` written JAX's way, the JAX gradient is the conjugate of PyTorch's.

Differences, all accepting more: ``lhs`` and ``rhs`` may have different
dtypes (NumPy promotion; JAX requires equal dtypes), and a
``ConvDimensionNumbers`` may be JAX's own. The result dtype is
``preferred_element_type`` when given, else the inputs' common dtype as in JAX
(integer results are the exact sums wrapped to the integer type, boolean
results whether any product is nonzero; integers are summed exactly in
float64, exact while every partial sum is below 2⁵³ in magnitude).
``precision`` is accepted and has no effect: NumPy computes at the inputs'
precision (float32 stays float32, float64 float64). A result with a zero-size
dimension (a window that fits nowhere, an empty batch or channel axis) is
zeros of the shape JAX gives. Results are new C-contiguous arrays in the
layout ``dimension_numbers`` names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Union, cast

import numpy as np

from . import _batch_groups, _conv, _transpose
from ._arguments import MAX_INT, Shape, check_array, check_int
from ._arguments import _is_sequence as _is_list
from ._conv import Array, ArrayLike
from ._geometry import dilated_size, out_size, transposed_size

__all__ = [
    "ConvDimensionNumbers",
    "LaxGrads",
    "conv",
    "conv_dimension_numbers",
    "conv_general_dilated",
    "conv_general_dilated_backward",
    "conv_general_permutations",
    "conv_transpose",
    "conv_transpose_backward",
    "conv_with_general_padding",
    "padtype_to_pads",
]


def __dir__() -> list[str]:
    return sorted(__all__)


Pads = tuple[tuple[int, int], ...]
Padding = Union[str, Sequence[Sequence[int]]]
DimensionNumbers = object
"""None, three strings, or a ConvDimensionNumbers (this module's or JAX's)."""

_PADDING_STRINGS = ("SAME", "SAME_LOWER", "VALID")
_PRECISION_STRINGS = frozenset(
    ("highest", "float32", "high", "bfloat16_3x", "tensorfloat32", "default", "bfloat16", "fastest")
)
_PRESET_NAME = re.compile(r"[A-Z][A-Z0-9_]*\Z")
_TRANSPOSE_DEFAULTS = {2: ("NC", "IO", "NC"), 3: ("NHC", "HIO", "NHC"), 4: ("NHWC", "HWIO", "NHWC"),
                       5: ("NHWDC", "HWDIO", "NHWDC")}


class ConvDimensionNumbers(NamedTuple):
    """Where batch, feature and spatial dimensions are, as ``jax.lax.ConvDimensionNumbers``.

    Attributes
    ----------
    lhs_spec : tuple of int
        ``(batch dimension, feature dimension, spatial dimensions...)`` of ``lhs``.
    rhs_spec : tuple of int
        ``(out feature dimension, in feature dimension, spatial dimensions...)`` of ``rhs``.
    out_spec : tuple of int
        ``(batch dimension, feature dimension, spatial dimensions...)`` of the output.
    """

    lhs_spec: tuple[int, ...]
    rhs_spec: tuple[int, ...]
    out_spec: tuple[int, ...]


class LaxGrads(NamedTuple):
    """What ``jax.vjp(f, lhs, rhs)[1](g)`` returns: the cotangents of ``lhs`` and ``rhs``, in their layouts."""

    lhs: Array
    rhs: Array


# ----------------------------------------------------------------------------- dimension numbers


def conv_general_permutations(dimension_numbers: Sequence[str]) -> tuple[Shape, Shape, Shape]:
    """The axis permutations of a string ``dimension_numbers`` triple, as ``jax.lax.conv_general_permutations``.

    Parameters
    ----------
    dimension_numbers : (str, str, str)
        ``(lhs_spec, rhs_spec, out_spec)``: ``lhs_spec`` and ``out_spec`` hold
        ``N`` and ``C`` once each, ``rhs_spec`` ``O`` and ``I``; the other
        letters name the spatial dimensions, the same set in all three.

    Returns
    -------
    tuple of three tuples of int
        For each spec the axes ``(batch or out feature, feature or in feature,
        spatial...)``, the spatial axes in the order their letters appear in
        ``rhs_spec``.

    Raises
    ------
    TypeError
        For a spec without its two letters exactly once, with a repeated
        letter, or with other spatial letters than the others.

    Examples
    --------
    >>> from convgrad import lax
    >>> lax.conv_general_permutations(("NHWC", "HWIO", "NHWC"))
    ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
    >>> lax.conv_general_permutations(("NWHC", "OIHW", "NCHW"))   # spatial order: rhs_spec's (H, W)
    ((0, 3, 2, 1), (0, 1, 2, 3), (0, 1, 2, 3))
    """
    if not _is_list(dimension_numbers) or len(dimension_numbers) != 3:
        raise TypeError(f"dimension_numbers must be three strings (lhs_spec, rhs_spec, out_spec); "
                        f"got {dimension_numbers!r}")
    specs = tuple(dimension_numbers)
    if not all(isinstance(s, str) for s in specs):
        raise TypeError(f"dimension_numbers must be three strings (lhs_spec, rhs_spec, out_spec); got {specs!r}")
    pairs = (("N", "C"), ("O", "I"), ("N", "C"))
    for i, (spec, (a, b)) in enumerate(zip(specs, pairs)):
        if spec.count(a) != 1 or spec.count(b) != 1:
            raise TypeError(f"dimension_numbers[{i}] must contain the letters {a!r} and {b!r} exactly once; "
                            f"got {spec!r}")
        if len(set(spec)) != len(spec):
            raise TypeError(f"dimension_numbers[{i}] must not repeat a letter; got {spec!r}")
    spatial = [set(spec) - set(pair) for spec, pair in zip(specs, pairs)]
    if not spatial[0] == spatial[1] == spatial[2]:
        raise TypeError(f"dimension_numbers must name the same spatial letters in all three specs; got {specs!r}")
    rhs_spec = specs[1]
    order = [c for c in rhs_spec if c not in "OI"]
    perms = []
    for spec, (a, b) in zip(specs, pairs):
        perms.append((spec.index(a), spec.index(b)) + tuple(spec.index(c) for c in order))
    return perms[0], perms[1], perms[2]


def _permutation(value: object, ndim: int, name: str) -> Shape:
    if not _is_list(value):
        raise TypeError(f"{name} must be a sequence of {ndim} axis numbers; got {value!r}")
    items = tuple(check_int(v, f"{name}[{i}]", 0) for i, v in enumerate(list(value)))  # type: ignore[call-overload]
    if sorted(items) != list(range(ndim)):
        raise ValueError(f"{name} must be a permutation of the {ndim} axes 0 … {ndim - 1}; got {items}")
    return items


def conv_dimension_numbers(lhs_shape: Sequence[int], rhs_shape: Sequence[int],
                           dimension_numbers: DimensionNumbers) -> ConvDimensionNumbers:
    """``dimension_numbers`` in canonical form, as ``jax.lax.conv_dimension_numbers``.

    Parameters
    ----------
    lhs_shape, rhs_shape : sequence of int
        The shapes of ``lhs`` and ``rhs``; they must have the same length.
    dimension_numbers : None, (str, str, str) or ConvDimensionNumbers
        ``None`` means ``NC…``, ``OI…``, ``NC…`` (the axes in order); strings
        as for :func:`conv_general_permutations`, one letter per axis; a
        ``ConvDimensionNumbers`` (this module's or JAX's) is checked and
        returned as this module's.

    Returns
    -------
    ConvDimensionNumbers

    Raises
    ------
    TypeError
        For shapes of different lengths or a malformed ``dimension_numbers``.

    Examples
    --------
    >>> from convgrad import lax
    >>> lax.conv_dimension_numbers((8, 32, 32, 3), (3, 3, 3, 16), ("NHWC", "HWIO", "NHWC"))
    ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2))
    >>> lax.conv_dimension_numbers((8, 3, 32), (16, 3, 5), None)
    ConvDimensionNumbers(lhs_spec=(0, 1, 2), rhs_spec=(0, 1, 2), out_spec=(0, 1, 2))
    """
    lhs_t, rhs_t = _shape(lhs_shape, "lhs_shape"), _shape(rhs_shape, "rhs_shape")
    ndim = len(lhs_t)
    if all(hasattr(dimension_numbers, f) for f in ("lhs_spec", "rhs_spec", "out_spec")):
        return ConvDimensionNumbers(*(_permutation(getattr(dimension_numbers, f), ndim, f"dimension_numbers.{f}")
                                      for f in ("lhs_spec", "rhs_spec", "out_spec")))
    if len(lhs_t) != len(rhs_t):
        raise TypeError(f"lhs and rhs must have the same number of dimensions; got shapes {lhs_t} and {rhs_t}")
    if dimension_numbers is None:
        iota = tuple(range(ndim))
        return ConvDimensionNumbers(iota, iota, iota)
    if not isinstance(dimension_numbers, (list, tuple)):
        raise TypeError(f"dimension_numbers must be None, a ConvDimensionNumbers or three strings; "
                        f"got {dimension_numbers!r}")
    if len(dimension_numbers) != 3 or not all(isinstance(s, str) for s in dimension_numbers):
        raise TypeError(f"dimension_numbers must be three strings (lhs_spec, rhs_spec, out_spec); "
                        f"got {dimension_numbers!r}")
    for i, spec in enumerate(dimension_numbers):
        if len(spec) != ndim:
            raise TypeError(f"dimension_numbers[{i}] must have one letter per dimension ({ndim}, the ndim of lhs "
                            f"and rhs); got {spec!r} for shapes {lhs_t} and {rhs_t}")
    return ConvDimensionNumbers(*conv_general_permutations(dimension_numbers))


def _shape(value: object, name: str) -> Shape:
    if not _is_list(value):
        raise TypeError(f"{name} must be a sequence of ints; got {value!r}")
    return tuple(check_int(v, f"{name}[{i}]", 0) for i, v in enumerate(list(value)))  # type: ignore[call-overload]


# ----------------------------------------------------------------------------- padding


def _ceil_div_count(size: int, stride: int) -> int:
    """``ceil(S / s)``: the number of one-wide windows at stride ``s`` (0 for an empty dimension)."""
    return out_size(size, 1, stride) if size > 0 else 0


def padtype_to_pads(in_shape: Sequence[int], window_shape: Sequence[int], window_strides: Sequence[int],
                    padding: str) -> list[tuple[int, int]]:
    """``"SAME"``, ``"SAME_LOWER"`` or ``"VALID"`` as ``(low, high)`` pairs, as ``jax.lax.padtype_to_pads``.

    SAME and SAME_LOWER give ``ceil(S / s)`` outputs: the total padding is
    ``max((ceil(S / s) − 1)·s + k − S, 0)``, the odd element after for SAME
    and before for SAME_LOWER; VALID pads nothing. The case of the string
    does not matter.

    Parameters
    ----------
    in_shape : sequence of int
        The input's spatial sizes.
    window_shape : sequence of int
        The window's spatial sizes (with ``rhs_dilation``, the dilated ones).
    window_strides : sequence of int
    padding : str

    Returns
    -------
    list of (int, int)

    Examples
    --------
    >>> from convgrad import lax
    >>> lax.padtype_to_pads((5, 6), (3, 2), (2, 1), "SAME")
    [(1, 1), (0, 1)]
    >>> lax.padtype_to_pads((5, 6), (3, 2), (2, 1), "SAME_LOWER")
    [(1, 1), (1, 0)]
    """
    sizes = _shape(in_shape, "in_shape")
    d = len(sizes)
    window = _ints(window_shape, d, "window_shape", 0, "padtype_to_pads")
    strides = _ints(window_strides, d, "window_strides", 1, "padtype_to_pads")
    kind = _padding_string(padding, "padtype_to_pads")
    if kind == "VALID":
        return [(0, 0)] * d
    pads = []
    for s, k, st in zip(sizes, window, strides):
        total = max(transposed_size(_ceil_div_count(s, st), 1, st) + k - 1 - s, 0)
        small, large = total // 2, total - total // 2
        pads.append((small, large) if kind == "SAME" else (large, small))
    return pads


def _padding_string(padding: str, op: str) -> str:
    kind = padding.upper()
    if kind not in _PADDING_STRINGS:
        raise ValueError(f"{op}: padding must be 'SAME', 'SAME_LOWER', 'VALID' or a sequence of (low, high) "
                         f"pairs; got the unknown string {padding!r}")
    return kind


def _explicit_pads(padding: object, d: int, op: str) -> Pads:
    if not _is_list(padding):
        raise TypeError(f"{op}: padding must be 'SAME', 'SAME_LOWER', 'VALID' or a sequence of {d} (low, high) "
                        f"pairs; got {padding!r}")
    items = list(padding)  # type: ignore[call-overload]
    if len(items) != d:
        raise ValueError(f"{op}: padding must have one (low, high) pair per spatial dimension ({d}); "
                         f"got {padding!r} with {len(items)} entries")
    pads = []
    for i, pair in enumerate(items):
        if not _is_list(pair) or len(pair) != 2:
            raise ValueError(f"{op}: padding[{i}] must be a (low, high) pair of ints; got {pair!r}")
        lo = check_int(pair[0], f"padding[{i}][0]", -MAX_INT)
        pads.append((lo, check_int(pair[1], f"padding[{i}][1]", -MAX_INT)))
    return tuple(pads)


def _transpose_padding(span: int, stride: int, padding: object) -> tuple[int, int]:
    """``lax.conv_transpose``'s padding of the dilated input for a forward padding ``"SAME"``, ``"VALID"`` or pair.

    ``span`` is the dilated kernel size. SAME pads ``span + s − 2`` in all,
    ``span − 1`` before when ``s > span − 1`` and otherwise half rounded up;
    VALID pads ``span − 1`` before and ``max(s − 1, span − 1)`` after (so
    the output is ``S·s + max(span − s, 0)``); a forward pair ``(l, h)`` is
    undone by ``(span − 1 − l, span − 1 − h)``, the input gradient's.
    """
    if padding == "SAME":
        total = span + stride - 2
        before = span - 1 if stride > span - 1 else total - total // 2
        return before, total - before
    if padding == "VALID":
        return span - 1, stride - 1 + max(span - stride, 0)
    pair = cast("tuple[int, int]", padding)
    return span - 1 - pair[0], span - 1 - pair[1]


# ----------------------------------------------------------------------------- the other arguments


def _ints(value: object, d: int, name: str, minimum: int, op: str) -> Shape:
    """A sequence of exactly ``d`` ints ``>= minimum`` (JAX takes no bare int here)."""
    if not _is_list(value):
        raise TypeError(f"{op}: {name} must be a sequence of {d} ints (one per spatial dimension); got {value!r}")
    items = list(value)  # type: ignore[call-overload]
    if len(items) != d:
        raise ValueError(f"{op}: {name} must have one entry per spatial dimension ({d}); got {value!r} with "
                         f"{len(items)} entries")
    return tuple(check_int(v, f"{name}[{i}]", minimum) for i, v in enumerate(items))


def _dilation(value: object, d: int, name: str, op: str) -> Shape:
    return (1,) * d if value is None else _ints(value, d, name, 1, op)


def _check_precision(precision: object, op: str) -> None:
    """``precision`` is checked as JAX accepts it, then ignored."""
    def one(p: object) -> bool:
        if p is None:
            return True
        if isinstance(p, str):
            return p in _PRECISION_STRINGS or _PRESET_NAME.match(p) is not None
        return isinstance(getattr(p, "name", None), str)  # lax.Precision, lax.DotAlgorithmPreset

    if one(precision) or (isinstance(precision, (tuple, list)) and len(precision) == 2
                          and all(p is not None and one(p) for p in precision)):
        return
    if isinstance(precision, tuple) and hasattr(precision, "_fields"):  # a lax.DotAlgorithm
        return
    raise TypeError(f"{op}: precision must be None, one of {sorted(_PRECISION_STRINGS)}, a lax.Precision or "
                    f"DotAlgorithmPreset (or its name), or a pair of them; got {precision!r}")


def _preferred(preferred_element_type: object, input_dtype: np.dtype[Any], op: str) -> Optional[np.dtype[Any]]:
    """``preferred_element_type`` as a dtype, checked against the inputs' as JAX does."""
    if preferred_element_type is None:
        return None
    try:
        dtype: np.dtype[Any] = np.dtype(preferred_element_type)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"{op}: preferred_element_type must be None or a dtype; "
                        f"got {preferred_element_type!r}") from None
    if dtype.kind not in "biufc":
        raise TypeError(f"{op}: preferred_element_type must be a numeric dtype; got {dtype}")
    kinds = {"i": "integral", "u": "integral", "f": "floating", "c": "complex", "b": "bool"}
    src, dst = input_dtype.kind, dtype.kind
    if not (src in "iu" and dst == "f"):
        if src != "b" and (kinds[src] != kinds[dst]):
            raise TypeError(f"{op}: preferred_element_type={dtype} is incompatible with the inputs' dtype "
                            f"{input_dtype}; the combinations are (integral, integral), (integral, floating), "
                            f"(floating, floating) and (complex, complex)")
        if src == "i" and dst != "i":
            raise TypeError(f"{op}: preferred_element_type={dtype} must be signed like the inputs' dtype {input_dtype}")
    if dtype.itemsize < input_dtype.itemsize:
        raise TypeError(f"{op}: preferred_element_type={dtype} must not be narrower than the inputs' dtype "
                        f"{input_dtype}")
    return dtype


def _jax_dilate(size: int, dilation: int) -> int:
    """A dimension of ``size`` with ``dilation − 1`` zeros between entries (an empty one stays empty)."""
    return dilated_size(size, dilation) if size > 0 else 0


# ----------------------------------------------------------------------------- one checked convolution


@dataclass(frozen=True)
class _Plan:
    """One ``conv_general_dilated`` in the core's terms."""

    dn: ConvDimensionNumbers
    d: int
    rhs_shape: Shape
    out_shape: Shape
    strides: Shape
    pads: Pads
    lhs_dilation: Shape
    rhs_dilation: Shape
    feature_groups: int
    batch_groups: int
    empty: bool
    """Whether some size is zero (the core is not called: the result is zeros)."""
    dtype: np.dtype[Any]
    """The result dtype."""
    work: Optional[np.dtype[Any]]
    """A wider dtype the inputs are cast to first (``preferred_element_type``), or None."""
    op: str

    @property
    def transposed_route(self) -> bool:
        """A unit-stride convolution of a dilated input: the core's transposed convolution, no zeros multiplied."""
        return (self.batch_groups == 1 and any(a > 1 for a in self.lhs_dilation)
                and all(s == 1 for s in self.strides))

    def spans(self) -> Shape:
        k = np.take(self.rhs_shape, self.dn.rhs_spec)[2:]
        return tuple(_jax_dilate(int(ki), dl) for ki, dl in zip(k, self.rhs_dilation))

    def core_kwargs(self) -> dict[str, Any]:
        if self.d == 0:
            return {"stride": 1, "padding": ((0, 0),), "dilation": 1, "input_dilation": 1}
        return {"stride": self.strides, "padding": self.pads, "dilation": self.rhs_dilation,
                "input_dilation": self.lhs_dilation}

    def transposed_kwargs(self) -> dict[str, Any]:
        """:func:`convgrad.conv_transpose`'s arguments: the dilated input's padding undone around each span."""
        pads = tuple((sp - 1 - lo, sp - 1 - hi) for sp, (lo, hi) in zip(self.spans(), self.pads))
        return {"stride": self.lhs_dilation, "padding": pads, "dilation": self.rhs_dilation,
                "groups": self.feature_groups}

    def to_core(self, a: Array, spec: Shape) -> Array:
        """An array in JAX's layout -> the core's (a view), with a unit spatial axis for ``d = 0``."""
        t: Array = a.transpose(spec)
        return t[..., np.newaxis] if self.d == 0 else t

    def from_core(self, a: Array, spec: Shape) -> Array:
        """A core result -> a new array in JAX's layout."""
        if self.d == 0:
            a = a[..., 0]
        return np.ascontiguousarray(a.transpose(np.argsort(spec)))

    def cast_inputs(self, *arrays: Array) -> tuple[Array, ...]:
        if self.work is None:
            return arrays
        return tuple(a.astype(self.work, copy=False) for a in arrays)


def _plan(lhs: Array, rhs_shape: Shape, rhs_dtype: np.dtype[Any], window_strides: object, padding: object,
          lhs_dilation: object, rhs_dilation: object, dimension_numbers: object, feature_group_count: object,
          batch_group_count: object, precision: object, preferred_element_type: object, op: str) -> _Plan:
    """Check every argument, as JAX does and naming JAX's arguments, before any work."""
    if lhs.ndim != len(rhs_shape):
        raise ValueError(f"{op}: lhs and rhs must have the same number of dimensions; got lhs.shape {lhs.shape} and "
                         f"rhs.shape {rhs_shape}")
    if lhs.ndim < 2:
        raise ValueError(f"{op}: lhs and rhs must have at least 2 dimensions (batch and feature); "
                         f"got lhs.shape {lhs.shape}")
    dn = conv_dimension_numbers(lhs.shape, rhs_shape, dimension_numbers)
    d = lhs.ndim - 2
    strides = _ints(window_strides, d, "window_strides", 1, op)
    lhs_dil = _dilation(lhs_dilation, d, "lhs_dilation", op)
    rhs_dil = _dilation(rhs_dilation, d, "rhs_dilation", op)
    fgc = check_int(feature_group_count, "feature_group_count", 1)
    bgc = check_int(batch_group_count, "batch_group_count", 1)
    lhs_c, rhs_c = tuple(np.take(lhs.shape, dn.lhs_spec).tolist()), tuple(np.take(rhs_shape, dn.rhs_spec).tolist())
    (n, c), sizes = lhs_c[:2], lhs_c[2:]
    (o, i), kernel = rhs_c[:2], rhs_c[2:]
    lhs_ax, rhs_ax = dn.lhs_spec, dn.rhs_spec
    if c % fgc:
        raise ValueError(f"{op}: feature_group_count={fgc} must divide the lhs feature dimension "
                         f"(lhs.shape[{lhs_ax[1]}] = {c})")
    if c // fgc != i:
        raise ValueError(f"{op}: the lhs feature dimension divided by feature_group_count (lhs.shape[{lhs_ax[1]}] = "
                         f"{c}, feature_group_count = {fgc}: {c // fgc}) must equal the rhs input feature dimension "
                         f"(rhs.shape[{rhs_ax[1]}] = {i})")
    if o % fgc:
        raise ValueError(f"{op}: the rhs output feature dimension (rhs.shape[{rhs_ax[0]}] = {o}) must be a multiple "
                         f"of feature_group_count={fgc}")
    if n % bgc:
        raise ValueError(f"{op}: batch_group_count={bgc} must divide the lhs batch dimension "
                         f"(lhs.shape[{lhs_ax[0]}] = {n})")
    if o % bgc:
        raise ValueError(f"{op}: the rhs output feature dimension (rhs.shape[{rhs_ax[0]}] = {o}) must be a multiple "
                         f"of batch_group_count={bgc}")
    if bgc > 1 and fgc > 1:
        raise ValueError(f"{op}: at most one of batch_group_count and feature_group_count may be > 1; "
                         f"got batch_group_count={bgc} and feature_group_count={fgc}")
    spans = tuple(_jax_dilate(k, dl) for k, dl in zip(kernel, rhs_dil))
    if isinstance(padding, str):
        if any(a != 1 for a in lhs_dil):
            raise ValueError(f"{op}: string padding ({padding!r}) is not defined with lhs_dilation {lhs_dil} (as in "
                             f"JAX): give explicit (low, high) pairs, or use conv_transpose")
        _padding_string(padding, op)
        pads = tuple(padtype_to_pads(sizes, spans, strides, padding))
    else:
        pads = _explicit_pads(padding, d, op)
    out_sizes = []
    for axis, (s, a, (lo, hi), sp, st) in enumerate(zip(sizes, lhs_dil, pads, spans, strides)):
        padded = _jax_dilate(s, a) + lo + hi
        if padded < 0:
            raise ValueError(f"{op}: negative padding larger than the dimension: spatial dimension {axis} of size "
                             f"{s} (lhs_dilation {a}) with padding ({lo}, {hi}) would be {padded} long")
        out_sizes.append(max(out_size(padded, sp, st), 0))  # a kernel of size 0 spans nothing: P // s + 1
    out_c = (n // bgc, o) + tuple(out_sizes)
    out_shape = tuple(np.take(out_c, np.argsort(dn.out_spec)).tolist())
    _check_precision(precision, op)
    input_dtype = np.result_type(lhs.dtype, rhs_dtype)
    preferred = _preferred(preferred_element_type, input_dtype, op)
    dtype = input_dtype if preferred is None else preferred
    work = None
    if preferred is not None and preferred.kind in "fc" and input_dtype.kind in "fc":
        work = np.result_type(input_dtype, preferred)
    empty = 0 in lhs.shape or 0 in rhs_shape or 0 in out_c
    return _Plan(dn, d, rhs_shape, out_shape, strides, pads, lhs_dil, rhs_dil, fgc, bgc, empty, dtype,
                 work, op)


def _cast(y: Array, dtype: np.dtype[Any]) -> Array:
    """The core's result in the wanted dtype: integers wrapped as integer sums wrap, bools ``!= 0``."""
    if dtype.kind == "b":
        return np.asarray(y != 0)
    if dtype.kind in "iu" and y.dtype.kind not in "iu":
        wrapped: Array = np.rint(y.real).astype(np.int64).astype(dtype)
        return wrapped
    if dtype.kind != "c" and y.dtype.kind == "c":
        y = y.real
    return y.astype(dtype, copy=False)


def _grad_dtype(a: Array) -> np.dtype[Any]:
    """A cotangent has its primal's dtype (integers and bools: the core's float64)."""
    return a.dtype if a.dtype.kind in "fc" else np.dtype(np.float64)


# ----------------------------------------------------------------------------- the two directions


def _transposed_weight(w: Array, groups: int) -> Array:
    """``(O, C/G, *K)`` -> the ``(C, O/G, *K)`` weight of the transposed convolution, kernel flipped (a copy)."""
    o, cg, k = w.shape[0], w.shape[1], w.shape[2:]
    spatial = tuple(range(2, w.ndim))
    flipped = np.flip(w, spatial).reshape((groups, o // groups, cg) + k).swapaxes(1, 2)
    return np.ascontiguousarray(flipped).reshape((groups * cg, o // groups) + k)


def _forward_weight(wt: Array, groups: int) -> Array:
    """The inverse of :func:`_transposed_weight`."""
    c, og, k = wt.shape[0], wt.shape[1], wt.shape[2:]
    grouped = wt.reshape((groups, c // groups, og) + k).swapaxes(1, 2)
    w = np.ascontiguousarray(grouped).reshape((groups * og, c // groups) + k)
    return np.flip(w, tuple(range(2, w.ndim)))


def _run_forward(p: _Plan, lhs: Array, rhs: Array) -> Array:
    if p.empty:
        return np.zeros(p.out_shape, dtype=p.dtype)
    x, w = p.cast_inputs(p.to_core(lhs, p.dn.lhs_spec), p.to_core(rhs, p.dn.rhs_spec))
    if p.transposed_route:
        y = _transpose.conv_transpose(x, _transposed_weight(w, p.feature_groups), **p.transposed_kwargs())
    elif p.batch_groups > 1:
        y = _batch_groups.conv_batch_grouped(x, w, batch_groups=p.batch_groups, **p.core_kwargs())
    else:
        y = _conv.conv(x, w, groups=p.feature_groups, **p.core_kwargs())
    return p.from_core(_cast(y, p.dtype), p.dn.out_spec)


def _run_backward(p: _Plan, g: Array, lhs: Array, rhs: Array) -> LaxGrads:
    if g.shape != p.out_shape:
        raise ValueError(f"{p.op}: g.shape {g.shape} must equal the forward output shape {p.out_shape} (lhs.shape "
                         f"{lhs.shape}, rhs.shape {rhs.shape})")
    lhs_dtype, rhs_dtype = _grad_dtype(lhs), _grad_dtype(rhs)
    if p.empty:
        return LaxGrads(np.zeros(lhs.shape, dtype=lhs_dtype), np.zeros(rhs.shape, dtype=rhs_dtype))
    gc = p.to_core(g, p.dn.out_spec)
    x, w = p.cast_inputs(p.to_core(lhs, p.dn.lhs_spec), p.to_core(rhs, p.dn.rhs_spec))
    # JAX's vjp transposes without conjugating; the core's gradients conjugate the other operand (PyTorch's
    # convention), so the core is handed conj(lhs) and conj(rhs).
    x, w = _conv.conj(x), _conv.conj(w)
    if p.transposed_route:
        grads = _transpose.conv_transpose_backward(gc, x, _transposed_weight(w, p.feature_groups),
                                                   **p.transposed_kwargs())
        gw = _forward_weight(grads.weight, p.feature_groups)
    elif p.batch_groups > 1:
        grads = _batch_groups.conv_batch_grouped_backward(gc, x, w, batch_groups=p.batch_groups, **p.core_kwargs())
        gw = grads.weight
    else:
        grads = _conv.conv_backward(gc, x, w, groups=p.feature_groups, **p.core_kwargs())
        gw = grads.weight
    return LaxGrads(p.from_core(_cast(grads.input, lhs_dtype), p.dn.lhs_spec),
                    p.from_core(_cast(gw, rhs_dtype), p.dn.rhs_spec))


# ----------------------------------------------------------------------------- the public functions


def conv_general_dilated(
    lhs: ArrayLike,
    rhs: ArrayLike,
    window_strides: Sequence[int],
    padding: Padding,
    lhs_dilation: Optional[Sequence[int]] = None,
    rhs_dilation: Optional[Sequence[int]] = None,
    dimension_numbers: DimensionNumbers = None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision: object = None,
    preferred_element_type: object = None,
) -> Array:
    """General N-d convolution, as ``jax.lax.conv_general_dilated`` (XLA's ``Conv``).

    In the canonical order (``dimension_numbers`` applied), with ``B`` batch
    groups and ``G`` feature groups::

        out[n, o, q] = Σ_{c, k} pad(dilate(lhs, a))[γ_B(o)·N/B + n, γ_G(o)·C/G + c, q·s + k·δ] · rhs[o, c, k]

    ``dilate(lhs, a)`` puts ``a − 1`` zeros between the input's entries
    (``lhs_dilation``), ``pad`` adds ``(low, high)`` zeros or crops where
    negative, ``δ`` is ``rhs_dilation``; output channel ``o`` belongs to
    group ``γ(o) = o // (O / groups)`` of either kind. Per spatial dimension
    ``Q = max(⌊(P − δ(K − 1) − 1) / s⌋ + 1, 0)`` with ``P = (S − 1)·a + 1 + l + h``.

    Parameters
    ----------
    lhs : array_like, shape=(N, C, *S) in the order of dimension_numbers[0]
        The input, of rank ``n + 2`` (``n ≥ 0`` spatial dimensions).
    rhs : array_like, shape=(O, C / feature_group_count, *K) in the order of dimension_numbers[1]
        The kernel.
    window_strides : sequence of n ints
        In the order of the spatial letters of ``rhs_spec``.
    padding : "SAME", "SAME_LOWER", "VALID" or sequence of n (low, high) pairs
        SAME gives ``ceil(S / s)`` outputs (the odd padding element after,
        before for SAME_LOWER; see :func:`padtype_to_pads`); pairs may be
        negative. Strings need ``lhs_dilation`` of ones.
    lhs_dilation, rhs_dilation : sequence of n ints, optional
        Input dilation (a transposed convolution) and kernel dilation (atrous).
    dimension_numbers : None, (str, str, str) or ConvDimensionNumbers
        See :func:`conv_dimension_numbers`; ``None`` is ``("NC…", "OI…", "NC…")``.
    feature_group_count : int
        ``G``: divides ``C`` and ``O``; ``rhs`` has ``C / G`` input features.
    batch_group_count : int
        ``B``: divides ``N`` and ``O``; the output has ``N / B`` samples.
        At most one of the two counts may exceed 1.
    precision : None, str, lax.Precision or pair
        Accepted and checked as JAX does; no effect (NumPy computes at the
        inputs' precision).
    preferred_element_type : dtype, optional
        The result dtype (checked as JAX does: not narrower than the inputs',
        integral to integral or floating, floating to floating, complex to
        complex). A wider float or complex type is computed in.

    Returns
    -------
    numpy.ndarray, shape=(N / B, O, *Q) in the order of dimension_numbers[2]

    Raises
    ------
    ValueError, TypeError
        Naming the argument and showing its value, before any work.

    Examples
    --------
    A 6-sample signal, channels last, under a 2-tap kernel with strides 2,
    an input dilation of 2 and a crop of one at each end:

    >>> import numpy as np
    >>> from convgrad import lax
    >>> x = np.arange(1.0, 7.0).reshape(1, 6, 1)                  # NWC
    >>> w = np.array([1.0, 10.0]).reshape(2, 1, 1)                 # WIO
    >>> lax.conv_general_dilated(x, w, (2,), ((-1, -1),), lhs_dilation=(2,),
    ...                          dimension_numbers=("NWC", "WIO", "NWC"))[0, :, 0]
    array([20., 30., 40., 50.])
    >>> lax.conv_general_dilated(x, w, (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC"))[0, :, 0]
    array([21., 32., 43., 54., 65.,  6.])
    """
    x, w = check_array(lhs, "lhs"), check_array(rhs, "rhs")
    p = _plan(x, w.shape, w.dtype, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
              feature_group_count, batch_group_count, precision, preferred_element_type, "conv_general_dilated")
    return _run_forward(p, x, w)


def conv_general_dilated_backward(
    g: ArrayLike,
    lhs: ArrayLike,
    rhs: ArrayLike,
    window_strides: Sequence[int],
    padding: Padding,
    lhs_dilation: Optional[Sequence[int]] = None,
    rhs_dilation: Optional[Sequence[int]] = None,
    dimension_numbers: DimensionNumbers = None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision: object = None,
    preferred_element_type: object = None,
) -> LaxGrads:
    """The gradients of :func:`conv_general_dilated`: what ``jax.vjp(f, lhs, rhs)[1](g)`` returns.

    For complex data this is JAX's convention, the transpose without
    conjugation (``lhs_grad = Σ g · rhs``, ``rhs_grad = Σ g · lhs`` over the
    windows), not PyTorch's ``Σ g · conj(rhs)``: ``jax_vjp(g) =
    conj(torch_grad(conj(g)))``. Each cotangent has its primal's dtype
    (integer and bool primals: float64).

    Parameters
    ----------
    g : array_like, shape=the forward output's
        The cotangent of the output, in the layout of ``dimension_numbers[2]``.
    lhs, rhs : array_like
        The forward operands, as for :func:`conv_general_dilated`.
    window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers
        As for :func:`conv_general_dilated`.
    feature_group_count, batch_group_count, precision, preferred_element_type
        As for :func:`conv_general_dilated`.

    Returns
    -------
    LaxGrads
        ``(lhs, rhs)``: shaped like ``lhs`` and ``rhs``.

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import lax
    >>> x = np.arange(1.0, 7.0).reshape(1, 1, 6)                  # NCW
    >>> w = np.array([[[1.0, 10.0]]])                              # OIW
    >>> g = np.ones((1, 1, 3))
    >>> gx, gw = lax.conv_general_dilated_backward(g, x, w, (2,), "VALID")
    >>> gx
    array([[[ 1., 10.,  1., 10.,  1., 10.]]])
    >>> gw
    array([[[ 9., 12.]]])
    """
    gg, x, w = check_array(g, "g"), check_array(lhs, "lhs"), check_array(rhs, "rhs")
    p = _plan(x, w.shape, w.dtype, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
              feature_group_count, batch_group_count, precision, preferred_element_type,
              "conv_general_dilated_backward")
    return _run_backward(p, gg, x, w)


def conv(lhs: ArrayLike, rhs: ArrayLike, window_strides: Sequence[int], padding: str, precision: object = None,
         preferred_element_type: object = None) -> Array:
    """``conv_general_dilated`` with ``NC…``/``OI…`` layouts and string padding, as ``jax.lax.conv``.

    Parameters
    ----------
    lhs : array_like, shape=(N, C, *S)
    rhs : array_like, shape=(O, C, *K)
    window_strides : sequence of int
    padding : "SAME", "SAME_LOWER" or "VALID"
    precision, preferred_element_type
        As for :func:`conv_general_dilated`.

    Returns
    -------
    numpy.ndarray, shape=(N, O, *Q)

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import lax
    >>> lax.conv(np.arange(9.0).reshape(1, 1, 3, 3), np.ones((1, 1, 2, 2)), (1, 1), "VALID")
    array([[[[ 8., 12.],
             [20., 24.]]]])
    """
    x, w = check_array(lhs, "lhs"), check_array(rhs, "rhs")
    p = _plan(x, w.shape, w.dtype, window_strides, padding, None, None, None, 1, 1, precision,
              preferred_element_type, "conv")
    return _run_forward(p, x, w)


def conv_with_general_padding(lhs: ArrayLike, rhs: ArrayLike, window_strides: Sequence[int], padding: Padding,
                              lhs_dilation: Optional[Sequence[int]], rhs_dilation: Optional[Sequence[int]],
                              precision: object = None, preferred_element_type: object = None) -> Array:
    """``conv_general_dilated`` with ``NC…``/``OI…`` layouts, as ``jax.lax.conv_with_general_padding``.

    Parameters
    ----------
    lhs : array_like, shape=(N, C, *S)
    rhs : array_like, shape=(O, C, *K)
    window_strides, padding, lhs_dilation, rhs_dilation, precision, preferred_element_type
        As for :func:`conv_general_dilated`.

    Returns
    -------
    numpy.ndarray, shape=(N, O, *Q)

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import lax
    >>> x = np.array([[[1.0, 2.0, 3.0]]])
    >>> lax.conv_with_general_padding(x, np.array([[[1.0, 1.0]]]), (1,), ((1, 0),), (2,), None)
    array([[[1., 1., 2., 2., 3.]]])
    """
    x, w = check_array(lhs, "lhs"), check_array(rhs, "rhs")
    p = _plan(x, w.shape, w.dtype, window_strides, padding, lhs_dilation, rhs_dilation, None, 1, 1, precision,
              preferred_element_type, "conv_with_general_padding")
    return _run_forward(p, x, w)


# ----------------------------------------------------------------------------- conv_transpose


def _transpose_plan(x: Array, w: Array, strides: object, padding: object, rhs_dilation: object,
                    dimension_numbers: object, transpose_kernel: object, precision: object,
                    preferred_element_type: object, use_consistent_padding: object,
                    op: str) -> tuple[_Plan, bool]:
    """``lax.conv_transpose``'s arguments -> the ``conv_general_dilated`` it is (``lhs_dilation = strides``)."""
    if x.ndim != w.ndim or x.ndim < 2:
        raise ValueError(f"{op}: lhs and rhs must have the same number of dimensions, at least 2; got lhs.shape "
                         f"{x.shape} and rhs.shape {w.shape}")
    for name, flag in (("transpose_kernel", transpose_kernel), ("use_consistent_padding", use_consistent_padding)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{op}: {name} must be a bool; got {flag!r}")
    if dimension_numbers is None:
        if x.ndim not in _TRANSPOSE_DEFAULTS:
            raise ValueError(f"{op}: dimension_numbers has no default for {x.ndim}-dimensional lhs and rhs (JAX's "
                             f"defaults are channels last up to 3 spatial dimensions); got lhs.shape {x.shape}")
        dimension_numbers = _TRANSPOSE_DEFAULTS[x.ndim]
    dn = conv_dimension_numbers(x.shape, w.shape, dimension_numbers)
    d = x.ndim - 2
    stride_t = _ints(strides, d, "strides", 1, op)
    rhs_dil = _dilation(rhs_dilation, d, "rhs_dilation", op)
    kernel = tuple(int(k) for k in np.take(w.shape, dn.rhs_spec)[2:])
    spans = [_jax_dilate(k, dl) for k, dl in zip(kernel, rhs_dil)]
    pads: object = padding
    if use_consistent_padding or (isinstance(padding, str) and padding in ("SAME", "VALID")):
        if isinstance(padding, str):
            if padding not in ("SAME", "VALID"):
                raise ValueError(f"{op}: padding must be 'SAME', 'VALID' or (low, high) pairs with "
                                 f"use_consistent_padding=True; got {padding!r}")
            per_dim: Sequence[object] = [padding] * d
        else:
            per_dim = _explicit_pads(padding, d, op)
        pads = tuple(_transpose_padding(sp, s, pd) for sp, s, pd in zip(spans, stride_t, per_dim))
    elif isinstance(padding, str) and any(s != 1 for s in stride_t):
        raise ValueError(f"{op}: padding must be 'SAME', 'VALID' or (low, high) pairs with strides {stride_t}; "
                         f"got {padding!r}")
    w_shape = list(w.shape)
    if transpose_kernel:
        o_ax, i_ax = dn.rhs_spec[0], dn.rhs_spec[1]
        w_shape[o_ax], w_shape[i_ax] = w_shape[i_ax], w_shape[o_ax]
    plan = _plan(x, tuple(w_shape), w.dtype, (1,) * d, pads, stride_t, rhs_dil, dn, 1, 1, precision,
                 preferred_element_type, op)
    return plan, bool(transpose_kernel)


def _kernel_transposed(w: Array, dn: ConvDimensionNumbers) -> Array:
    """``transpose_kernel=True``: the spatial axes flipped and the two feature axes exchanged (a view)."""
    flipped = np.flip(w, tuple(dn.rhs_spec[2:])) if len(dn.rhs_spec) > 2 else w
    swapped: Array = flipped.swapaxes(dn.rhs_spec[0], dn.rhs_spec[1])
    return swapped


def conv_transpose(
    lhs: ArrayLike,
    rhs: ArrayLike,
    strides: Sequence[int],
    padding: Padding,
    rhs_dilation: Optional[Sequence[int]] = None,
    dimension_numbers: DimensionNumbers = None,
    transpose_kernel: bool = False,
    precision: object = None,
    preferred_element_type: object = None,
    use_consistent_padding: bool = False,
) -> Array:
    """A transposed convolution, as ``jax.lax.conv_transpose``.

    It is ``conv_general_dilated(lhs, rhs', ones, pads, lhs_dilation=strides,
    rhs_dilation=rhs_dilation)``: the input dilated by the strides, padded and
    correlated with the kernel at unit stride (computed as the core's
    :func:`convgrad.conv_transpose`, without multiplying the inserted zeros).
    ``rhs'`` is ``rhs`` itself (JAX does not flip the kernel by default), or,
    with ``transpose_kernel=True``, ``rhs`` with its spatial axes flipped and
    its ``O``/``I`` axes exchanged, which makes this the gradient of the
    forward convolution with kernel ``rhs`` (Keras' ``Conv2DTranspose``).

    ``pads``: for ``"SAME"`` and ``"VALID"`` (the forward convolution's
    padding), per dimension with dilated kernel size ``k`` and stride ``s``,
    SAME pads ``k + s − 2`` in all (``k − 1`` before when ``s > k − 1``, else
    half rounded up) and gives ``S·s`` outputs; VALID pads ``k − 1`` before and
    ``max(s − 1, k − 1)`` after. ``(low, high)`` pairs are the padding of the
    dilated input itself, negative allowed; with ``use_consistent_padding=True``
    they are the forward convolution's padding ``p`` instead and become
    ``k − 1 − p`` (PyTorch's reading).

    Parameters
    ----------
    lhs : array_like, shape=(N, C, *S) in the order of dimension_numbers[0]
    rhs : array_like
        ``(O, C, *K)`` in the order of ``dimension_numbers[1]``, or with
        ``transpose_kernel=True`` ``(C, O, *K)`` (the forward kernel).
    strides : sequence of n ints
        The fractional stride: ``lhs_dilation`` of the convolution computed.
    padding : "SAME", "VALID" or sequence of n (low, high) pairs
    rhs_dilation : sequence of n ints, optional
    dimension_numbers : None, (str, str, str) or ConvDimensionNumbers
        ``None`` is channels last: ``("NHC", "HIO", "NHC")``,
        ``("NHWC", "HWIO", "NHWC")`` or ``("NHWDC", "HWDIO", "NHWDC")``
        (``("NC", "IO", "NC")`` without spatial dimensions).
    transpose_kernel : bool
    precision, preferred_element_type
        As for :func:`conv_general_dilated`.
    use_consistent_padding : bool
        Read pairs as the forward convolution's padding (JAX ≥ 0.7).

    Returns
    -------
    numpy.ndarray, shape=(N, O, *out) in the order of dimension_numbers[2]

    Examples
    --------
    Each input sample scatters the 2-tap kernel, two apart (NWC layouts):

    >>> import numpy as np
    >>> from convgrad import lax
    >>> x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1)
    >>> w = np.array([1.0, 10.0]).reshape(2, 1, 1)                 # WIO
    >>> lax.conv_transpose(x, w, (2,), "VALID")[0, :, 0]
    array([10.,  1., 20.,  2., 30.,  3.])
    >>> lax.conv_transpose(x, w, (2,), "VALID", transpose_kernel=True)[0, :, 0]
    array([ 1., 10.,  2., 20.,  3., 30.])
    """
    x, w = check_array(lhs, "lhs"), check_array(rhs, "rhs")
    p, flip = _transpose_plan(x, w, strides, padding, rhs_dilation, dimension_numbers, transpose_kernel, precision,
                              preferred_element_type, use_consistent_padding, "conv_transpose")
    return _run_forward(p, x, _kernel_transposed(w, p.dn) if flip else w)


def conv_transpose_backward(
    g: ArrayLike,
    lhs: ArrayLike,
    rhs: ArrayLike,
    strides: Sequence[int],
    padding: Padding,
    rhs_dilation: Optional[Sequence[int]] = None,
    dimension_numbers: DimensionNumbers = None,
    transpose_kernel: bool = False,
    precision: object = None,
    preferred_element_type: object = None,
    use_consistent_padding: bool = False,
) -> LaxGrads:
    """The gradients of :func:`conv_transpose`: what ``jax.vjp(f, lhs, rhs)[1](g)`` returns.

    JAX's complex convention, as for :func:`conv_general_dilated_backward`
    (no conjugation). With ``transpose_kernel=True`` the kernel's gradient
    is flipped back into ``rhs``'s own layout.

    Parameters
    ----------
    g : array_like, shape=the forward output's
    lhs, rhs : array_like
        The forward operands, as for :func:`conv_transpose`.
    strides, padding, rhs_dilation, dimension_numbers, transpose_kernel
        As for :func:`conv_transpose`.
    precision, preferred_element_type, use_consistent_padding
        As for :func:`conv_transpose`.

    Returns
    -------
    LaxGrads
        ``(lhs, rhs)``: shaped like ``lhs`` and ``rhs``.

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import lax
    >>> x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1)
    >>> w = np.array([1.0, 10.0]).reshape(2, 1, 1)
    >>> g = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 1.0]).reshape(1, 6, 1)
    >>> gx, gw = lax.conv_transpose_backward(g, x, w, (2,), "VALID")
    >>> gx[0, :, 0], gw[:, 0, 0]
    (array([10.,  0.,  1.]), array([3., 1.]))
    """
    gg, x, w = check_array(g, "g"), check_array(lhs, "lhs"), check_array(rhs, "rhs")
    p, flip = _transpose_plan(x, w, strides, padding, rhs_dilation, dimension_numbers, transpose_kernel, precision,
                              preferred_element_type, use_consistent_padding, "conv_transpose_backward")
    if not flip:
        return _run_backward(p, gg, x, w)
    grads = _run_backward(p, gg, x, _kernel_transposed(w, p.dn))
    return LaxGrads(grads.lhs, np.ascontiguousarray(_kernel_transposed(grads.rhs, p.dn)))
