"""The BLAS NumPy is linked against, called directly: one GEMM ``C = A·B + β·C`` on operands given by a starting
element and a leading dimension.

``numpy.matmul`` cannot accumulate into its output (``β = 1``), and it wants
each operand as its own array. The implicit route
(:mod:`convgrad.engine.implicit`) needs both: the ``B`` operand of each of
its GEMMs is the padded input read from a shifted start (the operands of
different kernel offsets overlap in memory), and the products of all kernel
offsets are summed in place. This module finds ``cblas_sgemm``/``cblas_dgemm``
through :mod:`ctypes`, which releases the GIL during the call.

The library looked for first is the one NumPy bundles (NumPy's wheels ship
``scipy-openblas64``, whose symbols are ``scipy_cblas_sgemm64_`` and so on,
the library ``threadpoolctl`` and :func:`convgrad.set_num_threads` control);
where NumPy bundles none, the libraries loaded in the process whose name
contains ``blas`` (on Linux), which may then be another BLAS than NumPy's
(the results are the same; its thread setting may not follow
:func:`convgrad.set_num_threads`). Integer arguments are passed as 64-bit
integers: a library with 32-bit integers reads their low halves (every
integer argument is checked below 2³¹), which the 64-bit calling conventions
(x86-64, AArch64) make exact; on 32-bit platforms the binding is not used.
Before its first use the GEMM is checked against NumPy on small products
(NaN in the output for ``β = 0``, which must not be read; a wide leading
dimension; ``β = 1``; ``Bᵀ``). If that check fails, or no library or symbol
is found, :func:`gemm_function` returns ``None`` and the routes that need it
are not used (the others compute the same results).

Examples
--------
>>> import numpy as np
>>> a, b = np.arange(6.0).reshape(2, 3), np.ones((3, 2))
>>> c = np.zeros((2, 2))
>>> if available():
...     gemm(a, b, b.shape[1], c, 0.0)
...     bool(np.array_equal(c, a @ b))
... else:
...     True
True
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

ENABLED = True
"""Set to ``False`` to stop the engine from calling the BLAS directly (the routes that need it are then skipped)."""

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
INDEX_LIMIT = 1 << 31
"""Every integer argument handed to the BLAS stays below this (a 32-bit-integer BLAS reads their low halves)."""

_SYMBOLS = {
    "f4": ("scipy_cblas_sgemm64_", "cblas_sgemm64_", "scipy_cblas_sgemm", "cblas_sgemm"),
    "f8": ("scipy_cblas_dgemm64_", "cblas_dgemm64_", "scipy_cblas_dgemm", "cblas_dgemm"),
}


def _candidates() -> list[str]:
    """Paths of the libraries that may hold NumPy's BLAS: its bundled ones first, then loaded ``*blas*`` ones."""
    here = os.path.dirname(np.__file__)
    bundled = glob.glob(os.path.join(here, os.pardir, "numpy.libs", "*blas*"))
    bundled += glob.glob(os.path.join(here, ".dylibs", "*blas*"))
    found = sorted({os.path.realpath(path) for path in bundled})
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.split(maxsplit=5)[-1].strip()
                if "blas" in os.path.basename(path).lower() and path.startswith("/") \
                        and os.path.realpath(path) not in found:
                    found.append(path)
    except OSError:  # not Linux: the bundled libraries only
        pass
    return found


def _bind(dtype: str) -> Any:
    """The ``cblas_?gemm`` function for ``dtype`` (``"f4"``, ``"f8"``) with its argument types, or ``None``."""
    scalar = ctypes.c_float if dtype == "f4" else ctypes.c_double
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SYMBOLS[dtype]:
            function = getattr(lib, name, None)
            if function is not None:
                function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, i64, i64, i64, scalar, ptr, i64,
                                     ptr, i64, scalar, ptr, i64]
                function.restype = None
                return function
    return None


def _self_test(function: Any, dtype: str) -> bool:
    """Whether ``function`` computes small products as NumPy does: ignoring NaN in ``C`` when ``β = 0``, adding to
    ``C`` when ``β = 1``, with leading dimensions wider than the rows, and with ``Bᵀ``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5)).astype(dtype)
    b_wide = rng.standard_normal((5, 9)).astype(dtype)
    b = b_wide[:, 2:6]
    c_wide = np.full((3, 7), np.nan, dtype=dtype)
    c = c_wide[:, 1:5]
    function(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, 3, 4, 5, 1.0, a.ctypes.data, 5, b.ctypes.data, 9, 0.0, c.ctypes.data, 7)
    first = np.allclose(c, a @ b, rtol=1e-5, atol=1e-5) and np.isnan(c_wide[:, [0, 5, 6]]).all()
    function(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, 3, 4, 5, 1.0, a.ctypes.data, 5, b.ctypes.data, 9, 1.0, c.ctypes.data, 7)
    second = np.allclose(c, 2 * (a @ b), rtol=1e-5, atol=1e-5)
    bt = np.ascontiguousarray(b.T)  # (4, 5): the product by btᵀ
    d = np.full((3, 4), np.nan, dtype=dtype)
    function(_ROW_MAJOR, _NO_TRANS, _TRANS, 3, 4, 5, 1.0, a.ctypes.data, 5, bt.ctypes.data, 5, 0.0, d.ctypes.data, 4)
    return bool(first and second and np.allclose(d, a @ b, rtol=1e-5, atol=1e-5))


@functools.cache
def _function(dtype: str) -> Any:
    if ctypes.sizeof(ctypes.c_void_p) != 8:  # the 64-bit integer arguments need a 64-bit calling convention
        return None
    try:
        function = _bind(dtype)
        if function is None or not _self_test(function, dtype):
            return None
    except Exception:  # pragma: no cover - a library that cannot be bound or called: not used
        return None
    return function


def gemm_function(dtype: np.dtype[Any]) -> Callable[..., None] | None:
    """The bound ``cblas_?gemm`` for native float32 or float64, or ``None`` (other dtypes or byte orders, not found,
    or :data:`ENABLED` off)."""
    dtype = np.dtype(dtype)
    key = dtype.str[1:]
    if not ENABLED or key not in _SYMBOLS or not dtype.isnative:
        return None
    function: Callable[..., None] | None = _function(key)
    return function


def available(dtype: np.dtype[Any] | type = np.float32) -> bool:
    """Whether the engine can call the BLAS directly for ``dtype`` (float32, float64)."""
    return gemm_function(np.dtype(dtype)) is not None


def _check(base: Array, start: int, rows: int, cols: int, ld: int) -> None:
    """``rows × cols`` elements from ``start`` with leading dimension ``ld`` lie inside C-contiguous ``base``.

    ``start`` moves the pointer; ``rows``, ``cols`` and ``ld`` are the BLAS's integer arguments, kept below 2³¹.
    """
    if not base.flags.c_contiguous:
        raise ValueError("BLAS operand must be C-contiguous")
    if rows < 0 or cols < 0 or ld < max(1, cols) or start < 0:
        raise ValueError(f"BLAS operand of {rows}×{cols} from {start} has a leading dimension of {ld}")
    if rows and cols and start + (rows - 1) * ld + cols > base.size:
        raise ValueError(f"BLAS operand of {rows}×{cols} from {start} (ld {ld}) exceeds its buffer of {base.size}")
    if max(rows, cols, ld) >= INDEX_LIMIT:
        raise ValueError("BLAS operand too large for 32-bit indices")


def gemm(a: Array, b: Array, ldb: int, c: Array, beta: float, *, b_start: int = 0, n: int | None = None,
         c_start: int = 0, ldc: int | None = None, trans_b: bool = False) -> None:
    """``C = A·B + β·C`` in place, ``A (M × K)`` contiguous; ``B (K × n)`` and ``C (M × n)`` read as the elements
    of the C-contiguous buffers ``b`` and ``c`` from ``b_start``/``c_start`` with leading dimensions ``ldb``/``ldc``.

    ``B`` may overlap the ``B`` of another call (the implicit route's shifted
    views of one grid); within one call its rows do not (``ldb`` at least its
    columns, as the BLAS requires). With ``trans_b`` the product is ``A·Bᵀ``, ``B`` read as ``n × K`` rows.
    Every operand is checked to lie inside its buffer before the call; all
    three share the dtype, for which :func:`available` must hold.

    Parameters
    ----------
    a : ndarray, shape=(M, K)
        The left factor, C-contiguous.
    b : ndarray
        The buffer ``B`` is read from, C-contiguous, any shape.
    ldb : int
        Elements between consecutive rows of ``B`` (as stored: of ``Bᵀ`` with ``trans_b``).
    c : ndarray
        The buffer ``C`` is written into, C-contiguous.
    beta : float
        ``0.0`` overwrites ``C`` (its old contents, NaN included, are not read); ``1.0`` adds to it.
    b_start, c_start : int
        Element offset of ``B[0, 0]`` in ``b`` and of ``C[0, 0]`` in ``c``.
    n : int, optional
        Columns of the product; default ``ldb`` (``trans_b``: required).
    ldc : int, optional
        Elements between consecutive rows of ``C``; default ``n`` (at least 1).
    trans_b : bool
        Multiply by ``Bᵀ``: ``B`` is stored as ``n`` rows of ``K``.
    """
    function = gemm_function(a.dtype)
    if function is None or b.dtype != a.dtype or c.dtype != a.dtype:
        raise ValueError(f"no direct BLAS GEMM for {a.dtype}, {b.dtype}, {c.dtype}")
    if not a.flags.c_contiguous or a.ndim != 2:
        raise ValueError("A must be a C-contiguous matrix")
    m, k = a.shape
    if n is None:
        if trans_b:
            raise ValueError("n is required with trans_b")
        n = ldb
    ldc = max(1, n) if ldc is None else ldc
    if trans_b:
        _check(b, b_start, n, k, ldb)
    else:
        _check(b, b_start, k, n, ldb)
    _check(c, c_start, m, n, ldc)
    if not c.flags.writeable:
        raise ValueError("C must be writeable")
    if m == 0 or n == 0:
        return
    if k == 0:  # an empty sum (some BLAS refuse a zero inner dimension and leave C as it was): C = β·C
        if beta != 1.0:
            rows = c.reshape(-1)[c_start : c_start + (m - 1) * ldc + n]
            view = np.lib.stride_tricks.as_strided(rows, (m, n), (ldc * c.itemsize, c.itemsize))
            if beta == 0.0:
                view[...] = 0
            else:
                view *= beta
        return
    size = a.itemsize
    function(_ROW_MAJOR, _NO_TRANS, _TRANS if trans_b else _NO_TRANS, m, n, k, 1.0, a.ctypes.data, max(1, k),
             b.ctypes.data + size * b_start, max(1, ldb), beta, c.ctypes.data + size * c_start, max(1, ldc))


__all__ = ["ENABLED", "INDEX_LIMIT", "available", "gemm", "gemm_function"]
