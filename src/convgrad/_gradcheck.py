"""Trust, measured: finite-difference gradient checks and the dot-product test.

``gradcheck`` compares the analytic gradients of any NumPy function with
central finite differences of the scalar ``L = Re Σ conj(g) · f(inputs)``;
``dot_test`` checks that two linear maps are adjoint,
``⟨forward(x), y⟩ = ⟨x, adjoint(y)⟩``, which needs no reference at all.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from ._arguments import check_array, check_int, normalize_shape

Array = npt.NDArray[Any]

MAX_SEED = 2**32 - 1
"""Largest ``seed`` accepted by :func:`gradcheck`, :func:`dot_test` and :func:`explain`."""

_MODES = ("full", "fast")


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` and :func:`dot_test` with ``raise_exception=True`` on failure."""


@dataclass(frozen=True)
class InputCheck:
    """The comparison for one input of :func:`gradcheck`.

    Attributes
    ----------
    position : int
        Which input (0-based) this is.
    shape : tuple of int
        Its shape.
    passed : bool
        Whether every compared value satisfies
        ``|analytic − numeric| <= atol + rtol·|numeric|``.
    max_abs_error : float
        ``max |analytic − numeric|``.
    max_rel_error : float
        ``max |analytic − numeric| / |numeric|`` over the entries with a
        non-zero numeric value (0 when there is none).
    worst_index : tuple of int or None
        The entry that violates the tolerance the most (the largest
        ``|analytic − numeric| / (atol + rtol·|numeric|)``); ``None`` in
        ``"fast"`` mode, which compares one directional derivative.
    numeric, analytic : complex or float
        The two values there (in ``"fast"`` mode: ``uᵀ·numeric`` and
        ``uᵀ·analytic`` for the random direction ``u``).
    """

    position: int
    shape: tuple[int, ...]
    passed: bool
    max_abs_error: float
    max_rel_error: float
    worst_index: Optional[tuple[int, ...]]
    numeric: complex | float
    analytic: complex | float


@dataclass(frozen=True, repr=False)
class GradcheckResult:
    """What :func:`gradcheck` found; ``str()`` gives a readable report.

    In Jupyter it shows as a table with the verdicts coloured
    (:meth:`to_html`); ``repr()`` is one line per input.

    Attributes
    ----------
    passed : bool
        Whether every input passed.
    inputs : tuple of InputCheck
        One comparison per input.
    mode : {"full", "fast"}
    eps, atol, rtol : float
        The settings used.
    notes : tuple of str
        Warnings raised during the check (reduced precision inputs).
    numeric, analytic : tuple of arrays
        Per input, what was compared: the finite differences and the
        analytic gradient (``"full"`` mode, shaped like the input), or the two
        directional derivatives (``"fast"`` mode, 0-d arrays). Drawn by :meth:`plot`.
    """

    passed: bool
    inputs: tuple[InputCheck, ...]
    mode: str
    eps: float
    atol: float
    rtol: float
    notes: tuple[str, ...] = ()
    numeric: tuple[Array, ...] = field(default=(), compare=False)
    analytic: tuple[Array, ...] = field(default=(), compare=False)

    @property
    def verdict(self) -> str:
        """``"PASSED"`` or ``"FAILED"``."""
        return "PASSED" if self.passed else "FAILED"

    def _settings(self) -> str:
        what = "every entry" if self.mode == "full" else "one random directional derivative per input"
        return (f"{self.mode} mode: {what} against float64 central differences, eps={self.eps:g}, "
                f"atol={self.atol:g}, rtol={self.rtol:g}")

    def __str__(self) -> str:
        lines = [f"gradcheck {self.verdict} ({self._settings()})"]
        for item in self.inputs:
            status = "ok  " if item.passed else "FAIL"
            lines.append(
                f"  {status} input {item.position} {item.shape}: max abs error {item.max_abs_error:.3g}, "
                f"max rel error {item.max_rel_error:.3g}; {_where(item)}: numeric {_fmt(item.numeric)}, "
                f"analytic {_fmt(item.analytic)}"
            )
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        parts = [f"input {i.position} {'ok' if i.passed else 'FAIL'} ({i.max_abs_error:.2g})" for i in self.inputs]
        return f"<GradcheckResult {self.verdict}, {self.mode} mode: {', '.join(parts)}>"

    def _rows(self) -> list[list[str]]:
        return [[str(i.position), str(i.shape), f"{i.max_abs_error:.3g}", f"{i.max_rel_error:.3g}", _where(i),
                 _fmt(i.numeric), _fmt(i.analytic), "ok" if i.passed else "FAIL"] for i in self.inputs]

    _HEADER = ("input", "shape", "max abs error", "max rel error", "worst", "numeric", "analytic", "result")

    def to_markdown(self) -> str:
        """The report as Markdown: the verdict, the settings, a table with one row per input, the notes."""
        from ._render import md_cell

        out = [f"**gradcheck {self.verdict}** ({md_cell(self._settings())})", "",
               "| " + " | ".join(self._HEADER) + " |", "|" + " --- |" * len(self._HEADER)]
        out += ["| " + " | ".join(md_cell(c) if j != 7 else f"**{c}**" for j, c in enumerate(row)) + " |"
                for row in self._rows()]
        if self.notes:
            out += [""] + [f"- {md_cell(n)}" for n in self.notes]
        return "\n".join(out) + "\n"

    def to_html(self, standalone: bool = False) -> str:
        """The report as HTML, verdicts coloured: a fragment (Jupyter) or, with ``standalone=True``, a page."""
        from . import _render as r

        kind = "ok" if self.passed else "fail"
        rows = self._rows()
        table = r.table_html(self._HEADER, rows, code_columns=(1, 4))
        for row in rows:  # colour the result column
            cell = r.esc(row[7])
            table = table.replace(f">{cell}</td></tr>", f">{r.badge(row[7], 'ok' if row[7] == 'ok' else 'fail')}"
                                  "</td></tr>", 1)
        body = (f"<p style='margin: 0.3em 0;'>{r.badge('gradcheck ' + self.verdict, kind)} "
                f"<span style='color: #57606a;'>{r.esc(self._settings())}</span></p>{table}")
        if self.notes:
            body += "<ul>" + "".join(f"<li>{r.esc(n)}</li>" for n in self.notes) + "</ul>"
        frag = r.fragment(body, "convgrad-gradcheck")
        return r.standalone_page(f"gradcheck {self.verdict}", frag) if standalone else frag

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        return self.to_html()

    def plot(self, path: Optional[str] = None, /, *, dpi: int = 110) -> Any:
        """Analytic against numeric gradient, one panel per input; saved to ``path`` when given.

        In ``"full"`` mode each entry is a point (red where it breaks the
        tolerance) and the diagonal is where they agree; in ``"fast"`` mode the
        two directional derivatives are two bars. Needs matplotlib.

        Parameters
        ----------
        path : str, optional
            Where to save the picture (``.png``, ``.svg``, ``.pdf``, ...).
        dpi : int
            Resolution of the saved file, 1 to 1000.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ._plot import MAX_DPI, check_plot_path, new_figure

        fmt = check_plot_path(path, "GradcheckResult.plot") if path is not None else "png"
        dpi = check_int(dpi, "dpi", 1, MAX_DPI)
        count = max(1, len(self.inputs))
        fig = new_figure("GradcheckResult.plot", (min(4.2 * count, 14), 4.2))
        axes = fig.subplots(1, count, squeeze=False)[0]
        for ax, item, num, ana in zip(axes, self.inputs, self.numeric or (None,) * count,
                                      self.analytic or (None,) * count):
            _plot_input(ax, item, num, ana, self.atol, self.rtol)
        fig.suptitle(f"gradcheck {self.verdict}: {self._settings()}", fontsize=9,
                     color="#1a7f37" if self.passed else "#cf222e")
        fig.tight_layout(rect=(0, 0, 1, 0.93))
        if path is not None:
            fig.savefig(path, dpi=dpi, format=fmt)
        return fig


def _where(item: InputCheck) -> str:
    return "direction u" if item.worst_index is None else f"worst at {item.worst_index}"


def _plot_input(ax: Any, item: InputCheck, numeric: Optional[Array], analytic: Optional[Array], atol: float,
                rtol: float) -> None:
    verdict = "ok" if item.passed else "FAIL"
    ax.set_title(f"input {item.position} {item.shape}: {verdict}\nmax abs error {item.max_abs_error:.2g}",
                 fontsize=9, color="#1a7f37" if item.passed else "#cf222e")
    ax.tick_params(labelsize=7)
    if numeric is None or analytic is None:
        ax.text(0.5, 0.5, "no values kept", ha="center", va="center", transform=ax.transAxes)
        return
    num, ana = np.real(np.ravel(numeric)), np.real(np.ravel(analytic))
    if item.worst_index is None:  # fast mode: two numbers
        ax.bar([0, 1], [float(num[0]), float(ana[0])], color=["#4e79a7", "#f28e2b"])
        ax.set_xticks([0, 1], ["numeric uᵀ·∂L/∂x", "analytic uᵀ·∂L/∂x"], fontsize=7)
        return
    bad = np.abs(ana - num) > atol + rtol * np.abs(num)
    ax.scatter(num[~bad], ana[~bad], s=9, color="#4e79a7", label="within tolerance")
    if bad.any():
        ax.scatter(num[bad], ana[bad], s=12, color="#cf222e", label="outside tolerance")
    both = np.concatenate([num, ana]) if num.size else np.zeros(1)
    lo, hi = float(both.min()), float(both.max())
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#9a9a9a", linewidth=0.8, zorder=0)
    ax.set_xlabel("numeric (central differences)", fontsize=8)
    ax.set_ylabel("analytic (backward)", fontsize=8)
    ax.legend(fontsize=7, loc="upper left")


@dataclass(frozen=True)
class DotTestResult:
    """What :func:`dot_test` found: ``⟨forward(x), y⟩`` against ``⟨x, adjoint(y)⟩``.

    Attributes
    ----------
    passed : bool
        Whether ``|lhs − rhs| <= rtol · max(|lhs|, |rhs|)``.
    lhs, rhs : complex or float
        ``⟨forward(x), y⟩`` and ``⟨x, adjoint(y)⟩`` (``⟨a, b⟩ = Σ a · conj(b)``).
    relative_error : float
    rtol : float
    """

    passed: bool
    lhs: complex | float
    rhs: complex | float
    relative_error: float
    rtol: float

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        return (
            f"dot test {verdict}: <forward(x), y> = {_fmt(self.lhs)}, <x, adjoint(y)> = {_fmt(self.rhs)}, "
            f"relative error {self.relative_error:.3g} (rtol {self.rtol:g})"
        )


def _fmt(value: complex | float) -> str:
    if isinstance(value, complex):
        return f"{value.real:.10g}{value.imag:+.10g}j"
    return f"{value:.10g}"


def _scalar(value: Any) -> complex | float:
    z = complex(value)
    return z if z.imag != 0 else z.real


# ----------------------------------------------------------------------------- progress


class Progress:
    """A tqdm progress bar on stderr when ``enabled`` (``None``: when stderr is a terminal), else nothing.

    Without tqdm installed there is no bar. Used as a context manager::

        with Progress(3, "checking") as bar:
            bar.update("forward")
    """

    def __init__(self, total: int, desc: str, enabled: Optional[bool] = None) -> None:
        if enabled is None:
            enabled = bool(getattr(sys.stderr, "isatty", lambda: False)())
        self._bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)

    def update(self, step: str = "", n: int = 1) -> None:
        """Advance by ``n``; ``step`` names what is being done now."""
        if self._bar is not None:
            if step:
                self._bar.set_postfix_str(step, refresh=False)
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- argument checks


def _check_positive(value: object, name: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        rule = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {rule}; got {value!r}")
    return v


def check_seed(seed: object) -> int:
    """``seed`` as an int in ``[0, MAX_SEED]``, or a TypeError / ValueError naming ``seed``."""
    return check_int(seed, "seed", 0, MAX_SEED)


def _check_callable(value: object, name: str) -> None:
    if not callable(value):
        raise TypeError(f"{name} must be callable; got {value!r} of type {type(value).__name__}")


def _precision_note(low: list[tuple[int, np.dtype[Any]]], y_max: float) -> str:
    which = ", ".join(f"{i} ({dtype})" for i, dtype in low)
    dtype = low[0][1]
    spacing = float(np.spacing(np.asarray(y_max, dtype=dtype))) if y_max > 0 else float(np.finfo(dtype).tiny)
    return (
        f"inputs {which} are checked in float64 instead: central differences (f(x + eps) − f(x − eps)) / (2·eps) "
        f"cancel in low precision. The two values share all but their last bits; at |f| ≈ {y_max:.3g} "
        f"neighbouring {dtype} values are {spacing:.2g} apart, so the difference, about 2·eps·∂f/∂x, is rounded "
        f"to a multiple of that. The 5×5 image x = 10·arange(25) under the 3×3 kernel w = arange(9) in float32 "
        f"(eps=1e-3, outputs near 3000, spacing 2.4e-4) has given 7.8125 instead of 8 this way."
    )


def _as_float64(a: Array) -> Array:
    return a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)


# ----------------------------------------------------------------------------- gradcheck


def gradcheck(
    f: Callable[..., Any],
    inputs: Sequence[npt.ArrayLike],
    backward: Callable[..., Sequence[Any]],
    /,
    *,
    grad_output: Optional[npt.ArrayLike] = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    mode: str = "full",
    raise_exception: bool = False,
    seed: int = 0,
    progress: Optional[bool] = False,
) -> GradcheckResult:
    """Check analytic gradients against central finite differences, in float64.

    With ``L(inputs) = Re Σ conj(g) · f(*inputs)`` for the upstream gradient
    ``g``, ``backward(g, *inputs)`` must return ``∂L/∂inputs[i]`` for every
    input (for complex inputs ``∂L/∂Re + i·∂L/∂Im``, PyTorch's convention;
    for a real input only the real part of a complex gradient is compared).
    Each is compared with ``(L(x + eps·e) − L(x − eps·e)) / (2·eps)``.

    Parameters
    ----------
    f : callable
        ``f(*inputs) -> y``, a NumPy function of the inputs.
    inputs : sequence of array_like
        The point at which to check. Integer and bool inputs are converted to
        float64; float16 and float32 inputs are converted to float64 with a
        warning (finite differences cancel in low precision).
    backward : callable
        ``backward(grad_output, *inputs) -> one gradient per input``.
    grad_output : array_like, optional
        The upstream gradient ``g``, shaped like ``f(*inputs)``; by default a
        seeded standard normal array (``np.ones_like(y)`` checks ``L = Σ y``).
    eps : float
        Finite-difference step.
    atol, rtol : float
        An entry passes when ``|analytic − numeric| <= atol + rtol·|numeric|``.
    mode : {"full", "fast"}
        ``"full"`` perturbs every entry of every input (``2·size`` calls of
        ``f`` per input); ``"fast"`` compares the directional derivative along
        one seeded random unit direction ``u`` per input, ``uᵀ·numeric`` with
        ``uᵀ·analytic`` (two calls of ``f`` per input), for large inputs.
    raise_exception : bool
        Raise :class:`GradcheckError` with the report if the check fails.
    seed : int
        Seed of the random ``grad_output`` and the ``"fast"`` directions, from 0 to ``2**32 − 1``.
    progress : bool or None
        Show a progress bar over the evaluations of ``f`` on stderr (tqdm, if
        installed); ``None``: only when stderr is a terminal.

    Returns
    -------
    GradcheckResult
        ``.passed``, one :class:`InputCheck` per input (max abs and rel error,
        the worst index with the numeric and analytic values there);
        ``str(result)`` is a readable report.

    Raises
    ------
    TypeError, ValueError
        For bad arguments, before any finite difference; also when
        ``backward`` returns the wrong number or shapes of gradients.
    GradcheckError
        With ``raise_exception=True``, if the check fails.

    Warns
    -----
    UserWarning
        For float16 or float32 inputs, explaining why they are checked in float64.

    Examples
    --------
    >>> import numpy as np
    >>> import convgrad as cg
    >>> x = 10.0 * np.arange(25.0).reshape(1, 1, 5, 5)
    >>> w = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> result = cg.gradcheck(cg.conv, (x, w), lambda g, x, w: cg.conv_backward(g, x, w)[:2])
    >>> result.passed
    True

    A backward pass that forgets the kernel flip fails, and says where:

    >>> def wrong(g, x, w):
    ...     grads = cg.conv_backward(g, x, w[..., ::-1, ::-1])
    ...     return grads.input, cg.conv_backward(g, x, w).weight
    >>> bad = cg.gradcheck(cg.conv, (x, w), wrong)
    >>> bad.passed, bad.inputs[0].passed, bad.inputs[1].passed
    (False, False, True)
    """
    _check_callable(f, "f")
    _check_callable(backward, "backward")
    if isinstance(inputs, (str, bytes, np.ndarray)) or not isinstance(inputs, Sequence):
        raise TypeError(
            f"inputs must be a tuple or list of arrays (one per argument of f); got {type(inputs).__name__}"
        )
    if len(inputs) == 0:
        raise ValueError("inputs must hold at least one array; got an empty sequence")
    eps_f = _check_positive(eps, "eps", allow_zero=False)
    atol_f = _check_positive(atol, "atol", allow_zero=True)
    rtol_f = _check_positive(rtol, "rtol", allow_zero=True)
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}; got {mode!r}")
    seed = check_seed(seed)
    arrays = [check_array(a, f"inputs[{i}]") for i, a in enumerate(inputs)]
    low = [(i, a.dtype) for i, a in enumerate(arrays) if a.dtype in (np.float16, np.float32, np.complex64)]
    xs = [_as_float64(a) for a in arrays]

    y = np.asarray(f(*xs))
    if grad_output is None:
        rng = np.random.default_rng(seed)
        g = rng.standard_normal(y.shape)
        if y.dtype.kind == "c":
            g = g + 1j * rng.standard_normal(y.shape)
    else:
        g = _as_float64(check_array(grad_output, "grad_output"))
        if g.shape != y.shape:
            raise ValueError(f"grad_output.shape {g.shape} must equal the shape of f(*inputs), {y.shape}")

    notes = []
    if low:
        note = _precision_note(low, float(np.max(np.abs(y))) if y.size else 0.0)
        notes.append(note)
        warnings.warn(note, UserWarning, stacklevel=2)

    grads = backward(g, *xs)
    if isinstance(grads, np.ndarray) or not isinstance(grads, Sequence):
        raise TypeError(f"backward must return a tuple or list of gradients; got {type(grads).__name__}")
    if len(grads) != len(xs):
        raise ValueError(f"backward returned {len(grads)} gradients for {len(xs)} inputs; it must return one per input")
    analytic = [np.asarray(gi) for gi in grads]
    for i, (gi, xi) in enumerate(zip(analytic, xs)):
        if gi.shape != xi.shape:
            raise ValueError(f"backward's gradient {i} has shape {gi.shape}, but inputs[{i}] has shape {xi.shape}")
        if xi.dtype.kind != "c" and gi.dtype.kind == "c":
            # only the real part of a promoted gradient moves L along a real input
            analytic[i] = gi.real

    def loss(args: list[Array]) -> float:
        return float(np.real(np.vdot(g, np.asarray(f(*args)))))

    rng_dir = np.random.default_rng(seed + 1)
    steps = sum(x.size * (2 if x.dtype.kind == "c" else 1) for x in xs) if mode == "full" else len(xs)
    bar = Progress(steps, "gradcheck", enabled=progress)
    checks = []
    kept_numeric: list[Array] = []
    kept_analytic: list[Array] = []
    for i, (xi, gi) in enumerate(zip(xs, analytic)):
        if mode == "full":
            numeric = _numeric_gradient(loss, xs, i, eps_f, bar)
            checks.append(_compare(i, xi.shape, numeric, gi, atol_f, rtol_f))
            kept_numeric.append(numeric)
            kept_analytic.append(gi)
        else:
            u = rng_dir.standard_normal(xi.shape)
            if xi.dtype.kind == "c":
                u = u + 1j * rng_dir.standard_normal(xi.shape)
            u = u / max(float(np.linalg.norm(u)), np.finfo(np.float64).tiny)
            plus, minus = list(xs), list(xs)
            plus[i], minus[i] = xi + eps_f * u, xi - eps_f * u
            num = (loss(plus) - loss(minus)) / (2 * eps_f)
            ana = float(np.real(np.vdot(gi, u)))
            checks.append(_compare(i, xi.shape, np.array(num), np.array(ana), atol_f, rtol_f, fast=True))
            kept_numeric.append(np.array(num))
            kept_analytic.append(np.array(ana))
            bar.update(f"input {i}")
    bar.close()
    result = GradcheckResult(
        passed=all(c.passed for c in checks),
        inputs=tuple(checks),
        mode=mode,
        eps=eps_f,
        atol=atol_f,
        rtol=rtol_f,
        notes=tuple(notes),
        numeric=tuple(kept_numeric),
        analytic=tuple(kept_analytic),
    )
    if raise_exception and not result.passed:
        raise GradcheckError(str(result))
    return result


def _numeric_gradient(loss: Callable[[list[Array]], float], xs: list[Array], i: int, eps: float,
                      bar: Optional[Progress] = None) -> Array:
    """Central differences of ``loss`` with respect to every entry of ``xs[i]``."""
    base = xs[i]
    numeric = np.zeros(base.shape, dtype=base.dtype)
    steps: tuple[complex, ...] = (1.0, 1j) if base.dtype.kind == "c" else (1.0,)
    for idx in np.ndindex(base.shape):
        for step in steps:
            plus, minus = base.copy(), base.copy()
            plus[idx] += eps * step
            minus[idx] -= eps * step
            args_p, args_m = list(xs), list(xs)
            args_p[i], args_m[i] = plus, minus
            # ∂L/∂Re along step 1, ∂L/∂Im along step i: numeric = ∂L/∂Re + i·∂L/∂Im
            numeric[idx] += step * (loss(args_p) - loss(args_m)) / (2 * eps)
            if bar is not None:
                bar.update(f"input {i}")
    return numeric


def _compare(
    position: int,
    shape: tuple[int, ...],
    numeric: Array,
    analytic: Array,
    atol: float,
    rtol: float,
    *,
    fast: bool = False,
) -> InputCheck:
    diff = np.abs(analytic - numeric)
    mag = np.abs(numeric)
    if diff.size == 0:
        return InputCheck(position, shape, True, 0.0, 0.0, None, 0.0, 0.0)
    violation = diff / (atol + rtol * mag) if atol + rtol > 0 else diff
    worst = np.unravel_index(int(np.argmax(np.where(np.isnan(violation), np.inf, violation))), diff.shape)
    nonzero = mag > 0
    rel = float(np.max(diff[nonzero] / mag[nonzero])) if nonzero.any() else 0.0
    passed = bool(np.all(diff <= atol + rtol * mag))
    return InputCheck(
        position=position,
        shape=shape,
        passed=passed,
        max_abs_error=float(np.max(diff)),
        max_rel_error=rel,
        worst_index=None if fast else tuple(int(v) for v in worst),
        numeric=_scalar(numeric[worst]),
        analytic=_scalar(analytic[worst]),
    )


# ----------------------------------------------------------------------------- the dot-product test


def dot_test(
    forward: Callable[[Array], Any],
    adjoint: Callable[[Array], Any],
    x_shape: Sequence[int],
    y_shape: Sequence[int],
    /,
    *,
    rtol: float = 1e-10,
    seed: int = 0,
    complex: bool = False,
    raise_exception: bool = False,
) -> DotTestResult:
    """The dot-product (adjoint) test: ``⟨forward(x), y⟩ = ⟨x, adjoint(y)⟩``.

    For random ``x`` of ``x_shape`` and ``y`` of ``y_shape``, with
    ``⟨a, b⟩ = Σ a · conj(b)``. It needs no reference implementation: a
    linear map and its claimed adjoint either agree or they do not.

    Parameters
    ----------
    forward : callable
        A linear map from arrays of ``x_shape`` to arrays of ``y_shape``.
    adjoint : callable
        Its claimed adjoint (the conjugate transpose for complex data), from
        ``y_shape`` to ``x_shape``.
    x_shape, y_shape : tuple of int
    rtol : float
        Pass when ``|lhs − rhs| <= rtol · max(|lhs|, |rhs|)``; the default
        suits float64 maps.
    seed : int
        Seed of the random ``x`` and ``y``, from 0 to ``2**32 − 1``.
    complex : bool
        Use complex random ``x`` and ``y`` (tests the conjugation too).
    raise_exception : bool
        Raise :class:`GradcheckError` if the test fails.

    Returns
    -------
    DotTestResult

    Raises
    ------
    TypeError, ValueError
        For bad arguments, or when ``forward`` / ``adjoint`` return the wrong shape.

    Examples
    --------
    The input gradient is the adjoint of the convolution:

    >>> import numpy as np
    >>> import convgrad as cg
    >>> w = np.random.default_rng(0).standard_normal((4, 3, 3, 3))
    >>> result = cg.dot_test(
    ...     lambda x: cg.conv(x, w, stride=2, padding=1),
    ...     lambda g: cg.conv_input_grad(g, w, input_shape=(2, 3, 8, 8), stride=2, padding=1),
    ...     (2, 3, 8, 8), (2, 4, 4, 4))
    >>> result.passed
    True
    """
    _check_callable(forward, "forward")
    _check_callable(adjoint, "adjoint")
    xs = normalize_shape(x_shape, "x_shape")
    ys = normalize_shape(y_shape, "y_shape")
    rtol_f = _check_positive(rtol, "rtol", allow_zero=True)
    if not isinstance(complex, bool):
        raise TypeError(f"complex must be True or False; got {complex!r}")
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)

    def draw(shape: tuple[int, ...]) -> Array:
        a = rng.standard_normal(shape)
        return a + 1j * rng.standard_normal(shape) if complex else a

    x, y = draw(xs), draw(ys)
    fx = np.asarray(forward(x))
    if fx.shape != ys:
        raise ValueError(f"forward(x) has shape {fx.shape}, but y_shape is {ys}")
    ay = np.asarray(adjoint(y))
    if ay.shape != xs:
        raise ValueError(f"adjoint(y) has shape {ay.shape}, but x_shape is {xs}")
    lhs = np.vdot(y, fx)  # Σ forward(x) · conj(y)
    rhs = np.vdot(ay, x)  # Σ x · conj(adjoint(y))
    scale = max(abs(lhs), abs(rhs), np.finfo(np.float64).tiny)
    rel = float(abs(lhs - rhs) / scale)
    result = DotTestResult(passed=rel <= rtol_f, lhs=_scalar(lhs), rhs=_scalar(rhs), relative_error=rel, rtol=rtol_f)
    if raise_exception and not result.passed:
        raise GradcheckError(str(result))
    return result
