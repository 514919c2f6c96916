"""JAX, run in a worker process, so that a jaxlib abort cannot take the test run down.

jaxlib 0.10.2 aborts the whole process (an XLA ``Check failed``, SIGABRT) on some
valid convolutions, e.g. the vjp for lhs ``(3, 1, 3, 6)``, rhs ``(1, 1, 3, 2)``,
strides ``(2, 2)``, padding ``((1, 1), (1, 1))``. Every JAX computation of the
tests is therefore sent to a worker process (a fresh interpreter that imports
only this module and JAX) over a pair of pipes; a request whose worker
dies (or hangs) comes back as :data:`ABORTED`, is recorded in :data:`SKIPPED`,
and the worker is restarted for the next one. The skipped configurations are
listed in the terminal summary of the test session.

A request is a list of cases, answered one by one as they finish, so that a
batch loses only the case that killed the worker. A case is a dict::

    {"op": "conv_general_dilated" | "conv_transpose",
     "lhs": array, "rhs": array, "g": array or None,
     "kwargs": {...}}                 # the lax keyword arguments

or ``{"fn": name, "args": (...)}`` for a helper such as
``conv_dimension_numbers`` (answered as nested tuples of ints),
and its answer ``("ok", y, grads)`` (``grads`` is ``jax.vjp(f, lhs, rhs)[1](g)``,
or None without ``g``), ``("error", exception type name, message)`` when JAX
raised, or ``ABORTED``. A ``ConvDimensionNumbers`` in the kwargs is sent as
``("dn", lhs_spec, rhs_spec, out_spec)`` and rebuilt as JAX's in the worker.
The worker enables float64 (``jax_enable_x64``) and, unless ``XLA_FLAGS`` is
set, compiles at XLA optimisation level 0 (it halves the compile time of the
many one-off convolutions; the results are those of the same operation).
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any, Optional

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
ABORTED = ("aborted",)
SKIPPED: list[str] = []
"""One line per configuration whose JAX computation killed (or hung) the worker."""

Case = dict[str, Any]
Answer = tuple[Any, ...]


# ----------------------------------------------------------------------------- the worker process


def _compute(case: Case) -> Answer:
    import jax
    from jax import lax

    if "fn" in case:  # a helper of lax: plain values in and out
        value = getattr(lax, case["fn"])(*case["args"])
        return ("ok", _plain(value), None)
    kwargs = dict(case["kwargs"])
    dn = kwargs.get("dimension_numbers")
    if isinstance(dn, tuple) and dn and dn[0] == "dn":
        kwargs["dimension_numbers"] = lax.ConvDimensionNumbers(*dn[1:])
    fn = getattr(lax, case["op"])

    def f(a: Any, b: Any) -> Any:
        return fn(a, b, **kwargs)

    if case.get("g") is None:
        return ("ok", np.asarray(f(case["lhs"], case["rhs"])), None)
    y, pullback = jax.vjp(f, case["lhs"], case["rhs"])
    grads = pullback(case["g"])
    return ("ok", np.asarray(y), tuple(np.asarray(v) for v in grads))


def _plain(value: Any) -> Any:
    """Tuples and lists of ints (NumPy or not) as nested tuples of Python ints."""
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    return int(value)


def _serve(requests_fd: int, answers_fd: int) -> None:  # pragma: no cover - runs in the worker
    """The worker's loop: a list of cases in, one answer per case out, until ``None`` or the pipe closes."""
    os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    jax.config.update("jax_enable_x64", True)
    requests = Connection(requests_fd, writable=False)
    answers = Connection(answers_fd, readable=False)
    while True:
        try:
            request = requests.recv()
        except EOFError:
            return
        if request is None:
            return
        for case in request:
            try:
                answer = _compute(case)
            except Exception as err:  # JAX's own argument errors are answers too
                answer = ("error", type(err).__name__, str(err))
            answers.send(answer)


# ----------------------------------------------------------------------------- the client


def describe(case: Case) -> str:
    """One line naming a case: the operation, the shapes, dtypes and arguments."""
    if "fn" in case:
        return f"{case['fn']}{case['args']!r}"
    kw = ", ".join(f"{k}={v!r}" for k, v in case["kwargs"].items())
    what = "vjp" if case.get("g") is not None else "forward"
    return (f"{case['op']} {what}: lhs {tuple(case['lhs'].shape)}, rhs {tuple(case['rhs'].shape)}, "
            f"{case['lhs'].dtype}, {kw}")


class JaxWorker:
    """A spawned process that answers JAX requests; restarted whenever it dies."""

    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._send: Optional[Connection] = None
        self._recv: Optional[Connection] = None
        self.restarts = 0

    def _start(self) -> tuple[Connection, Connection]:
        """The pipes to a live worker: (requests, answers); a new worker if there is none."""
        if self._proc is not None and self._proc.poll() is None and self._send is not None and self._recv is not None:
            return self._send, self._recv
        self._stop()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        code = (f"import sys; sys.path.insert(0, {_HERE!r}); import jax_worker; "
                "jax_worker._serve(int(sys.argv[1]), int(sys.argv[2]))")
        self._proc = subprocess.Popen([sys.executable, "-c", code, str(to_child_r), str(from_child_w)],
                                      pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._send = Connection(to_child_w, readable=False)
        self._recv = Connection(from_child_r, writable=False)
        return self._send, self._recv

    def _stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(10)
        for conn in (self._send, self._recv):
            if conn is not None:
                conn.close()
        self._proc = self._send = self._recv = None

    def close(self) -> None:
        """Stop the worker (politely if it is alive)."""
        if self._send is not None and self._proc is not None and self._proc.poll() is None:
            try:
                self._send.send(None)
                self._proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._stop()

    def run(self, cases: list[Case]) -> list[Answer]:
        """Answer every case; a case that kills the worker is answered :data:`ABORTED` and recorded."""
        answers: list[Answer] = []
        pending = list(cases)
        while pending:
            send, recv = self._start()
            try:
                send.send(pending)
            except OSError:  # the worker died before it read the request
                self._record(pending[0], "died before reading the request")
                answers.append(ABORTED)
                pending = pending[1:]
                continue
            done = 0
            for case in pending:
                try:
                    if not recv.poll(self.timeout):
                        raise TimeoutError
                    answers.append(recv.recv())
                    done += 1
                except (EOFError, OSError, TimeoutError) as err:
                    code = None
                    if not isinstance(err, TimeoutError) and self._proc is not None:
                        code = self._proc.wait(10)
                    self._record(case, "timed out" if isinstance(err, TimeoutError) else f"exit code {code}")
                    answers.append(ABORTED)
                    done += 1
                    break
            pending = pending[done:]
        return answers

    def _record(self, case: Case, why: str) -> None:
        line = f"skipped: jaxlib aborted ({why}): {describe(case)}"
        if line not in SKIPPED:
            SKIPPED.append(line)
        self.restarts += 1
        self._stop()


_WORKER: Optional[JaxWorker] = None


def shared_worker() -> JaxWorker:
    """The one worker of the test session (started on first use, stopped at exit)."""
    global _WORKER
    if _WORKER is None:
        _WORKER = JaxWorker()
        atexit.register(_WORKER.close)
    return _WORKER


class _Summary:
    """A pytest plugin object: lists the skipped JAX configurations at the end of the session."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not SKIPPED:
            return
        terminalreporter.section("JAX configurations skipped because jaxlib aborted")
        for line in SKIPPED:
            terminalreporter.write_line(line)


def register_summary(config: Any) -> None:
    """Add the summary of skipped configurations to this session's report (once)."""
    if not config.pluginmanager.has_plugin("convgrad-jax-aborts"):
        config.pluginmanager.register(_Summary(), "convgrad-jax-aborts")


def jax_available() -> bool:
    """Whether JAX can be imported (checked without importing it here)."""
    import importlib.util

    return importlib.util.find_spec("jax") is not None
