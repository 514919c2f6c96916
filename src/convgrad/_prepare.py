"""The one boundary: every public convolution function's arguments in, checked and ready arrays out.

:func:`prepare` is the only call a public function (core, transposed, double
backward, the torch bridge, the TensorFlow and SciPy conventions through the
core) makes before handing work to :mod:`convgrad.engine`. It checks every
argument before any work, builds the geometry (remembered for plain
arguments), settles the dtypes and adds the batch axis of unbatched calls.
Errors are raised here and nowhere else. What the checks concluded for a
valid call of NumPy arrays and plain arguments is remembered by the arrays'
names, shapes and dtypes and the arguments' exact values and types
(:func:`_call_key`), which takes a call of the 5×5 image with a 3×3 kernel
from 4.7 to 2.7 µs here; any other call, and every invalid one, is checked in
full.

Array roles go by argument name: ``x``/``ggx`` have the forward input's shape,
``grad_output`` the forward output's, ``w``/``ggw`` the weight's, ``b``/``ggb``
the bias's. For a transposed convolution (``transposed=True``) the geometry is
that of the forward convolution it is the adjoint of, so ``x`` plays the
forward *output* and ``grad_output`` the forward *input*.

Array libraries: with ``native=True`` (every public function of the core)
arrays of another library than NumPy (CuPy, torch tensors,
``array_api_strict``, JAX, Dask) stay in their library: :func:`prepare`
checks that they all come from one library and one device, settles the
dtypes by that library's promotion and casts in its namespace, and the
engine computes them on the generic route (Dask: block by block). NumPy calls
pay one ``type(a) is np.ndarray`` test per array for this. ``native=False``
(the torch bridge) reads every array as a NumPy array, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from . import _namespace
from ._arguments import (
    check_array,
    check_bias,
    check_grad_output_shape,
    check_method,
    compute_dtype,
    is_exact,
    normalize_shape,
    result_dtype,
)
from ._geometry import Geometry, conv_geometry, transpose_geometry
from ._namespace import Namespace, is_foreign
from .engine.state import Memo

Array = npt.NDArray[Any]

_BATCHED_LIKE_INPUT = ("x", "ggx")

_PLAIN = frozenset((int, str))

_NDARRAY = np.ndarray

_GEOMETRIES: Memo[tuple[Any, ...], Geometry] = Memo(512)


def _exact_key(value: object) -> object:
    """A hashable key that tells ``2`` from ``2.0`` and ``True``; TypeError for anything but ints, strs, tuples."""
    kind = type(value)
    if kind is int or kind is str or value is None:
        return value if kind is int else (kind, value)  # ints stand for themselves, strings and None are tagged
    if kind is tuple or kind is list:
        return (kind, tuple(_exact_key(v) for v in value))  # type: ignore[attr-defined]
    raise TypeError(value)


def _plain_key(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A key for argument values that tells ``2`` from ``2.0`` and ``True``; TypeError for anything but ints,
    strs, None, tuples and lists."""
    if _PLAIN.issuperset(map(type, values)):  # ints and strings: their types tell them apart already
        return values
    return tuple([_exact_key(v) for v in values])


def checked_geometry(x_shape: tuple[int, ...], w_shape: tuple[int, ...], *, transposed: bool = False,
                     **kwargs: Any) -> Geometry:
    """:func:`conv_geometry` (or :func:`transpose_geometry`), remembered for plain arguments (~15 µs a call).

    Only successful checks are remembered, keyed by the exact types and
    values of the arguments, so every invalid call still raises from the
    checks; arguments of other types are checked every time.
    """
    build = transpose_geometry if transposed else conv_geometry
    try:
        key = (transposed, x_shape, w_shape, tuple(kwargs), _plain_key(tuple(kwargs.values())))
    except TypeError:
        return build(x_shape, w_shape, **kwargs)
    geom = _GEOMETRIES.get(key)
    if geom is None:
        geom = build(x_shape, w_shape, **kwargs)
        _GEOMETRIES.put(key, geom)
    return geom


@dataclass
class Prepared:
    """A checked call: its geometry, dtypes and arrays (batched, in the compute dtype).

    For NumPy calls ``xp`` is ``None`` and the arrays are NumPy arrays; for
    another library ``xp`` is its array-API namespace, the arrays are that
    library's (``Array`` then stands for them) and the dtypes are its dtypes.
    """

    geom: Geometry
    dtype: np.dtype[Any]
    """The result dtype: NumPy's promotion, integers and bools as float64."""
    work: np.dtype[Any]
    """The dtype the arithmetic runs in (float16 runs in float32)."""
    exact: bool
    """Whether every array holds integers or bools."""
    method: str
    arrays: dict[str, Optional[Array]]
    xp: Any = None
    """The array-API namespace of a call on another library's arrays; ``None`` for NumPy."""
    device: Any = None
    """The device of those arrays (``None`` for NumPy and Dask)."""

    def __getitem__(self, name: str) -> Array:
        a = self.arrays[name]
        if a is None:  # pragma: no cover - a caller asking for an array it made optional
            raise KeyError(name)
        return a

    def get(self, name: str) -> Optional[Array]:
        return self.arrays.get(name)

    def finish(self, a: Array, batched_like_input: bool = True) -> Array:
        """Cast to the result dtype; drop the batch axis of unbatched calls (for batched results)."""
        if self.xp is not None:
            a = self.xp.astype(a, self.dtype, copy=False)
            return a if (self.geom.batched or not batched_like_input) else a[0, ...]
        a = a.astype(self.dtype, copy=False)
        return a if (self.geom.batched or not batched_like_input) else a[0]

    def zeros(self, shape: tuple[int, ...]) -> Array:
        """Zeros in the compute dtype, of the call's array type (and device)."""
        if self.xp is None:
            return np.zeros(shape, dtype=self.work)
        if self.device is None:
            return self.xp.zeros(shape, dtype=self.work)  # type: ignore[no-any-return]
        return self.xp.zeros(shape, dtype=self.work, device=self.device)  # type: ignore[no-any-return]

    def add_bias(self, y: Array, b: Array) -> Array:
        """``y + b`` with ``b (O,)`` broadcast over ``y (N, O, *Q)``, in place for NumPy arrays."""
        shape = (-1,) + (1,) * self.geom.d
        if self.xp is None:
            y += b.reshape(shape)
            return y
        return y + self.xp.reshape(b, shape)  # type: ignore[no-any-return]

def _context(arrays: Mapping[str, np.ndarray], geom: Geometry) -> str:
    x = f"x.shape {arrays['x'].shape}" if "x" in arrays else f"input_shape {geom.input_shape}"
    w = f"w.shape {arrays['w'].shape}" if "w" in arrays else f"weight_shape {geom.weight_shape}"
    return f"{x}, {w}"


def prepare(
    arrays: Mapping[str, object],
    *,
    transposed: bool = False,
    input_shape: object = None,
    weight_shape: object = None,
    method: object = "auto",
    native: bool = False,
    **geometry: Any,
) -> Prepared:
    """Check a call and return its :class:`Prepared` form.

    ``arrays`` maps argument names (``x``, ``w``, ``b``, ``grad_output``,
    ``ggx``, ``ggw``, ``ggb``) to what the caller passed (``None`` for an
    omitted optional array); ``input_shape``/``weight_shape`` stand in for
    ``x``/``w`` when the call has only their shapes; ``geometry`` holds the
    geometry keywords of :func:`conv_geometry` or :func:`transpose_geometry`.
    ``native``: keep arrays of another library than NumPy in their library
    (array type in = array type out); without it every array is read as a
    NumPy array (torch tensors detached and copied to the CPU).
    """
    key = _call_key(arrays, transposed, input_shape, weight_shape, method, geometry)
    if key is not None:
        known = _CALLS.get(key)
        if known is not None:
            return _ready(arrays, *known)
    checked = {}
    for name, a in arrays.items():
        if a is not None:
            if native and type(a) is not _NDARRAY and is_foreign(a):
                return _prepare_foreign(arrays, transposed, input_shape, weight_shape, method, geometry)
            checked[name] = check_array(a, name)
    method_s = check_method(method)
    x_name, w_name = "x", "w"
    if "x" in checked:
        x_shape = checked["x"].shape
    else:
        x_shape, x_name = normalize_shape(input_shape, "input_shape"), "input_shape"
    if "w" in checked:
        w_shape = checked["w"].shape
    else:
        w_shape, w_name = normalize_shape(weight_shape, "weight_shape"), "weight_shape"
    geom = checked_geometry(x_shape, w_shape, transposed=transposed, x_name=x_name, w_name=w_name, **geometry)
    as_output = geom.input_shape if transposed else geom.output_shape
    if "grad_output" in checked and checked["grad_output"].shape != as_output:
        check_grad_output_shape(checked["grad_output"], as_output, _context(checked, geom))
    bias_size = geom.c_in if transposed else geom.c_out
    if "b" in checked:
        check_bias(checked["b"].shape, bias_size)
    if "ggx" in arrays:  # double backward
        for name, like, rule in (("ggx", x_shape, "x.shape"), ("ggw", w_shape, "w.shape"),
                                 ("ggb", (bias_size,), "(out_channels,) =")):
            if name in checked and checked[name].shape != like:
                raise ValueError(f"{name}.shape {checked[name].shape} must equal {rule} {like}")
    dtype = result_dtype(*checked.values())
    known = (geom, dtype, compute_dtype(dtype), is_exact(*checked.values()), method_s)
    if key is not None:
        _CALLS.put(key, known)
    return _ready({name: checked.get(name) for name in arrays}, *known)


_CALLS: Memo[tuple[Any, ...], tuple[Geometry, np.dtype[Any], np.dtype[Any], bool, str]] = Memo(512)
"""What :func:`prepare` concluded from a call of NumPy arrays and plain arguments, by :func:`_call_key`."""


def _call_key(arrays: Mapping[str, object], transposed: bool, input_shape: object, weight_shape: object,
              method: object, geometry: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The key of a call whose checks depend only on its arrays' names, shapes and dtypes and its plain arguments
    (every array a NumPy array or ``None``, no shapes given instead, ints/strs/tuples/lists/None for the rest);
    ``None`` for any other call, which is checked in full. Only calls that passed the checks are remembered, so
    an invalid call always raises from them."""
    if input_shape is not None or weight_shape is not None or type(method) is not str:
        return None
    described: list[Any] = [transposed, method, tuple(geometry)]
    for name, a in arrays.items():
        if a is None:
            described.append(name)
        elif type(a) is _NDARRAY:
            described.append((name, a.shape, a.dtype))  # type: ignore[attr-defined]
        else:
            return None
    try:
        described.append(_plain_key(tuple(geometry.values())))
    except TypeError:
        return None
    return tuple(described)


def _ready(arrays: Mapping[str, object], geom: Geometry, dtype: np.dtype[Any], work: np.dtype[Any], exact: bool,
           method: str) -> Prepared:
    """The :class:`Prepared` call: the (checked NumPy) arrays batched and in the compute dtype."""
    ready: dict[str, Optional[Array]] = {}
    for name, a in arrays.items():
        if a is not None:
            if not geom.batched and (name in _BATCHED_LIKE_INPUT or name == "grad_output"):
                a = a[np.newaxis]  # type: ignore[index]
            a = a.astype(work, copy=False)  # type: ignore[attr-defined]
        ready[name] = a  # type: ignore[assignment]
    return Prepared(geom, dtype, work, exact, method, ready)


# ----------------------------------------------------------------------------- arrays of another library


def _shape(a: Any, name: str) -> tuple[int, ...]:
    shape = tuple(a.shape)
    if not all(isinstance(s, int) for s in shape):  # a Dask array of unknown chunk sizes has NaN sizes
        raise ValueError(
            f"{name} has unknown sizes {shape}; compute them first (dask: {name}.compute_chunk_sizes())"
        )
    return shape


def _check_dtype(a: Any, name: str, xp: Any) -> None:
    if not xp.isdtype(a.dtype, ("bool", "integral", "real floating", "complex floating")):
        raise TypeError(
            f"{name} must have a numeric dtype (bool, integer, floating or complex); got dtype {a.dtype}"
        )


def _result_dtype(named: Mapping[str, Any], ns: Namespace) -> tuple[Any, bool]:
    """The library's promotion of the arrays' dtypes (integers and bools as float64 where the device has it)."""
    xp = ns.xp
    try:
        dtype = xp.result_type(*(a.dtype for a in named.values()))
    except TypeError as err:
        listed = ", ".join(f"{name}: {a.dtype}" for name, a in named.items())
        raise TypeError(f"{ns.name} arrays of dtypes {listed} have no common dtype in their library: {err}") from None
    exact = all(xp.isdtype(a.dtype, ("bool", "integral")) for a in named.values())
    if xp.isdtype(dtype, ("bool", "integral")):
        dtype = _namespace.float64_or_default(xp, ns.device)
    return dtype, exact


def _torch_ready(a: Any, name: str) -> Any:
    """A torch tensor detached from autograd (convgrad's results never require grad), dense only."""
    import torch

    if a.layout != torch.strided:
        raise TypeError(f"{name} must be a dense tensor; got layout {a.layout}")
    return a.detach()


def _prepare_foreign(arrays: Mapping[str, object], transposed: bool, input_shape: object, weight_shape: object,
                     method: object, geometry: Mapping[str, Any]) -> Prepared:
    """:func:`prepare` for arrays of another library: the same checks, in that library's namespace."""
    ns = _namespace.namespace_of(arrays)
    xp = ns.xp
    compat = _namespace.array_api_compat()
    given: dict[str, Any] = {}
    for name, a in arrays.items():
        if a is None:
            continue
        if ns.is_dask and not compat.is_dask_array(a):
            import dask.array as da

            a = da.from_array(a, chunks=-1)  # type: ignore[no-untyped-call]  # a weight or bias: one chunk
        elif compat.is_torch_array(a):
            a = _torch_ready(a, name)
        _check_dtype(a, name, xp)
        given[name] = a
    # The shape and geometry checks are the NumPy path's, run on stand-ins: one float64 zero broadcast to
    # each array's shape (no memory, whatever the shape), so there is one set of checks and messages.
    zero = np.zeros((), dtype=np.float64)
    stand_ins = {name: (None if a is None else np.broadcast_to(zero, _shape(given[name], name)))
                 for name, a in arrays.items()}
    standard = prepare(stand_ins, transposed=transposed, input_shape=input_shape, weight_shape=weight_shape,
                       method=method, **geometry)
    geom, method_s = standard.geom, standard.method
    if ns.is_dask:
        from .dask import check_chunks

        check_chunks(given, geom)
    dtype, exact = _result_dtype(given, ns)
    work = _namespace.compute_dtype(xp, dtype)
    ready: dict[str, Optional[Array]] = {name: None for name in arrays}
    for name, a in given.items():
        batched = name in _BATCHED_LIKE_INPUT or name == "grad_output"
        if batched and not geom.batched:
            a = xp.expand_dims(a, axis=0)
        ready[name] = xp.astype(a, work, copy=False)
    return Prepared(geom, dtype, work, exact, method_s, ready, xp, ns.device)
