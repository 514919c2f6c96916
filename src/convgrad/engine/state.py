"""Every piece of the engine's shared mutable state, in one place: the budget, scratch buffers, the pool, caches.

Rules this module keeps, so that no route has to think about them:

* **The workspace budget** is a process-wide default (:func:`set_workspace_budget`)
  that a ``with workspace_budget(n):`` block overrides for its own context only
  (a :mod:`contextvars` variable: each thread and each asyncio task sees its own).
* **Scratch buffers** are per thread (:func:`scratch`): two threads never share
  one. A thread keeps its buffer between calls (a fresh large allocation costs
  a page fault per 4 KiB); :func:`release_workspace` frees it, and the buffer
  of a finished thread is freed with the thread.
* **The copy pool** (:func:`split_run`) never outlives the call that uses it:
  ``split_run`` returns, or raises, only after every piece it handed out has
  finished, also when one piece raises or the caller is interrupted
  (``KeyboardInterrupt``). A forked child starts with no pool (the parent's
  threads do not exist there) and makes its own; after interpreter shutdown
  has begun, work runs on the calling thread.
* **Caches** are ``functools.lru_cache`` (thread-safe) or :class:`Memo`, all
  registered here and cleared together by :func:`clear_caches`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import math
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

K = TypeVar("K")
V = TypeVar("V")
F = TypeVar("F", bound=Callable[..., Any])

# ----------------------------------------------------------------------------- the workspace budget


DEFAULT_WORKSPACE_BYTES = 256 * 1024 * 1024
"""Default budget for the scratch matrices of one call: 256 MiB."""

_default_budget = DEFAULT_WORKSPACE_BYTES
_budget: contextvars.ContextVar[int | None] = contextvars.ContextVar("convgrad_workspace_budget", default=None)


def _check_budget(nbytes: object) -> int:
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 1:
        raise ValueError(f"nbytes must be a positive integer number of bytes; got {nbytes!r}")
    return nbytes


def get_workspace_budget() -> int:
    """Return the workspace budget in force here, in bytes.

    Inside a :func:`workspace_budget` block that block's value, otherwise the
    process default set by :func:`set_workspace_budget` (256 MiB to start with).

    Examples
    --------
    >>> import convgrad as cg
    >>> cg.get_workspace_budget() == 256 * 1024 * 1024
    True
    """
    local = _budget.get()
    return _default_budget if local is None else local


def set_workspace_budget(nbytes: int) -> int:
    """Set the process-wide default workspace budget in bytes and return the previous default.

    The convolution routines copy the windows of the padded input into
    matrices (im2col) so that each contraction is a GEMM, and the FFT route
    keeps the transforms of blocks. Every route keeps this scratch memory
    within the budget: the batch is processed in chunks, a single sample that
    does not fit is split over output positions and channels, and a route
    whose smallest piece cannot fit is not chosen. Results and padded copies
    of the inputs are not counted.

    A :func:`workspace_budget` block overrides the default in its own context
    (thread or task) only.

    Parameters
    ----------
    nbytes : int
        The budget, at least 1 byte.

    Returns
    -------
    int
        The default that was in force before.

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
    global _default_budget
    nbytes = _check_budget(nbytes)
    previous = _default_budget
    _default_budget = nbytes
    return previous


@contextlib.contextmanager
def workspace_budget(nbytes: int) -> Iterator[None]:
    """Use a different workspace budget inside a ``with`` block, in this thread (or task) only.

    Other threads keep their own budget; when the block ends the budget in
    force before it is back, however other threads enter and leave theirs.

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
    token = _budget.set(_check_budget(nbytes))
    try:
        yield
    finally:
        _budget.reset(token)


def batch_chunks(n: int, per_sample_bytes: int, budget: int | None = None) -> Iterator[tuple[int, int]]:
    """``[n0, n1)`` ranges of samples whose workspace stays within the budget (>= 1 sample)."""
    limit = get_workspace_budget() if budget is None else budget
    step = max(1, limit // max(1, per_sample_bytes))
    for n0 in range(0, n, step):
        yield n0, min(n, n0 + step)


# ----------------------------------------------------------------------------- the reusable workspace

_local = threading.local()
REUSE_WORKSPACE = True
"""Whether each thread keeps its scratch buffer between calls (see :func:`scratch`)."""


def scratch(shape: tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """An uninitialised array backed by this thread's reusable buffer.

    One byte buffer per thread, grown when a call needs more and kept for the
    next call. Its size is bounded by the workspace budget (the routes never
    ask for more). Results never live in it. Free it with :func:`release_workspace`.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if not REUSE_WORKSPACE:
        return np.empty(shape, dtype=dtype)
    buffer: npt.NDArray[np.uint8] | None = getattr(_local, "buffer", None)
    if buffer is None or buffer.nbytes < nbytes:
        _local.buffer = None  # let the old buffer go before the new one is allocated
        buffer = np.empty(max(nbytes, 64), dtype=np.uint8)
        _local.buffer = buffer
    return buffer[:nbytes].view(dtype).reshape(shape)


def release_workspace() -> int:
    """Free the calling thread's scratch buffer; return how many bytes it held.

    A thread keeps the scratch memory of its largest call (at most the
    workspace budget) for the next one. Call this in a long-lived thread after
    a burst of large convolutions to give that memory back; the next call
    allocates again.

    Examples
    --------
    >>> import numpy as np
    >>> import convgrad as cg
    >>> _ = cg.conv(np.ones((2, 3, 64, 64)), np.ones((4, 3, 3, 3)))
    >>> cg.release_workspace() >= 0
    True
    >>> cg.release_workspace()
    0
    """
    buffer: npt.NDArray[np.uint8] | None = getattr(_local, "buffer", None)
    _local.buffer = None
    return 0 if buffer is None else int(buffer.nbytes)


# ----------------------------------------------------------------------------- both cores for the copies

PARALLEL_MIN_ELEMENTS = 1 << 20
"""Copies and folds over fewer elements than this run on the calling thread only."""

_splitting = threading.local()  # .active: this thread is running a range of split_run


@functools.cache
def blas_controller() -> Any:
    """A ``threadpoolctl.ThreadpoolController`` (made once), or ``None`` without threadpoolctl (then the routes
    that run whole chunks per thread on a single-threaded BLAS are not used)."""
    try:
        import threadpoolctl
    except ImportError:  # pragma: no cover - threadpoolctl comes with the test and bench extras
        return None
    return threadpoolctl.ThreadpoolController()


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = os.getpid()


def _forget_pool_after_fork() -> None:
    """In a forked child: the parent's pool threads do not exist here, and its locks may be held."""
    global _pool, _pool_lock, _pool_pid, _blas_lock, _blas_users, _blas_limiter
    _pool, _pool_lock, _pool_pid = None, threading.Lock(), os.getpid()
    _blas_lock, _blas_users, _blas_limiter = threading.Lock(), 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


_num_threads: int | None = None

# ----------------------------------------------------------------------------- BLAS on one thread, shared

_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter: Any = None


@contextlib.contextmanager
def single_threaded_blas(controller: Any) -> Iterator[None]:
    """The BLAS limited to one thread while any caller is inside this block.

    The limit is process-wide (``controller`` is a
    ``threadpoolctl.ThreadpoolController``), so overlapping callers share it:
    the first to enter sets it, the last to leave restores what was there
    before, also when a caller raises or is interrupted. (Each caller setting
    and restoring its own limit would leave the BLAS on one thread for good
    after two overlapping calls: the later one restores the earlier one's limit.)
    """
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            _blas_limiter = controller.limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limiter is not None:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def get_num_threads() -> int:
    """Return the number of threads convgrad computes with: the last :func:`set_num_threads`, else the cores.

    Examples
    --------
    >>> from convgrad.engine.state import get_num_threads
    >>> get_num_threads() >= 1
    True
    """
    return _num_threads if _num_threads is not None else max(1, os.cpu_count() or 1)


def set_num_threads(n: int) -> int:
    """Use ``n`` threads for every part of a convolution; return the previous setting.

    One setting for everything that runs in parallel: the BLAS behind NumPy's
    matrix products (through ``threadpoolctl``, when it is installed; the
    setting then applies to every user of that BLAS in the process), the
    engine's copy pool (im2col, fold, the depthwise multiply-adds) and the
    compiled kernels of ``convgrad[jit]``, which run on that pool. The default
    is the number of cores.

    Parameters
    ----------
    n : int
        At least 1.

    Returns
    -------
    int
        The thread count in force before.

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer.

    Examples
    --------
    >>> from convgrad.engine.state import get_num_threads, set_num_threads
    >>> old = set_num_threads(1)
    >>> get_num_threads()
    1
    >>> _ = set_num_threads(old)
    """
    global _num_threads, _pool
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer number of threads; got {n!r}")
    previous = get_num_threads()
    _num_threads = n
    try:
        import threadpoolctl
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn and the bench extra
        pass
    else:
        threadpoolctl.threadpool_limits(limits=n, user_api="blas")
    with _pool_lock:
        if _pool is not None and _pool_size < copy_threads():
            _pool.shutdown(wait=False)  # idle threads end; a larger pool is made on next use
            _pool = None
    if n != previous:
        clear_caches()  # remembered routes depend on the thread count (the compiled kernels' per-thread buffers)
    return previous


def copy_threads() -> int:
    """Threads for the element-wise copies, sums and compiled kernels (all release the GIL).

    :func:`get_num_threads`; by default the cores, at most 8.
    """
    if _num_threads is not None:
        return _num_threads
    return _default_threads()


@functools.cache
def _default_threads() -> int:
    """The cores, at most 8 (asked once: ``os.cpu_count`` cost a few µs per call, on every convolution)."""
    return max(1, min(8, os.cpu_count() or 1))


def _get_pool() -> ThreadPoolExecutor | None:
    """The process's copy pool, made on first use; ``None`` once interpreter shutdown has begun."""
    global _pool, _pool_size
    if _pool_pid != os.getpid():  # forked by a path that skipped the at-fork hook
        _forget_pool_after_fork()
    with _pool_lock:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor  # ~10 ms to import: only when first needed

            _pool_size = copy_threads()
            _pool = ThreadPoolExecutor(max_workers=_pool_size, thread_name_prefix="convgrad")
        return _pool


class _Range:
    """One range of a :func:`split_run` on the pool.

    Its one-element ``token`` goes to whichever thread pops it first (:func:`_claim`; ``list.pop`` is one atomic
    step): the pool thread, which then runs the range, or the caller taking it back, after which the pool thread
    skips it. The pool thread flags the end of a range it ran (and any error), then releases ``done``,
    which the caller holds from the start.
    """

    __slots__ = ("done", "ended", "error", "token")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.ended = False
        self.error: BaseException | None = None
        self.token: list[None] = [None]


def _claim(r: _Range) -> bool:
    """Pop range ``r``'s token: ``True`` for the first thread to ask — the pool thread, which then runs the range, or
    the caller, which takes it back before any pool thread started it (none ever will) —, ``False`` for the other."""
    try:
        r.token.pop()
    except IndexError:
        return False
    return True


def _wait_all(ranges: list[_Range]) -> None:
    """Wait until every range has ended, whatever interrupts the wait; then re-raise an interruption that came
    while waiting.

    Only the flag and one plain lock per range are involved, released by the pool thread: an interruption (a
    signal handler raising ``KeyboardInterrupt`` in the caller) can land anywhere in the wait and leave nothing
    held that a pool thread needs. (``concurrent.futures.wait`` takes each future's condition in turn, and an
    interruption between those steps had left one taken: the pool thread then blocked in ``set_result`` and the
    caller waited for it forever.)
    """
    interrupted: BaseException | None = None
    pending = list(ranges)
    while pending:
        try:
            while pending:
                if pending[-1].ended:
                    pending.pop()
                else:
                    pending[-1].done.acquire(timeout=0.05)
        except BaseException as err:  # a second Ctrl-C while waiting: keep waiting, re-raise after
            interrupted = interrupted or err
    if interrupted is not None:
        raise interrupted


_getcpu: Any = None  # glibc's sched_getcpu through ctypes, looked up on first use (False: not available)


def current_cpu() -> int | None:
    """The CPU the calling thread runs on now (``sched_getcpu``), or ``None`` where that cannot be read."""
    global _getcpu
    if _getcpu is None:
        try:  # (no ctypes, Windows — where CDLL(None) raises TypeError —, a libc without it: not available)
            import ctypes

            getcpu = ctypes.CDLL(None, use_errno=True).sched_getcpu
            getcpu.restype, getcpu.argtypes = ctypes.c_int, []
            _getcpu = getcpu
        except Exception:  # whatever the platform raises, the answer is "cannot be read"
            _getcpu = False
    if _getcpu is False:
        return None
    cpu = int(_getcpu())
    return cpu if cpu >= 0 else None


def _set_affinity(mask: set[int]) -> None:
    """Give the calling thread the affinity ``mask`` back (if the CPUs it may use shrank meanwhile, the main
    thread's)."""
    try:
        os.sched_setaffinity(0, mask)
    except OSError:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, os.sched_getaffinity(os.getpid()))


def _step_aside(caller_cpu: int | None, threads: int) -> set[int] | None:
    """On a pool thread woken on the CPU of the thread that is about to run the first range itself, move to
    another CPU it may use, for the duration of its range; returns the affinity to restore (``None``: nothing
    changed). :func:`split_run` asks for it only while the BLAS is held to one thread
    (:func:`single_threaded_blas`: whole chunks run one per thread, no BLAS thread spins on another CPU) or for
    compiled kernels (``compiled=True``), and
    only where the thread may use a CPU per thread of the split (with more threads than CPUs some must share).

    Linux tends to wake a thread on its waker's CPU; after an idle spell the two
    compute threads then shared one core for several calls, until the balancer
    separated them (256→256 at 14², Winograd forward, 2 threads, after a 0.2 s
    pause: 11–13 ms per call for three or four calls, 6.5–7 ms with the threads
    on different CPUs, as traced with ``sched_getcpu``). The thread's affinity
    is narrowed by that one CPU for the range and then set back to what it was.
    """
    if caller_cpu is None or current_cpu() != caller_cpu:
        return None
    try:
        mask = os.sched_getaffinity(0)
        if len(mask) < max(2, threads) or caller_cpu not in mask:
            return None
        os.sched_setaffinity(0, mask - {caller_cpu})
    except OSError:
        return None
    return mask


def split_run(total: int, elements: int, work: Callable[[int, int], None], *, compiled: bool = False) -> None:
    """Run ``work(i0, i1)`` over ``[0, total)``, split into one contiguous range per core.

    The im2col copy, the fold and the depthwise multiply-adds are single
    threaded in NumPy while BLAS uses every core; splitting them by channel
    (disjoint output ranges, so no locking) uses the idle cores. Small jobs
    (under :data:`PARALLEL_MIN_ELEMENTS` ``elements``) and single-core
    machines run on the calling thread, which also runs the first range of
    the others itself.

    Every range runs under the caller's NumPy error settings (``np.errstate``,
    which is per thread). Returns, or raises the first error, only when every range has finished:
    no piece of work outlives the call whose buffers it writes. A ``split_run``
    called from inside a range (a route that splits whole chunks over the
    threads, each chunk's copies calling it again) runs on its own thread:
    the others are busy with their ranges, and waiting for a pool thread that
    is itself waiting could never finish.

    ``compiled``: the ranges are compiled kernels that call no BLAS, so a
    pool thread woken on the caller's CPU steps aside (:func:`_step_aside`)
    as it does beside a one-thread BLAS. Measured, the compiled depthwise
    forward pass of 512 channels at 14² (N = 8, 2 threads) after a 0.2 s
    pause: the two threads had shared one CPU for most of the next ten calls,
    about 500 µs per call against 380–430 µs with the step aside, 290–330 µs
    back to back.
    """
    threads = min(copy_threads(), total)
    if threads <= 1 or elements < PARALLEL_MIN_ELEMENTS or getattr(_splitting, "active", False):
        work(0, total)  # (inside a range of an outer split_run: its threads are busy, so no nested split)
        return
    pool = _get_pool()
    bounds = [total * i // threads for i in range(threads + 1)]
    ranges = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]
    running: list[_Range] = []
    errors: dict[str, Any] = dict(np.geterr())  # NumPy's error settings are per thread: ranges run under the caller's
    if np.geterrcall() is not None:
        errors["call"] = np.geterrcall()

    # (only where the BLAS is held to one thread, or for compiled kernels: beside the multi-threaded BLAS, whose
    # worker threads spin on the other CPUs after each call, a thread moved there shared its core with one: the
    # ResNet-50 stem's forward pass, im2col split between GEMMs, took 46 ms instead of 26)
    aside = pool is not None and (_blas_users > 0 or compiled) and hasattr(os, "sched_setaffinity")
    caller_cpu = current_cpu() if aside else None

    def marked(a: int, b: int, pooled: bool = False) -> None:
        _splitting.active = True
        mask: set[int] | None = None
        try:
            if pooled:
                mask = _step_aside(caller_cpu, threads)
            with np.errstate(**errors):
                work(a, b)
        finally:
            _splitting.active = False
            if mask is not None:
                _set_affinity(mask)

    def pooled(a: int, b: int, r: _Range) -> None:
        if not _claim(r):  # the caller took it back: it does not run
            return
        try:
            marked(a, b, True)
        except BaseException as err:
            r.error = err
        finally:
            r.ended = True
            r.done.release()

    try:
        for a, b in ranges[1:]:
            if pool is None:
                marked(a, b)
                continue
            r = _Range()
            running.append(r)  # (before it is queued: an interruption inside submit() still finds it here)
            try:
                pool.submit(pooled, a, b, r)
            except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown", or no thread to start
                pool = None
                if _claim(r):  # not queued, or queued but not started: run it here, the pool thread skips it
                    running.pop()
                    marked(a, b)
        marked(*ranges[0])
        _wait_all(running)
    except BaseException:
        _wait_all([r for r in running if not _claim(r)])  # those no pool thread has started never start
        raise
    for r in running:
        if r.error is not None:
            raise r.error


# ----------------------------------------------------------------------------- caches

_CACHES: list[Any] = []


def cache(maxsize: int) -> Callable[[F], F]:
    """``functools.lru_cache(maxsize)``, registered so that :func:`clear_caches` empties it."""

    def decorate(function: F) -> F:
        cached = functools.lru_cache(maxsize=maxsize)(function)
        _CACHES.append(cached)
        return cached  # type: ignore[return-value]

    return decorate


class Memo(Generic[K, V]):
    """A bounded, thread-safe dictionary (emptied when full), registered with :func:`clear_caches`."""

    def __init__(self, maxsize: int) -> None:
        self._data: dict[K, V] = {}
        self._lock = threading.Lock()
        self._maxsize = maxsize
        _CACHES.append(self)

    def get(self, key: K) -> V | None:
        return self._data.get(key)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            if len(self._data) >= self._maxsize:
                self._data.clear()
            self._data[key] = value

    def cache_clear(self) -> None:
        with self._lock:
            self._data.clear()


def clear_caches() -> None:
    """Empty every cache of the engine (geometries, routes, plans, tap slices, fold matrices)."""
    for c in _CACHES:
        c.cache_clear()
