"""Checks of single arguments: integers, tuples of them, padding forms, shapes, arrays and dtypes.

Every error names the argument, states the rule and shows the value given.
The geometry built from these checked values lives in :mod:`convgrad._geometry`;
the one call every public function makes is :func:`convgrad._prepare.prepare`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import numpy.typing as npt

IntOrTuple = Union[int, Sequence[int]]
PaddingArg = Union[int, str, Sequence[int], Sequence[Sequence[int]]]
Shape = tuple[int, ...]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

METHODS = ("auto", "direct", "fft", "winograd")
"""``method=`` values: ``"auto"`` (the cost model), ``"direct"`` (never FFT nor Winograd), ``"fft"`` (FFT where it
applies), ``"winograd"`` (Winograd F(2×2, 3×3), F(4×4, 3×3) or F(2×2×2, 3×3×3) where it applies: 3×3 or 3×3×3
kernels, stride 1, ``groups=1``, finite floating data, within the workspace budget)."""

MAX_INT = 2**31 - 1
"""Largest stride, dilation, padding, output padding or size accepted (PyTorch's kernels index with int32 too)."""


# ----------------------------------------------------------------------------- scalars and tuples


def is_int(value: object) -> bool:
    """An integer that is not a bool (a 0-d integer array counts)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.dtype.kind in "iu"
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_sequence(value: object) -> bool:
    """A list, tuple or ≥1-d array (never a string or bytes, which would read as characters or bytes)."""
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim >= 1
    return isinstance(value, Sequence)


def check_int(value: object, name: str, minimum: int, maximum: int = MAX_INT) -> int:
    """Return ``value`` as an int in ``[minimum, maximum]``, or raise naming ``name``."""
    if not is_int(value):
        raise TypeError(f"{name} must be an integer; got {value!r} of type {type(value).__name__}")
    as_int: int = int(value)  # type: ignore[call-overload]
    if as_int < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {as_int}")
    if as_int > maximum:
        raise ValueError(f"{name} must be <= {maximum}; got {as_int}")
    return as_int


def normalize_tuple(value: object, d: int, name: str, minimum: int) -> Shape:
    """An int, or a sequence of ``d`` ints (or of one, broadcast as PyTorch does), ``>= minimum`` -> a ``d``-tuple."""
    if is_int(value) or isinstance(value, (bool, np.bool_)):
        return (check_int(value, name, minimum),) * d
    if not _is_sequence(value):
        raise TypeError(
            f"{name} must be an int or a tuple of {d} ints (one per spatial dimension); got {value!r}"
        )
    items = list(value)  # type: ignore[call-overload]
    if len(items) == 1 and d > 1:
        return (check_int(items[0], f"{name}[0]", minimum),) * d
    if len(items) != d:
        raise ValueError(
            f"{name} must be an int or a tuple of {d} ints (one per spatial dimension); "
            f"got {tuple(items)!r} with {len(items)} entries"
        )
    return tuple(check_int(v, f"{name}[{i}]", minimum) for i, v in enumerate(items))


def normalize_shape(shape: object, name: str) -> Shape:
    """A sequence of non-negative ints -> a tuple."""
    if not _is_sequence(shape) and not (isinstance(shape, np.ndarray) and shape.ndim == 1):
        raise TypeError(f"{name} must be a tuple of ints; got {shape!r}")
    items: list[object] = list(shape)  # type: ignore[call-overload]
    return tuple(check_int(v, f"{name}[{i}]", 0) for i, v in enumerate(items))


def same_padding(kernel: Shape, dilation: Shape) -> tuple[Shape, Shape]:
    """``"same"`` at stride 1: total ``δ(K − 1)`` per dimension, the odd one after (PyTorch's rule)."""
    totals = [dl * (k - 1) for k, dl in zip(kernel, dilation)]
    return tuple(t // 2 for t in totals), tuple(t - t // 2 for t in totals)


def normalize_padding(
    padding: object, d: int, kernel: Shape, dilation: Shape, stride: Shape, *, allow_strings: bool = True
) -> tuple[Shape, Shape]:
    """Every padding form -> ``(before, after)`` tuples.

    Forms: an int; a ``d``-tuple of ints (or a 1-tuple, broadcast); a
    ``d``-tuple of ``(before, after)`` pairs, which may be negative (a crop,
    as in JAX); ``"valid"`` (no padding);
    ``"same"`` (total ``dilation·(k−1)``, the odd one after, stride 1 only,
    as PyTorch).
    """
    if isinstance(padding, str):
        if not allow_strings:
            raise ValueError(
                f"padding must be an int, a tuple of {d} ints or of {d} (before, after) pairs "
                f"for a transposed convolution; got the string {padding!r}"
            )
        if padding == "valid":
            return (0,) * d, (0,) * d
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"padding='same' is not supported for strided convolutions (as in PyTorch); "
                    f"got stride={stride}"
                )
            return same_padding(kernel, dilation)
        raise ValueError(f"padding must be 'valid', 'same', an int or a tuple; got the unknown string {padding!r}")
    if is_int(padding):
        p = check_int(padding, "padding", 0)
        return (p,) * d, (p,) * d
    if not _is_sequence(padding):
        raise TypeError(
            f"padding must be an int, 'valid', 'same', a tuple of {d} ints or of {d} (before, after) pairs; "
            f"got {padding!r}"
        )
    items = list(padding)  # type: ignore[call-overload]
    if len(items) == 1 and d > 1 and is_int(items[0]):
        items = items * d
    if len(items) != d:
        raise ValueError(
            f"padding must have one entry per spatial dimension ({d}); got {tuple(items)!r} with {len(items)} entries"
        )
    lo_list: list[int] = []
    hi_list: list[int] = []
    for i, item in enumerate(items):
        if is_int(item):
            p = check_int(item, f"padding[{i}]", 0)
            lo_list.append(p)
            hi_list.append(p)
        elif _is_sequence(item) and len(item) == 2:  # (before, after): negative values crop
            lo_list.append(check_int(item[0], f"padding[{i}][0]", -MAX_INT))
            hi_list.append(check_int(item[1], f"padding[{i}][1]", -MAX_INT))
        else:
            raise ValueError(f"padding[{i}] must be an int or a (before, after) pair of ints; got {item!r}")
    return tuple(lo_list), tuple(hi_list)


def check_method(method: object) -> str:
    """``method`` must be one of :data:`METHODS`."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    return method


def check_padding_mode(mode: object) -> str:
    """``padding_mode`` must be one of :data:`PADDING_MODES`."""
    if not isinstance(mode, str) or mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}; got {mode!r}")
    return mode


# ----------------------------------------------------------------------------- arrays and dtypes


def _from_torch(a: Any, name: str) -> np.ndarray:
    """A torch tensor as a NumPy array: detached, on the CPU, conjugation resolved; bfloat16 as float32."""
    import torch

    t = a.detach()
    if t.layout != torch.strided:
        raise TypeError(f"{name} must be a dense tensor; got layout {t.layout}")
    t = t.cpu().resolve_conj().resolve_neg()
    if t.dtype == torch.bfloat16:
        t = t.float()  # NumPy has no bfloat16: computed and returned in float32
    return np.asarray(t.numpy())


def check_array(a: object, name: str) -> np.ndarray:
    """``np.asarray`` that refuses non-numeric data, naming the argument.

    A PyTorch tensor is accepted (detached and copied to the CPU; bfloat16
    becomes float32, which NumPy can represent exactly).
    """
    if type(a) is np.ndarray:
        arr = a
    elif type(a).__module__.startswith("torch") and hasattr(a, "detach"):
        arr = _from_torch(a, name)
    else:
        try:
            arr = np.asarray(a)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be an array of numbers; got {type(a).__name__}: {err}") from None
    if arr.dtype.kind not in "biufc":
        raise TypeError(
            f"{name} must have a numeric dtype (bool, integer, floating or complex); got dtype {arr.dtype}"
        )
    return arr


def result_dtype(*arrays: npt.NDArray[Any]) -> np.dtype[Any]:
    """The dtype of the result: NumPy promotion, integers and bools -> float64."""
    dtype = np.result_type(*arrays)
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    return dtype


def is_exact(*arrays: npt.NDArray[Any]) -> bool:
    """Whether every array holds integers or bools (whose results must come out exact)."""
    return all(a.dtype.kind in "biu" for a in arrays)


def compute_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype the arithmetic runs in: float16 is computed in float32."""
    if dtype == np.float16:
        return np.dtype(np.float32)
    return dtype


def check_grad_output_shape(grad_output: np.ndarray, expected: Shape, context: str) -> None:
    """``grad_output`` must have the forward output's shape."""
    if grad_output.shape != expected:
        raise ValueError(
            f"grad_output.shape {grad_output.shape} must equal the forward output shape {expected} ({context})"
        )


def check_bias(b_shape: Shape, c_out: int) -> None:
    """The bias is ``(out_channels,)`` (``b_shape`` a tuple, for NumPy arrays and tensors alike)."""
    if b_shape != (c_out,):
        raise ValueError(f"b must have shape (out_channels,) = ({c_out},); got shape {b_shape}")


def prod(shape: Sequence[int]) -> int:
    """Product of a shape (1 for an empty one)."""
    return math.prod(shape)
