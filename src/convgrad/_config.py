"""The im2col workspace budget: how much scratch memory one call may use."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

DEFAULT_WORKSPACE_BYTES = 256 * 1024 * 1024
"""Default budget for the im2col / col2im workspace of one call: 256 MiB."""

_workspace_bytes = DEFAULT_WORKSPACE_BYTES


def get_workspace_budget() -> int:
    """Return the current workspace budget in bytes.

    Examples
    --------
    >>> import convgrad as cg
    >>> cg.get_workspace_budget() == 256 * 1024 * 1024
    True
    """
    return _workspace_bytes


def set_workspace_budget(nbytes: int) -> int:
    """Set the workspace budget in bytes and return the previous one.

    The convolution routines copy the windows of the padded input into a
    matrix (im2col) so that each contraction is one GEMM. The batch is
    processed in chunks so that this matrix, and the matrix of windows the
    input gradient folds back, stay under ``nbytes`` each. A single sample is
    never split, so one sample's windows are the floor of the workspace.

    Parameters
    ----------
    nbytes : int
        The budget, at least 1 byte.

    Returns
    -------
    int
        The budget that was in force before.

    Raises
    ------
    ValueError
        If ``nbytes`` is not a positive integer.

    Examples
    --------
    >>> import convgrad as cg
    >>> old = cg.set_workspace_budget(64 * 1024 * 1024)
    >>> cg.get_workspace_budget()
    67108864
    >>> _ = cg.set_workspace_budget(old)
    """
    global _workspace_bytes
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 1:
        raise ValueError(f"nbytes must be a positive integer number of bytes; got {nbytes!r}")
    previous = _workspace_bytes
    _workspace_bytes = nbytes
    return previous


@contextlib.contextmanager
def workspace_budget(nbytes: int) -> Iterator[None]:
    """Use a different workspace budget inside a ``with`` block.

    Examples
    --------
    >>> import numpy as np
    >>> import convgrad as cg
    >>> x, w = np.ones((4, 1, 5, 5)), np.ones((1, 1, 3, 3))
    >>> with cg.workspace_budget(1024):   # forces one sample per chunk
    ...     y = cg.conv(x, w)
    >>> float(y[0, 0, 0, 0])
    9.0
    """
    previous = set_workspace_budget(nbytes)
    try:
        yield
    finally:
        set_workspace_budget(previous)


def batch_chunks(n: int, per_sample_bytes: int) -> Iterator[tuple[int, int]]:
    """``[n0, n1)`` ranges of samples whose workspace stays within the budget (>= 1 sample)."""
    step = max(1, _workspace_bytes // max(1, per_sample_bytes))
    for n0 in range(0, n, step):
        yield n0, min(n, n0 + step)


# ----------------------------------------------------------------------------- the reusable workspace

_local = threading.local()
REUSE_WORKSPACE = True
"""Whether each thread keeps its im2col workspace between calls (see :func:`scratch`)."""


def scratch(shape: tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """An uninitialised array backed by this thread's reusable workspace.

    The workspace is one byte buffer per thread (so concurrent calls from
    several threads never share it), grown when a call needs more and kept
    for the next call: a fresh large allocation costs the kernel a page fault
    and a zero-fill per 4 KiB page, about as much as writing the buffer once.
    Its size is bounded by the chunk size, i.e. by :func:`get_workspace_budget`
    (or one sample's windows, if that is larger). Results never live in it.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if not REUSE_WORKSPACE:
        return np.empty(shape, dtype=dtype)
    buffer: npt.NDArray[np.uint8] | None = getattr(_local, "buffer", None)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = np.empty(max(nbytes, 64), dtype=np.uint8)
        _local.buffer = buffer
    return buffer[:nbytes].view(dtype).reshape(shape)


# ----------------------------------------------------------------------------- both cores for the copies

PARALLEL_MIN_ELEMENTS = 1 << 20
"""Copies and folds over fewer elements than this run on the calling thread only."""

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def copy_threads() -> int:
    """Threads for the element-wise copies and sums (NumPy releases the GIL in them): the cores, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def split_run(total: int, elements: int, work: Callable[[int, int], None]) -> None:
    """Run ``work(i0, i1)`` over ``[0, total)``, split into one contiguous range per core.

    The im2col copy, the fold and the depthwise multiply-adds are single
    threaded in NumPy while BLAS uses every core; splitting them by channel
    (disjoint output ranges, so no locking) uses the idle cores. Small jobs
    (under :data:`PARALLEL_MIN_ELEMENTS` ``elements``) and single-core
    machines run on the calling thread.
    """
    global _pool
    threads = min(copy_threads(), total)
    if threads <= 1 or elements < PARALLEL_MIN_ELEMENTS:
        work(0, total)
        return
    with _pool_lock:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor  # ~10 ms to import: only when first needed

            _pool = ThreadPoolExecutor(max_workers=copy_threads(), thread_name_prefix="convgrad")
        pool = _pool
    bounds = [total * i // threads for i in range(threads + 1)]
    futures = [pool.submit(work, a, b) for a, b in itertools.pairwise(bounds) if b > a]
    for future in futures:
        future.result()
