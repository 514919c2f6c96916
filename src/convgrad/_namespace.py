"""Which array library a call's arrays come from, decided once, at the boundary.

NumPy arrays (and everything ``np.asarray`` reads: lists, scalars, NumPy
scalars and subclasses) take the tuned NumPy routes and never reach this
module's imports. Arrays of another library (CuPy, torch tensors,
``array_api_strict``, JAX, Dask, anything with ``__array_namespace__``) are
*foreign*: :func:`namespace_of` finds their array-API namespace with
``array_api_compat`` (imported on first use) and checks that every array of
the call comes from that one library and sits on one device. The result
then has the type and device of the inputs.

Dask arrays may be combined with arrays of their blocks' type (a NumPy
weight with a NumPy-backed Dask input), as Dask itself allows; every other
mixture is a :class:`TypeError` naming both types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

ARRAY_API_MISSING = "convgrad needs array-api-compat for {kind} arrays: pip install 'convgrad[array-api]'"

_FOREIGN_ROOTS = frozenset(("torch", "cupy", "cupyx", "dask", "jax", "jaxlib", "array_api_strict", "sparse"))
"""Top-level modules whose array types are foreign even without ``__array_namespace__`` (torch tensors)."""

_NDARRAY = np.ndarray

_NUMPY_LIKE = (np.ndarray, np.generic, list, tuple, int, float, complex, bool)


def is_foreign(a: object) -> bool:
    """Whether ``a`` is an array of a library other than NumPy.

    NumPy arrays, NumPy scalars, lists, tuples and Python numbers are not
    (they are read with ``np.asarray`` as always).

    Examples
    --------
    >>> import numpy as np
    >>> is_foreign(np.ones(3)), is_foreign([1.0, 2.0])
    (False, False)
    """
    kind = type(a)
    if kind is np.ndarray or isinstance(a, _NUMPY_LIKE):
        return False
    return hasattr(kind, "__array_namespace__") or kind.__module__.partition(".")[0] in _FOREIGN_ROOTS


def a_type(a: object) -> str:
    """``a torch.Tensor``, ``an array_api_strict.Array``: the type with its article, for messages."""
    name = type_name(a)
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def type_name(a: object) -> str:
    """``torch.Tensor``, ``numpy.ndarray``, ``list``: the type as an error message names it."""
    kind = type(a)
    root = kind.__module__.partition(".")[0]
    if root == "builtins":
        return kind.__qualname__
    if root == "dask" and kind.__qualname__ == "Array":
        return "dask.array.Array"
    return f"{root}.{kind.__qualname__}"


def array_api_compat() -> Any:
    """The ``array_api_compat`` module, or an ImportError naming the extra."""
    try:
        import array_api_compat as compat
    except ImportError:  # pragma: no cover - exercised in a subprocess without the package
        raise ImportError(ARRAY_API_MISSING.format(kind="non-NumPy")) from None
    return compat


@dataclass(frozen=True)
class Namespace:
    """The array library of a call's foreign arrays."""

    xp: Any
    """Its array-API namespace (``array_api_compat``'s wrapper for torch, CuPy, NumPy and Dask)."""
    device: Any
    """The device every array is on."""
    is_dask: bool
    """Whether the arrays are Dask arrays (computed block by block by :mod:`convgrad.dask`)."""
    name: str
    """The array type, as messages name it."""


def _blocks_type(a: Any) -> type:
    """The type of a Dask array's blocks (``numpy.ndarray`` unless it wraps CuPy or another library)."""
    meta = getattr(a, "_meta", None)
    return np.ndarray if meta is None else type(meta)


def namespace_of(arrays: Mapping[str, object]) -> Namespace:
    """The one library of the non-``None`` ``arrays`` (at least one of them foreign).

    Raises
    ------
    TypeError
        For arrays of two libraries (a NumPy weight with a torch input):
        ``w is a numpy.ndarray but x is a torch.Tensor``.
    ValueError
        For arrays of one library on two devices.
    """
    given = [(name, a) for name, a in arrays.items() if a is not None]
    first_name, first = next((name, a) for name, a in given if is_foreign(a))
    compat = array_api_compat()
    is_dask = bool(compat.is_dask_array(first))
    reference = compat.array_namespace(first)
    for name, a in given:
        if a is first:
            continue
        if is_dask and not compat.is_dask_array(a):
            blocks = _blocks_type(first)
            if not isinstance(a, blocks):
                raise TypeError(
                    f"{name} is {a_type(a)} but {first_name} is a Dask array of {blocks.__module__}."
                    f"{blocks.__qualname__} blocks: pass a Dask array or an array of its blocks' type"
                )
            continue
        same = is_foreign(a) and compat.is_dask_array(a) == is_dask
        if same:
            try:
                same = compat.array_namespace(a) is reference
            except TypeError:
                same = False
        if not same:
            raise TypeError(
                f"{name} is {a_type(a)} but {first_name} is {a_type(first)}: pass arrays of one "
                f"library (the result has the type and device of the inputs)"
            )
    device = None if is_dask else compat.device(first)
    if not is_dask:
        for name, a in given:
            if compat.device(a) != device:
                raise ValueError(f"{name} is on device {compat.device(a)} but {first_name} is on device {device}")
    return Namespace(reference, device, is_dask, type_name(first))


def writeable(a: Any) -> bool:
    """Whether ``a`` supports item assignment (JAX arrays do not)."""
    return type(a).__module__.partition(".")[0] not in ("jax", "jaxlib")


def set_at(a: Any, index: tuple[Any, ...], value: Any) -> Any:
    """``a[index] = value``; returns the updated array (a new one for JAX, which has no item assignment)."""
    if writeable(a):
        a[index] = value
        return a
    return a.at[index].set(value)


def add_at(a: Any, index: tuple[Any, ...], value: Any) -> Any:
    """``a[index] += value``; returns the updated array (a new one for JAX)."""
    if writeable(a):
        a[index] += value
        return a
    return a.at[index].add(value)


def is_complex(xp: Any, dtype: Any) -> bool:
    """Whether ``dtype`` is a complex dtype of namespace ``xp``."""
    return bool(xp.isdtype(dtype, "complex floating"))


def conj(a: Any) -> Any:
    """``conj(a)`` for a complex array of any namespace, ``a`` itself otherwise."""
    if type(a) is _NDARRAY:
        return np.conj(a) if a.dtype.kind == "c" else a
    xp = array_api_compat().array_namespace(a)
    return xp.conj(a) if is_complex(xp, a.dtype) else a


def itemsize(xp: Any, dtype: Any) -> int:
    """Bytes per element of ``dtype`` in namespace ``xp``."""
    size = getattr(dtype, "itemsize", None)
    if isinstance(size, int):
        return size
    if xp.isdtype(dtype, "bool"):
        return 1
    if xp.isdtype(dtype, "integral"):
        return int(xp.iinfo(dtype).bits) // 8
    bits = int(xp.finfo(dtype).bits)
    return bits // 4 if is_complex(xp, dtype) else bits // 8


def float64_or_default(xp: Any, device: Any) -> Any:
    """float64 where the namespace has it on ``device``, else its default real floating dtype."""
    try:
        info = xp.__array_namespace_info__()
        if "float64" in info.dtypes(device=device, kind="real floating"):
            return xp.float64
        return info.default_dtypes(device=device)["real floating"]
    except (AttributeError, TypeError):  # an older namespace without the inspection API
        return xp.float64


def compute_dtype(xp: Any, dtype: Any) -> Any:
    """The dtype the arithmetic runs in: 16-bit floats (float16, bfloat16) in float32, complex32 in complex64."""
    if xp.isdtype(dtype, "real floating") and xp.finfo(dtype).bits < 32:
        return xp.float32
    if is_complex(xp, dtype) and xp.finfo(dtype).bits < 32:
        return xp.complex64
    return dtype
