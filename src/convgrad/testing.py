"""Check *your* convolution: find, shrink and name the mistake.

:func:`check_implementation` runs an implementation of the forward pass and
of the three gradients on configurations drawn by Hypothesis from
:func:`configs`, compares every result with convgrad's core, and for the
first failure of each function shrinks the configuration to a minimal one,
finds what the failure depends on by re-running neighbouring configurations
(one sample instead of two, stride 1 instead of 2, ...) and names the mistake
when it is a known one (:data:`MISTAKES`), with its explanation and the
correct recipe.

The implementation works on NumPy arrays in the layout and keyword names of
a **convention** (:data:`CONVENTIONS`): ``"torch"`` (``NCHW``/``OIHW``;
``stride``, ``padding``, ``dilation``, ``groups``), ``"tensorflow"``
(``NHWC``/``HWIO``; ``strides``, ``padding``, ``dilations``), ``"scipy"``
(one N-d array pair, ``mode``), ``"jax"`` (``lax.conv_general_dilated``'s
keywords, default dimension numbers) or ``"onnx"`` (the ``Conv`` operator's
attributes). Hypothesis is this module's optional
dependency (``pip install 'convgrad[testing]'``); it is imported when a
strategy is built or a check runs.

Examples
--------
>>> import convgrad as cg
>>> from convgrad import testing
>>> def forward(x, w, b, **geometry):
...     return cg.conv(x, w, b, **geometry)
>>> report = testing.check_implementation(forward, max_examples=20)
>>> report.passed
True
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Union

import numpy as np
import numpy.typing as npt

from ._conv import conv, conv_backward
from ._mistakes import FUNCTIONS, MISTAKES, Mistake, NotApplicable
from ._render import TextReportRepr
from ._strategies import (
    DTYPES,
    FEATURES,
    HYPOTHESIS_MISSING,
    MODES,
    PADDING_FORMS,
    ConvConfig,
    configs,
    conv_configs,
    require_hypothesis,
    resolve_padding,
)
from ._transpose import conv_transpose, conv_transpose_backward

if TYPE_CHECKING:
    from hypothesis.strategies import DrawFn, SearchStrategy

Array = npt.NDArray[Any]
Implementation = Callable[..., Any]

__all__ = [
    "CONVENTIONS",
    "DTYPES",
    "FEATURES",
    "FUNCTIONS",
    "HYPOTHESIS_MISSING",
    "MISTAKES",
    "MODES",
    "PADDING_FORMS",
    "Comparison",
    "ConvConfig",
    "Convention",
    "Failure",
    "FeatureCoverage",
    "Mistake",
    "MistakeCase",
    "Report",
    "check_implementation",
    "compare",
    "configs",
    "conv_configs",
    "expected_results",
    "explain_mistake",
    "get_convention",
    "match_mistakes",
    "recipe_for",
    "register_convention",
]

ROLES = {"forward": "y", "input_grad": "x", "weight_grad": "w", "bias_grad": "b"}
"""The array each function returns: ``y`` (output), ``x`` (input), ``w`` (weight), ``b`` (bias)."""

_GRADIENT = {"input_grad": "input", "weight_grad": "weight", "bias_grad": "bias"}

_CHECKED_CONFIGS = 12
"""At most this many failing configurations are compared with each catalogued mistake."""

_MIN_CHECKED = 4
"""Fewer failing configurations than this: a short extra search looks for more before naming a mistake."""

_EXTRA_EXAMPLES = 40
"""Configurations that extra search tries."""


# ----------------------------------------------------------------------------- conventions


def _spatial_first(d: int) -> tuple[int, ...]:
    """``(O, C, *K)`` -> ``(*K, C, O)``."""
    return (*range(2, d + 2), 1, 0)


def _channels_first(d: int) -> tuple[int, ...]:
    """``(*K, C, O)`` -> ``(O, C, *K)``."""
    return (d + 1, d, *range(d))


def _shape_text(shape: Sequence[int]) -> str:
    return str(tuple(int(s) for s in shape))


class Convention:
    """How an implementation lays out its arrays and names its geometry keywords.

    The base class is PyTorch's convention (``"torch"``): arrays as
    ``torch.nn.functional.conv*d`` takes them, keywords ``stride``,
    ``padding``, ``dilation``, ``groups`` (and ``padding_mode`` when it is not
    ``"zeros"``; ``output_padding`` for a transposed convolution). A new
    convention subclasses it, overrides what differs and is added with
    :func:`register_convention`.

    Roles: ``"x"`` (input), ``"w"`` (weight), ``"b"`` (bias), ``"y"`` (output
    and upstream gradient).
    """

    name = "torch"
    layout = "x (N, C, *S), w (O, C/groups, *K), y (N, O, *Q)"
    has_bias = True

    def problem(self, config: ConvConfig) -> Optional[str]:
        """Why ``config`` cannot be written in this convention, or ``None`` when it can."""
        return None

    def keywords(self, config: ConvConfig) -> dict[str, Any]:
        """The geometry keywords the implementation receives for ``config``."""
        kw = config.kwargs()
        if kw.get("padding_mode") == "zeros":
            del kw["padding_mode"]
        return kw

    def to_layout(self, a: Array, role: str, config: ConvConfig) -> Array:
        """A PyTorch-layout array in this convention's layout."""
        return a

    def from_layout(self, a: Array, role: str, config: ConvConfig) -> Array:
        """An array in this convention's layout back in PyTorch's."""
        return a

    def forward_arguments(self, config: ConvConfig, x: Array, w: Array,
                          b: Optional[Array]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Positional and keyword arguments of ``forward`` (arrays already in this layout)."""
        return (x, w, b), self.keywords(config)

    def backward_arguments(self, config: ConvConfig, g: Array, x: Array,
                           w: Array) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Positional and keyword arguments of ``backward`` (arrays already in this layout)."""
        return (g, x, w), self.keywords(config)

    def default_configs(self, transposed: bool = False) -> SearchStrategy[ConvConfig]:
        """The configurations checked when ``configs=`` is not given."""
        return self.adapt(configs(transposed=transposed))

    def adapt(self, strategy: SearchStrategy[ConvConfig]) -> SearchStrategy[ConvConfig]:
        """A strategy of the generic space, drawn in this convention's idiom (here: as it is)."""
        return strategy

    def shape(self, shape: Sequence[int], role: str, config: ConvConfig) -> tuple[int, ...]:
        """The shape a PyTorch-layout shape has in this layout."""
        view = np.broadcast_to(np.empty((), dtype=np.int8), tuple(shape))
        return tuple(self.to_layout(view, role, config).shape)

    def call_text(self, config: ConvConfig, function: str) -> str:
        """The call the implementation received, with the array shapes: ``forward(x: (1, 1, 5), ...)``."""
        shapes = {"x": config.input_shape, "w": config.weight_shape, "b": config.bias_shape,
                  "y": config.output_shape}
        if function == "forward":
            x, w, b = (np.broadcast_to(np.empty((), dtype=np.int8), shapes[r]) for r in ("x", "w", "b"))
            args, kw = self.forward_arguments(config, self.to_layout(x, "x", config), self.to_layout(w, "w", config),
                                              b if config.bias else None)
            names = ("x", "w", "b")
        else:
            g, x, w = (np.broadcast_to(np.empty((), dtype=np.int8), shapes[r]) for r in ("y", "x", "w"))
            args, kw = self.backward_arguments(config, self.to_layout(g, "y", config),
                                               self.to_layout(x, "x", config), self.to_layout(w, "w", config))
            names = ("g", "x", "w")
        parts = [f"{name}: {'None' if a is None else _shape_text(a.shape)}" for name, a in zip(names, args)]
        parts += [f"{key}={value!r}" for key, value in kw.items()]
        name = "forward" if function == "forward" else "backward"
        return f"{name}({', '.join(parts)})"


class _TensorFlow(Convention):
    """``tf.nn.conv*d``'s convention: channels last, filters ``[*K, in, out]``.

    Keywords ``strides`` and ``dilations`` (lists of ``d + 2`` ints, ``1`` at
    the batch and channel positions) and ``padding``: ``"VALID"``, ``"SAME"``
    (TensorFlow's rule, also at stride > 1) or explicit ``[[0, 0], [l, h], ...,
    [0, 0]]``. Groups are implied by the filter shape (``in = C / groups``).
    """

    name = "tensorflow"
    layout = "x (N, *S, C), w (*K, C/groups, O), y (N, *Q, O)"

    def problem(self, config: ConvConfig) -> Optional[str]:
        if config.transposed:
            return "transposed convolutions are checked in the torch convention"
        if config.padding_mode != "zeros":
            return "TensorFlow pads with zeros only"
        if not config.batched:
            return "TensorFlow's ops take a batch axis"
        return None

    def keywords(self, config: ConvConfig) -> dict[str, Any]:
        if not any(config.lo) and not any(config.hi):
            padding: Any = "VALID"
        elif (tuple(config.lo), tuple(config.hi)) == _tf_same(config):
            padding = "SAME"
        else:
            padding = [[0, 0], *([lo, hi] for lo, hi in zip(config.lo, config.hi)), [0, 0]]
        return {"strides": [1, *config.stride_t, 1], "padding": padding,
                "dilations": [1, *config.dilation_t, 1]}

    def to_layout(self, a: Array, role: str, config: ConvConfig) -> Array:
        if role in ("x", "y"):
            moved: Array = np.moveaxis(a, 1, -1)
            return moved
        if role == "w":
            return np.transpose(a, _spatial_first(a.ndim - 2))
        return a

    def from_layout(self, a: Array, role: str, config: ConvConfig) -> Array:
        if role in ("x", "y"):
            moved: Array = np.moveaxis(a, -1, 1)
            return moved
        if role == "w":
            return np.transpose(a, _channels_first(a.ndim - 2))
        return a

    def adapt(self, strategy: SearchStrategy[ConvConfig]) -> SearchStrategy[ConvConfig]:
        """Some configurations' padding replaced by TensorFlow's SAME padding (for any stride)."""
        require_hypothesis()
        from hypothesis import strategies as st

        return st.tuples(strategy, st.booleans()).map(_maybe_tf_same)


def _tf_same(config: ConvConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """TensorFlow's SAME padding of ``config`` (``convgrad.tensorflow``'s rule, also at stride > 1)."""
    from .tensorflow import _tf_same_padding

    pairs = _tf_same_padding(tuple(config.size), tuple(config.kernel), config.stride_t, config.dilation_t)
    return tuple(lo for lo, _ in pairs), tuple(hi for _, hi in pairs)


def _maybe_tf_same(drawn: tuple[ConvConfig, bool]) -> ConvConfig:
    config, same = drawn
    if not same or config.transposed or config.padding_mode != "zeros":
        return config
    lo, hi = _tf_same(config)
    return config.replace(padding=tuple(zip(lo, hi)))


class _SciPy(Convention):
    """``scipy.signal.correlate``'s convention: one N-d array pair and ``mode``.

    ``forward(x, w, mode=...)`` with ``x (*S)``, ``w (*K)`` and ``mode`` one of
    ``"full"``, ``"same"`` (centred as SciPy centres it: for an even kernel the
    extra zero goes before) and ``"valid"``; ``backward(g, x, w, mode=...)``
    returns ``(gx, gw)``. No batch, channels, stride, dilation or bias.
    """

    name = "scipy"
    layout = "x (*S), w (*K), y (*Q)"
    has_bias = False

    def mode(self, config: ConvConfig) -> Optional[str]:
        lo, hi = tuple(config.lo), tuple(config.hi)
        full = tuple(k - 1 for k in config.kernel)
        same_lo = tuple(k - 1 - (k - 1) // 2 for k in config.kernel)
        same_hi = tuple((k - 1) // 2 for k in config.kernel)
        if not any(lo) and not any(hi):
            return "valid"
        if lo == hi == full:
            return "full"
        if (lo, hi) == (same_lo, same_hi):
            return "same"
        return None

    def problem(self, config: ConvConfig) -> Optional[str]:
        reasons = []
        if config.transposed:
            reasons.append("no transposed convolution")
        if config.n != 1 or config.c_in != 1 or config.c_out != 1 or config.groups != 1:
            reasons.append("one sample and one channel only")
        if any(s != 1 for s in config.stride_t) or any(dl != 1 for dl in config.dilation_t):
            reasons.append("no stride or dilation")
        if config.bias:
            reasons.append("no bias")
        if config.padding_mode != "zeros":
            reasons.append("zero padding only")
        if self.mode(config) is None:
            reasons.append("padding must be mode 'full', 'same' or 'valid'")
        return "; ".join(reasons) or None

    def keywords(self, config: ConvConfig) -> dict[str, Any]:
        return {"mode": self.mode(config)}

    def to_layout(self, a: Array, role: str, config: ConvConfig) -> Array:
        if role in ("x", "y"):
            lead = 2 if config.batched else 1
            if a.shape[:lead] != (1,) * lead:
                raise ValueError(f"shape {a.shape} has no single-sample, single-channel form")
            return a.reshape(a.shape[lead:])
        if role == "w":
            if a.shape[:2] != (1, 1):
                raise ValueError(f"shape {a.shape} has no single-channel form")
            return a.reshape(a.shape[2:])
        return a

    def from_layout(self, a: Array, role: str, config: ConvConfig) -> Array:
        if role in ("x", "y"):
            return a.reshape(((1, 1) if config.batched else (1,)) + a.shape)
        if role == "w":
            return a.reshape((1, 1) + a.shape)
        return a

    def forward_arguments(self, config: ConvConfig, x: Array, w: Array,
                          b: Optional[Array]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (x, w), self.keywords(config)

    def default_configs(self, transposed: bool = False) -> SearchStrategy[ConvConfig]:
        if transposed:
            raise ValueError("the scipy convention has no transposed convolution")
        require_hypothesis()
        from hypothesis import strategies as st

        @st.composite
        def scipy_configs(draw: DrawFn) -> ConvConfig:
            return _draw_scipy(draw)

        return scipy_configs()


def _draw_scipy(draw: DrawFn) -> ConvConfig:
    from hypothesis import strategies as st

    d = draw(st.sampled_from((1, 2, 3)))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(d))
    mode = draw(st.sampled_from(("valid", "same", "full")))
    if mode == "valid":
        padding: Any = "valid"
    elif mode == "full":
        padding = tuple((k - 1, k - 1) for k in kernel)
    else:
        padding = tuple((k - 1 - (k - 1) // 2, (k - 1) // 2) for k in kernel)
    lo, hi = resolve_padding(padding, kernel, (1,) * d)
    size = tuple(max(1, k - a - b) + draw(st.integers(0, 6)) for k, a, b in zip(kernel, lo, hi))
    return ConvConfig(d, 1, True, 1, 1, 1, kernel, size, 1, 1, padding, lo, hi, "zeros", False)


class _Lax(Convention):
    """``jax.lax.conv_general_dilated``'s convention with its default dimension numbers (``NC…``, ``OI…``).

    ``forward(lhs, rhs, window_strides=..., padding=[(l, h), ...], rhs_dilation=..., feature_group_count=...)``
    (no bias) and ``backward(g, lhs, rhs, ...) -> (lhs_grad, rhs_grad)``, what ``jax.vjp`` returns (for real
    data the same as PyTorch's gradients; complex data is checked in the torch convention, whose gradients
    are conjugated differently).
    """

    name = "jax"
    layout = "lhs (N, C, *S), rhs (O, C/groups, *K), out (N, O, *Q)"
    has_bias = False

    def problem(self, config: ConvConfig) -> Optional[str]:
        reasons = []
        if config.transposed:
            reasons.append("transposed convolutions are checked in the torch convention")
        if config.padding_mode != "zeros":
            reasons.append("zero padding only")
        if not config.batched:
            reasons.append("lax takes a batch axis")
        if config.bias:
            reasons.append("no bias")
        if np.dtype(config.dtype).kind == "c":
            reasons.append("complex data is checked in the torch convention")
        return "; ".join(reasons) or None

    def keywords(self, config: ConvConfig) -> dict[str, Any]:
        return {"window_strides": tuple(config.stride_t), "padding": tuple(zip(config.lo, config.hi)),
                "rhs_dilation": tuple(config.dilation_t), "feature_group_count": config.groups}

    def forward_arguments(self, config: ConvConfig, x: Array, w: Array,
                          b: Optional[Array]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (x, w), self.keywords(config)


class _Onnx(Convention):
    """The ONNX ``Conv`` / ``ConvTranspose`` operators' convention: attributes as keywords.

    ``forward(X, W, B, strides=[...], pads=[x1_begin, ..., x1_end, ...], dilations=[...], group=G)`` (and
    ``output_padding`` for ``ConvTranspose``); ``backward(dY, X, W, ...) -> (dX, dW)`` or ``(dX, dW, dB)``.
    Layout ``NC…`` / ``OI…`` (``ConvTranspose``: ``W (C, O/groups, *K)``), as PyTorch's.
    """

    name = "onnx"
    layout = "X (N, C, *S), W (O, C/group, *K), Y (N, O, *Q)"

    def problem(self, config: ConvConfig) -> Optional[str]:
        reasons = []
        if config.padding_mode != "zeros":
            reasons.append("zero padding only")
        if not config.batched:
            reasons.append("ONNX takes a batch axis")
        return "; ".join(reasons) or None

    def keywords(self, config: ConvConfig) -> dict[str, Any]:
        kw: dict[str, Any] = {"strides": list(config.stride_t), "pads": [*config.lo, *config.hi],
                              "dilations": list(config.dilation_t), "group": config.groups}
        if config.transposed:
            op = config.output_padding
            kw["output_padding"] = list(op) if isinstance(op, (tuple, list)) else [int(op)] * config.d
        return kw


CONVENTIONS: dict[str, Convention] = {}
"""The conventions by name: ``"torch"``, ``"tensorflow"``, ``"scipy"``, ``"jax"``, ``"onnx"``."""


def register_convention(convention: Convention) -> Convention:
    """Add a convention to :data:`CONVENTIONS` under its ``name`` (replacing one of the same name).

    Examples
    --------
    >>> from convgrad import testing
    >>> class Channels(testing.Convention):
    ...     name = "torch-keywords-only"
    >>> testing.register_convention(Channels()).name in testing.CONVENTIONS
    True
    >>> del testing.CONVENTIONS["torch-keywords-only"]
    """
    if not isinstance(convention, Convention):
        raise TypeError(f"a convention must be a testing.Convention; got {type(convention).__name__}")
    CONVENTIONS[convention.name] = convention
    return convention


for _convention in (Convention(), _TensorFlow(), _SciPy(), _Lax(), _Onnx()):
    register_convention(_convention)


def get_convention(convention: Union[str, Convention]) -> Convention:
    """The :class:`Convention` of that name (or the object itself).

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    """
    if isinstance(convention, Convention):
        return convention
    if isinstance(convention, str) and convention in CONVENTIONS:
        return CONVENTIONS[convention]
    raise ValueError(f"unknown convention {convention!r}; known: {', '.join(sorted(CONVENTIONS))}")


# ----------------------------------------------------------------------------- comparing one result


@dataclass(frozen=True)
class Comparison:
    """One result compared with the expected one.

    Attributes
    ----------
    passed : bool
    kind : {"ok", "error", "shape", "dtype", "value"}
        ``"error"``: no array to compare (an exception, ``None``, not
        numbers); ``"shape"``, ``"dtype"``, ``"value"``: an array that is wrong.
    message : str
    max_error : float
        ``max |actual − expected|`` (``inf`` with non-finite entries, ``nan``
        when there is nothing to compare).
    index : tuple of int or None
        The entry that violates the tolerance the most.
    expected_value, actual_value : complex, float or None
        The two values there.
    actual : numpy.ndarray or None
        The result as a NumPy array, when it is one.
    """

    passed: bool
    kind: str
    message: str = ""
    max_error: float = math.nan
    index: Optional[tuple[int, ...]] = None
    expected_value: Optional[complex | float] = None
    actual_value: Optional[complex | float] = None
    actual: Optional[Array] = field(default=None, repr=False, compare=False)


def _scalar(value: Any) -> complex | float:
    value = value.item() if hasattr(value, "item") else value
    return complex(value) if isinstance(value, complex) else float(value)


def _fmt(value: Optional[complex | float]) -> str:
    if value is None:
        return "-"
    if isinstance(value, complex):
        return f"{value.real:.10g}{value.imag:+.10g}j"
    return f"{value:.10g}"


def as_array(value: object) -> tuple[Optional[Array], str]:
    """``value`` as a numeric NumPy array, or ``None`` and why not.

    PyTorch tensors are detached and copied to the CPU; lists and other
    array-likes go through ``numpy.asarray``.
    """
    if value is None:
        return None, "returned None"
    try:
        if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
            tensor = value.detach().cpu()
            if str(tensor.dtype) == "torch.bfloat16":
                tensor = tensor.float()
            value = tensor.resolve_conj().resolve_neg().numpy()
        arr = np.asarray(value)
    except Exception as exc:  # whatever the object is, the answer is "not an array"
        return None, f"returned a {type(value).__name__} that is not an array ({type(exc).__name__}: {exc})"
    if arr.dtype.kind not in "biufc":
        return None, f"returned a {type(value).__name__} of dtype {arr.dtype}, not numbers"
    return arr, ""


def compare(actual: object, expected: Array, *, rtol: float = 1e-7, atol: float = 1e-10) -> Comparison:
    """Compare a result with the expected array: ``|actual − expected| <= atol + rtol·|expected|`` everywhere.

    The shape and dtype must be the expected ones; NaN never passes.

    Parameters
    ----------
    actual : array_like, torch.Tensor or anything
        What the implementation returned.
    expected : numpy.ndarray
    rtol, atol : float

    Returns
    -------
    Comparison

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad.testing import compare
    >>> compare([1.0, 2.5], np.array([1.0, 2.0])).message
    'max error 0.5 at (1,): expected 2, got 2.5'
    >>> compare(np.zeros((2, 2)), np.zeros(4)).message
    'shape (2, 2) instead of (4,)'
    """
    arr, problem = as_array(actual)
    if arr is None:
        return Comparison(False, "error", problem)
    if arr.shape != expected.shape:
        return Comparison(False, "shape", f"shape {arr.shape} instead of {expected.shape}", actual=arr)
    dtype_problem = "" if arr.dtype == expected.dtype else f"dtype {arr.dtype} instead of {expected.dtype}"
    if arr.size == 0:
        return Comparison(not dtype_problem, "dtype" if dtype_problem else "ok", dtype_problem, 0.0, actual=arr)
    with np.errstate(all="ignore"):
        work = np.result_type(arr.dtype, expected.dtype, np.float64)
        diff = np.abs(arr.astype(work) - expected.astype(work))
        tol = atol + rtol * np.abs(expected.astype(work))
        bad = ~(diff <= tol)
        score = np.where(np.isfinite(diff), diff / np.maximum(tol, np.finfo(np.float64).tiny), np.inf)
    finite = bool(np.all(np.isfinite(diff)))
    max_error = float(np.max(diff)) if finite else math.inf
    flat = int(np.argmax(np.where(bad, score, -1.0))) if bad.any() else int(np.argmax(diff))
    index = tuple(int(i) for i in np.unravel_index(flat, arr.shape))
    e_value, a_value = _scalar(expected[index]), _scalar(arr[index])
    if not bad.any():
        kind = "dtype" if dtype_problem else "ok"
        message = f"{dtype_problem} (values within tolerance)" if dtype_problem else ""
        return Comparison(not dtype_problem, kind, message, max_error, index, e_value, a_value, arr)
    parts = []
    nonfinite = int(np.count_nonzero(~np.isfinite(arr)))
    if nonfinite:
        parts.append(f"{nonfinite} of {arr.size} entries are NaN or infinite")
    parts.append(f"max error {max_error:.3g} at {index}: expected {_fmt(e_value)}, got {_fmt(a_value)}")
    if dtype_problem:
        parts.append(dtype_problem)
    return Comparison(False, "value", "; ".join(parts), max_error, index, e_value, a_value, arr)


# ----------------------------------------------------------------------------- expected results


def expected_results(config: ConvConfig, x: Array, w: Array, b: Optional[Array], g: Array) -> dict[str, Array]:
    """The correct forward output and gradients from convgrad's core, in PyTorch's layout.

    Returns
    -------
    dict
        ``{"forward": y, "input_grad": gx, "weight_grad": gw, "bias_grad": gb}``.

    Examples
    --------
    >>> from convgrad.testing import ConvConfig, expected_results
    >>> config = ConvConfig.from_shapes((1, 1, 3), (1, 1, 2))
    >>> x, w, b = config.arrays(0)
    >>> sorted(expected_results(config, x, w, b, config.grad_output(0)))
    ['bias_grad', 'forward', 'input_grad', 'weight_grad']
    """
    kw = config.kwargs()
    if config.transposed:
        y = conv_transpose(x, w, b, **kw)
        grads = conv_transpose_backward(g, x, w, **kw)
    else:
        y = conv(x, w, b, **kw)
        grads = conv_backward(g, x, w, **kw)
    return {"forward": y, "input_grad": grads.input, "weight_grad": grads.weight, "bias_grad": grads.bias}


# ----------------------------------------------------------------------------- the report


class FeatureCoverage(NamedTuple):
    """How often a feature was exercised, and how often every function passed on it."""

    examples: int
    passed: int


@dataclass(frozen=True)
class Failure:
    """The first failure of one function, shrunk to a minimal configuration.

    Attributes
    ----------
    function : {"forward", "input_grad", "weight_grad", "bias_grad"}
    config : ConvConfig
        The minimal failing configuration (``str(config)`` is its call).
    kind : {"error", "shape", "dtype", "value"}
        ``"error"``: the implementation raised or returned no array.
    message : str
        What went wrong: the exception, both shapes, or the error.
    max_error : float
    index : tuple of int or None
        The worst entry, in the convention's layout.
    expected, actual : complex, float or None
        The values there.
    features : tuple of str
        What the failure depends on: the features (:data:`FEATURES`) whose
        removal makes this function pass (``"batch>1"`` when it passes with
        N = 1).
    passing_neighbours : tuple of (str, ConvConfig)
        For each feature, the neighbouring configuration that passes.
    mistake : str or None
        The catalogued mistake (:data:`MISTAKES`) whose wrong result equals
        the implementation's on every failing configuration checked.
    checked : int
        On how many failing configurations the mistake was checked.
    convention : str
    call : str
        The call the implementation received, in the convention.
    first_config : ConvConfig
        The configuration the failure was first seen on, before shrinking.
    examples : int
        Configurations tried until then.
    seed : int
        The seed of the data: ``config.arrays(seed)``, ``config.grad_output(seed)``.
    note : str
        Anything else worth knowing (e.g. that it also raised elsewhere).
    case : str
        Where the arrays come from when they are not ``config.arrays(seed)``
        (a case of a reference file checked by ``convgrad verify``).
    """

    function: str
    config: ConvConfig
    kind: str
    message: str
    max_error: float
    index: Optional[tuple[int, ...]]
    expected: Optional[complex | float]
    actual: Optional[complex | float]
    features: tuple[str, ...]
    passing_neighbours: tuple[tuple[str, ConvConfig], ...]
    mistake: Optional[str]
    checked: int
    convention: str
    call: str
    first_config: ConvConfig
    examples: int
    seed: int
    note: str = ""
    case: str = ""

    @property
    def explanation(self) -> str:
        """The catalogued mistake's explanation ("" when none was named)."""
        return MISTAKES[self.mistake].explanation if self.mistake else ""

    @property
    def recipe(self) -> str:
        """The correct recipe, in general terms (the catalogued one, or the gradient's definition)."""
        if self.mistake:
            return MISTAKES[self.mistake].recipe
        return _GENERAL_RECIPES[self.function]

    @cached_property
    def config_recipe(self) -> str:
        """The correct recipe for this very configuration, verified by :func:`convgrad.explain` ("" if none)."""
        return recipe_for(self.config, self.function)

    def __str__(self) -> str:
        wrap = textwrap.TextWrapper(width=100, initial_indent="    ", subsequent_indent="    ")
        lines = [f"{self.function} FAILED on {self.config}",
                 f"  called as   {self.call}  ({self.convention} convention)",
                 f"  result      {self.message}"]
        if self.features:
            lines.append(f"  depends on  {', '.join(self.features)}")
            for feature, neighbour in self.passing_neighbours:
                lines.append(f"              passes without {feature}: {neighbour}")
        elif self.case:
            lines.append("  depends on  no feature that every failing case has is missing from a passing case")
        elif self.kind != "error":
            lines.append("  depends on  nothing simpler: it fails on every neighbouring configuration tried")
        if self.mistake:
            on = "the one failing configuration" if self.checked == 1 else f"all {self.checked} failing configurations"
            lines.append(f"  mistake     {self.mistake}: {MISTAKES[self.mistake].title} (the wrong result matches "
                         f"on {on} checked)")
            lines += wrap.wrap(self.explanation)
        elif self.kind == "error":
            lines.append("  mistake     none named: there is no result to compare with the catalogue")
        else:
            lines.append("  mistake     none of the catalogued mistakes matches")
        lines.append("  correct recipe")
        lines += wrap.wrap(self.recipe)
        if self.config_recipe:
            lines.append("  for this configuration (PyTorch layout; verified by convgrad.explain)")
            lines += [f"    {line}" for line in self.config_recipe.splitlines()]
        if self.first_config != self.config:
            plural = "" if self.examples == 1 else "s"
            lines.append(f"  first seen  after {self.examples} example{plural}, on {self.first_config}")
        if self.case:
            lines.append(f"  reproduce   {self.case}")
        else:
            lines.append(f"  reproduce   config = {self.config!r}; x, w, b = config.arrays({self.seed}); "
                         f"g = config.grad_output({self.seed})  (PyTorch layout)")
        if self.note:
            lines.append(f"  note        {self.note}")
        return "\n".join(lines)


_GENERAL_RECIPES = {
    "forward": "y[n, o, q] = b[o] + Σ_{c,k} pad(x)[n, γ(o)·C/G + c, q·s + k·δ] · w[o, c, k] (a cross-correlation).",
    "input_grad": "gx = conv_transpose(g, w, stride, padding, output_padding, dilation, groups), with "
                  "output_padding = the stride remainder; for padding modes other than zeros, the padding's adjoint "
                  "adds each padded entry back onto the entry it copies.",
    "weight_grad": "gw = conv(x.swapaxes(0, 1), g.swapaxes(0, 1), stride=δ, dilation=s, padding=(l, h))"
                   ".swapaxes(0, 1)[..., :K] per group.",
    "bias_grad": "gb = g summed over the batch and every spatial axis.",
}


def recipe_for(config: ConvConfig, function: str) -> str:
    """The verified one-call and explicit recipes of :func:`convgrad.explain` for one function of ``config``.

    Returns "" when :func:`convgrad.explain` has none (or cannot run here).
    """
    if function == "forward":
        args = ", ".join(["x", "w"] + (["b"] if config.bias else []))
        kw = ", ".join(f"{k}={v!r}" for k, v in config.nondefault_kwargs().items())
        return f"y = cg.{config.operation}({args}{', ' + kw if kw else ''})"
    from ._explain import explain

    try:
        e = explain(config.input_shape, config.weight_shape, stride=config.stride_t,
                    padding=tuple(zip(config.lo, config.hi)), dilation=config.dilation_t, groups=config.groups,
                    padding_mode=config.padding_mode, transposed=config.transposed,
                    output_padding=config.output_padding_t if config.transposed else 0)
    except Exception:  # a recipe is a courtesy of the report: without one, the report still stands
        return ""
    chunks = [r.code.rstrip("\n") for r in e.recipes_for(_GRADIENT[function])[:2] if r.status == "verified"]
    return "\n# or, explicitly:\n".join(chunks)


@dataclass(frozen=True, repr=False)
class Report(TextReportRepr):
    """What :func:`check_implementation` found; ``print(report)`` gives a readable account.

    Attributes
    ----------
    passed : bool
        No function failed.
    failures : list of Failure
        The first failure of each function, shrunk.
    coverage : dict of str to FeatureCoverage
        For each feature (:data:`FEATURES`), on how many configurations it was
        exercised and on how many of those every function checked passed.
    functions : tuple of str
        The functions checked.
    examples : dict of str to int
        Per function, the configurations tried (up to its first failure).
    not_checked : dict of str to str
        Functions not checked, and why (e.g. a backward without a bias gradient).
    convention : str
    seed : int
    max_examples : int
    rtol, atol : float
    source : str
        What was checked when it was not a search (``convgrad verify``: the reference file).
    """

    passed: bool
    failures: list[Failure]
    coverage: dict[str, FeatureCoverage]
    functions: tuple[str, ...]
    examples: dict[str, int]
    not_checked: dict[str, str]
    convention: str
    seed: int
    max_examples: int
    rtol: float
    atol: float
    source: str = ""

    def failure(self, function: str) -> Optional[Failure]:
        """The failure of ``function``, or ``None``."""
        return next((f for f in self.failures if f.function == function), None)

    def raise_on_failure(self) -> None:
        """Raise AssertionError with the report when a function failed."""
        if not self.passed:
            raise AssertionError(str(self))

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else f"FAILED ({len(self.failures)} of {len(self.functions)} functions)"
        what = (f"the {self.max_examples} cases of {self.source}" if self.source else
                f"up to {self.max_examples} examples per function, seed {self.seed}")
        tolerance = f"|actual − expected| <= {self.atol:g} + {self.rtol:g}·|expected|"
        lines = [f"convgrad conformance check: {verdict}", f"  {self.convention} convention, {what}, {tolerance}"]
        for function in self.functions:
            failure = self.failure(function)
            if failure is None:
                unit = "cases" if self.source else "examples"
                state = f"passed {self.examples.get(function, 0)} {unit}"
            elif self.source:
                state = f"FAILED: {failure.note}; the smallest: {failure.message}"
            else:
                plural = "" if failure.examples == 1 else "s"
                state = f"FAILED after {failure.examples} example{plural}: {failure.message}"
            lines.append(f"  {function:<12} {state}")
        for function, why in self.not_checked.items():
            lines.append(f"  {function:<12} not checked: {why}")
        for failure in self.failures:
            lines += ["", str(failure)]
        lines += ["", "Coverage (configurations exercising each feature, and on how many every function passed)"]
        for feature, cov in self.coverage.items():
            lines.append(f"  {feature:<24} {cov.examples:>5} {cov.passed:>5} passed")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- the search


class _Found(Exception):
    """Raised inside the Hypothesis test when a configuration satisfies the search condition."""


class _BadConfig(Exception):
    """The configuration strategy drew something the core refuses."""


@dataclass
class _Case:
    """One configuration's arrays, the expected results and the implementation's, in both layouts."""

    config: ConvConfig
    x: Array
    w: Array
    b: Optional[Array]
    g: Array
    expected: dict[str, Array]
    outcomes: dict[str, Comparison] = field(default_factory=dict)


class _Checker:
    """One run of :func:`check_implementation`: the implementation, its convention and every result so far."""

    def __init__(self, forward: Optional[Implementation], backward: Optional[Implementation], convention: Convention,
                 strategy: SearchStrategy[ConvConfig], max_examples: int, seed: int, rtol: float, atol: float):
        self.forward, self.backward = forward, backward
        self.convention = convention
        self.strategy = strategy
        self.max_examples, self.seed, self.rtol, self.atol = max_examples, seed, rtol, atol
        self.cases: dict[str, _Case] = {}
        self.forward_results: dict[str, tuple[bool, Any]] = {}
        self.backward_results: dict[str, tuple[bool, Any]] = {}
        self.coverage: dict[str, tuple[frozenset[str], dict[str, bool]]] = {}
        self.bias_returned = False
        self.bias_missing = False
        self.wrong: dict[tuple[str, int, str], Optional[dict[str, Array]]] = {}
        self.examples_tried: dict[str, int] = {}

    # ------------------------------------------------------------------ one configuration

    def case(self, config: ConvConfig) -> _Case:
        key = repr(config)
        case = self.cases.get(key)
        if case is None:
            try:
                x, w, b = config.arrays(self.seed)
                g = config.grad_output(self.seed)
                expected = expected_results(config, x, w, b, g)
            except (ValueError, TypeError) as exc:
                raise _BadConfig(f"the configs strategy drew {config!r}, which convgrad refuses: {exc}") from None
            case = self.cases[key] = _Case(config, x, w, b, g, expected)
        return case

    def _layout(self, a: Array, role: str, config: ConvConfig) -> Array:
        return np.ascontiguousarray(self.convention.to_layout(a, role, config))

    def _call(self, name: str, function: Implementation, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> tuple[bool, Any]:
        try:
            return True, function(*args, **kwargs)
        except Exception as exc:  # the implementation's failure, recorded, never the kit's
            text = " ".join(str(exc).split()) or "(no message)"
            return False, f"{name} raised {type(exc).__name__}: {text}"

    def _forward_result(self, case: _Case) -> tuple[bool, Any]:
        key = repr(case.config)
        if key not in self.forward_results:
            c = case.config
            b = None if case.b is None else case.b.copy()
            x, w = self._layout(case.x, "x", c), self._layout(case.w, "w", c)
            args, kw = self.convention.forward_arguments(c, x, w, b)
            assert self.forward is not None
            self.forward_results[key] = self._call("forward", self.forward, args, kw)
        return self.forward_results[key]

    def _backward_result(self, case: _Case) -> tuple[bool, Any]:
        key = repr(case.config)
        if key not in self.backward_results:
            c = case.config
            args, kw = self.convention.backward_arguments(
                c, self._layout(case.g, "y", c), self._layout(case.x, "x", c), self._layout(case.w, "w", c))
            assert self.backward is not None
            ok, value = self._call("backward", self.backward, args, kw)
            if ok:
                if isinstance(value, (tuple, list)) and len(value) in (2, 3):
                    value = tuple(value)
                else:
                    length = f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""
                    ok, value = False, (f"backward returned {type(value).__name__}{length}; "
                                        f"expected (gx, gw) or (gx, gw, gb)")
            self.backward_results[key] = (ok, value)
        return self.backward_results[key]

    def outcome(self, config: ConvConfig, function: str) -> Comparison:
        """The comparison of one function on one configuration (``kind="skip"`` when not returned)."""
        case = self.case(config)
        if function in case.outcomes:
            return case.outcomes[function]
        if function == "forward":
            ok, value = self._forward_result(case)
        else:
            ok, value = self._backward_result(case)
            if ok:
                position = ("input_grad", "weight_grad", "bias_grad").index(function)
                if position == 2 and (len(value) < 3 or value[2] is None):
                    self.bias_missing = True
                    case.outcomes[function] = Comparison(True, "skip", "no bias gradient returned")
                    return case.outcomes[function]
                if position == 2:
                    self.bias_returned = True
                value = value[position]
        if not ok:
            result = Comparison(False, "error", value)
        else:
            role = ROLES[function]
            expected = self.convention.to_layout(case.expected[function], role, config)
            result = compare(value, expected, rtol=self.rtol, atol=self.atol)
        case.outcomes[function] = result
        return result

    # ------------------------------------------------------------------ searching

    def search(self, function: str, want_array: bool) -> Optional[tuple[ConvConfig, ConvConfig, int]]:
        """Shrunk failing configuration, the first one seen and the examples tried; None if none fails."""
        hypothesis = require_hypothesis()
        found: list[ConvConfig] = []
        first: list[ConvConfig] = []
        tried = [0]
        problems: list[str] = []

        def fails(config: ConvConfig) -> bool:
            result = self.outcome(config, function)
            if result.passed:
                return False
            return (result.kind != "error") == want_array

        def probe(config: ConvConfig) -> None:
            try:
                failing = fails(config)
            except _BadConfig as exc:
                problems.append(str(exc))
                raise
            if not first:
                tried[0] += 1
                self.record(config)
            if failing:
                if not first:
                    first.append(config)
                found[:] = [config]
                raise _Found

        settings = hypothesis.settings(
            max_examples=self.max_examples, database=None, deadline=None, derandomize=False,
            phases=(hypothesis.Phase.generate, hypothesis.Phase.shrink),
            suppress_health_check=list(hypothesis.HealthCheck), verbosity=hypothesis.Verbosity.quiet,
            report_multiple_bugs=False, print_blob=False,
        )
        test = settings(hypothesis.given(self.strategy)(probe))
        test = hypothesis.seed(self.seed)(test)
        try:
            test()
        except _Found:
            self.examples_tried[function] = tried[0]
            return found[0], first[0], tried[0]
        except hypothesis.errors.Unsatisfiable:
            raise ValueError(
                f"the configs strategy drew no configuration the {self.convention.name!r} convention can express"
            ) from None
        except _BadConfig:
            raise ValueError(problems[0]) from None
        self.examples_tried[function] = max(self.examples_tried.get(function, 0), tried[0])
        return None

    def record(self, config: ConvConfig) -> None:
        """Coverage: the features of a configuration drawn in the generation phase, and what passed on it."""
        key = repr(config)
        results = self.coverage.setdefault(key, (config.features(), {}))[1]
        for function, result in self.case(config).outcomes.items():
            if result.kind != "skip":
                results[function] = result.passed

    # ------------------------------------------------------------------ features and mistakes

    def neighbours(self, config: ConvConfig) -> list[tuple[str, ConvConfig]]:
        """The configurations one feature simpler than ``config`` that are valid and expressible."""
        features = config.features()
        out: list[tuple[str, ConvConfig]] = []

        def add(feature: str, **changes: Any) -> None:
            if feature not in features:
                return
            try:
                neighbour = config.replace(**changes)
                neighbour.validate()
            except (ValueError, TypeError):
                return
            if neighbour != config and self.convention.problem(neighbour) is None:
                out.append((feature, neighbour))

        g = config.groups
        add("batch>1", n=1)
        add("unbatched", batched=True, n=1)
        add("in_channels>1", c_in=g)
        add("out_channels>1", c_out=g)
        add("channels>1", c_in=g, c_out=g)
        add("groups>1", groups=1, c_in=config.c_in // g, c_out=config.c_out // g)
        add("stride>1", stride=1)
        if "stride remainder" in features:
            shorter = tuple(s - r for s, r in zip(config.size, config.remainder))
            longer = tuple(s + (st - r) % st for s, r, st in zip(config.size, config.remainder, config.stride_t))
            for size in (shorter, longer):
                if not out or out[-1][0] != "stride remainder":
                    add("stride remainder", size=size)
        add("dilation>1", dilation=1)
        add("padding>0", padding=0)
        add("asymmetric padding", padding=tuple((lo, lo) for lo in config.lo))
        add("kernel>1", kernel=(1,) * config.d)
        for step in (1, -1):
            if not out or out[-1][0] != "even kernel":
                add("even kernel", kernel=tuple(k + step if k % 2 == 0 else k for k in config.kernel))
        if config.padding_mode != "zeros":
            add(f"padding_mode={config.padding_mode}", padding_mode="zeros")
        add("output_padding>0", output_padding=0)
        return out

    def depends_on(self, function: str, config: ConvConfig) -> tuple[tuple[str, ...], list[tuple[str, ConvConfig]],
                                                                   list[ConvConfig]]:
        """The features whose removal makes ``function`` pass, those neighbours, and the failing neighbours."""
        features: list[str] = []
        passing: list[tuple[str, ConvConfig]] = []
        failing: list[ConvConfig] = []
        for feature, neighbour in self.neighbours(config):
            result = self.outcome(neighbour, function)
            if result.passed and result.kind != "skip":
                if feature not in features:
                    features.append(feature)
                    passing.append((feature, neighbour))
            elif not result.passed:
                failing.append(neighbour)
        return tuple(features), passing, failing

    def matching(self, function: str, configs_: list[ConvConfig]) -> tuple[list[str], int]:
        """The catalogued mistakes whose wrong result equals the implementation's on every failing config given."""
        chosen: list[ConvConfig] = []
        for config in configs_:
            result = self.outcome(config, function)
            if not result.passed and result.actual is not None and config not in chosen:
                chosen.append(config)
        cases = []
        for config in chosen[:_CHECKED_CONFIGS]:
            case = self.case(config)
            actual = case.outcomes[function].actual
            assert actual is not None
            cases.append(MistakeCase(config, case.x, case.w, case.b, case.g, actual))
        return match_mistakes(function, cases, self.convention, rtol=self.rtol, atol=self.atol,
                              cache=self.wrong), len(cases)

    def more_failing(self, function: str, wanted: int) -> list[ConvConfig]:
        """Up to ``wanted`` further failing configurations (wrong arrays) from a short generation-only search."""
        hypothesis = require_hypothesis()
        seen: list[ConvConfig] = []

        def probe(config: ConvConfig) -> None:
            try:
                result = self.outcome(config, function)
            except _BadConfig:
                return
            if not result.passed and result.kind != "error" and config not in seen:
                seen.append(config)
            if len(seen) >= wanted:  # on every call from then on, so that Hypothesis's replay agrees
                raise _Found

        settings = hypothesis.settings(
            max_examples=_EXTRA_EXAMPLES, database=None, deadline=None, derandomize=False,
            phases=(hypothesis.Phase.generate,), suppress_health_check=list(hypothesis.HealthCheck),
            verbosity=hypothesis.Verbosity.quiet, report_multiple_bugs=False, print_blob=False,
        )
        test = hypothesis.seed(self.seed + 1)(settings(hypothesis.given(self.strategy)(probe)))
        try:
            test()
        except (_Found, hypothesis.errors.Unsatisfiable):
            pass
        return seen

    def examples_seen(self, function: str, kind_array: bool) -> list[ConvConfig]:
        """Failing configurations of ``function`` evaluated so far (shrinking included), of one kind."""
        out = []
        for case in self.cases.values():
            result = case.outcomes.get(function)
            if result is not None and not result.passed and (result.kind != "error") == kind_array:
                out.append(case.config)
        return out


class MistakeCase(NamedTuple):
    """One failing result to compare with the catalogue: its configuration, inputs (PyTorch layout) and result.

    ``actual`` is what the implementation returned, in the convention's layout.
    """

    config: ConvConfig
    x: Array
    w: Array
    b: Optional[Array]
    g: Array
    actual: Array


def match_mistakes(function: str, cases: Sequence[MistakeCase], convention: Union[str, Convention] = "torch", *,
                   rtol: float = 1e-7, atol: float = 1e-10,
                   cache: Optional[dict[tuple[str, int, str], Optional[dict[str, Array]]]] = None) -> list[str]:
    """The catalogued mistakes (:data:`MISTAKES`) one of whose variants gives every ``actual`` of ``cases``.

    Parameters
    ----------
    function : {"forward", "input_grad", "weight_grad", "bias_grad"}
    cases : sequence of MistakeCase
        Failing results; none: no mistake matches.
    convention : str or Convention
        The layout of each ``actual``.
    rtol, atol : float
        A wrong result matches when ``|actual − wrong| <= atol + rtol·|wrong|`` everywhere.
    cache : dict, optional
        Reused between calls: the wrong results already computed.

    Returns
    -------
    list of str
        In catalogue order.

    Examples
    --------
    >>> import convgrad as cg
    >>> from convgrad.testing import ConvConfig, MistakeCase, match_mistakes
    >>> config = ConvConfig.from_shapes((2, 1, 4), (1, 1, 2), bias=False)
    >>> x, w, _ = config.arrays(0)
    >>> g = config.grad_output(0)
    >>> wrong = cg.conv_weight_grad(g[:1], x[:1], weight_shape=w.shape)   # one sample only
    >>> match_mistakes("weight_grad", [MistakeCase(config, x, w, None, g, wrong)])
    ['weight_grad_one_sample']
    """
    conv_ = get_convention(convention)
    cache = {} if cache is None else cache
    if not cases:
        return []
    names = []
    for mistake in MISTAKES.values():
        for variant in range(len(mistake.variants)):
            if all(_matches(mistake, variant, case, function, conv_, rtol, atol, cache) for case in cases):
                names.append(mistake.name)
                break
    return names


def _matches(mistake: Mistake, variant: int, case: MistakeCase, function: str, convention: Convention,
             rtol: float, atol: float, cache: dict[tuple[str, int, str], Optional[dict[str, Array]]]) -> bool:
    config = case.config
    if function not in mistake.functions_for(config):
        return False
    key = (mistake.name, variant, repr(config))
    if key not in cache:
        try:
            cache[key] = mistake.wrong(config, case.x, case.w, case.b, case.g, variant)
        except NotApplicable:
            cache[key] = None
    wrong = cache[key]
    if wrong is None or function not in wrong:
        return False
    try:
        expected = convention.to_layout(wrong[function], ROLES[function], config)
    except ValueError:
        return False
    actual = case.actual
    if actual.shape != expected.shape:
        return False
    if actual.size == 0:
        return True
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(actual - expected) <= atol + rtol * np.abs(expected)))


def choose_mistakes(candidates: dict[str, list[str]], tested_passed: set[str],
                     configs_by_function: dict[str, ConvConfig]) -> dict[str, Optional[str]]:
    """One mistake per failing function, consistent with the whole report.

    A mistake that would also make a function fail which passed is ruled
    out; among the rest, the one that explains the most failing functions
    wins, then the catalogue's order.
    """
    chosen: dict[str, Optional[str]] = {}
    order = list(MISTAKES)
    for function, names in candidates.items():
        config = configs_by_function[function]
        viable = [n for n in names if not set(MISTAKES[n].functions_for(config)) & tested_passed]
        if not viable:
            chosen[function] = None
            continue
        chosen[function] = max(viable, key=lambda n: (sum(n in c for c in candidates.values()), -order.index(n)))
    return chosen


def _check_tolerance(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not (
            math.isfinite(float(value)) and float(value) >= 0):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return float(value)


def check_implementation(
    forward: Optional[Implementation] = None,
    backward: Optional[Implementation] = None,
    *,
    convention: Union[str, Convention] = "torch",
    configs: Optional[SearchStrategy[ConvConfig]] = None,
    max_examples: int = 200,
    seed: Optional[int] = 0,
    rtol: float = 1e-7,
    atol: float = 1e-10,
) -> Report:
    """Check an implementation of a convolution and its gradients against convgrad's core.

    Each function (``forward``; ``input_grad``, ``weight_grad``,
    ``bias_grad`` from ``backward``) is run on configurations drawn from
    ``configs`` until its first failure, which Hypothesis shrinks to a
    minimal configuration. For each failure the report gives what it
    depends on (the features whose removal makes it pass), the catalogued
    mistake it matches, if any, with its explanation, and the correct recipe.
    The implementation's exceptions, wrong shapes, wrong dtypes, NaNs and
    ``None`` are failures with their messages, never errors of the check.

    Parameters
    ----------
    forward : callable, optional
        ``forward(x, w, b, **geometry) -> y`` on NumPy arrays in the
        convention's layout (``b`` is ``None`` without a bias; ``scipy``:
        ``forward(x, w, mode=...)``). May return a PyTorch tensor or any
        array-like.
    backward : callable, optional
        ``backward(g, x, w, **geometry) -> (gx, gw)`` or ``(gx, gw, gb)``
        (a ``None`` ``gb`` is not checked).
    convention : str or Convention
        ``"torch"``, ``"tensorflow"``, ``"scipy"`` (see :data:`CONVENTIONS`).
    configs : hypothesis strategy of ConvConfig, optional
        The part of the space the implementation supports, e.g.
        ``testing.configs(ndim=2, dilation=False)``; configurations the
        convention cannot express are skipped. Default: the convention's
        whole space (zero padding).
    max_examples : int
        Configurations tried per function before it is declared passing.
    seed : int or None
        Seed of the search and of the data (``None``: a random one, reported).
    rtol, atol : float
        A result passes when ``|actual − expected| <= atol + rtol·|expected|``
        everywhere (loosen them for float32).

    Returns
    -------
    Report

    Raises
    ------
    ImportError
        Without Hypothesis.
    ValueError, TypeError
        For an unknown convention, no callable, non-callables, a bad seed,
        tolerance or ``max_examples``, or a strategy that draws nothing the
        convention can express.

    Notes
    -----
    The search runs Hypothesis itself; called from inside a Hypothesis test,
    that test needs ``suppress_health_check=[HealthCheck.nested_given]``.
    The correct recipe of each failure comes from :func:`convgrad.explain`
    when the failure is first printed (which imports PyTorch, if installed,
    to verify the PyTorch form).

    Examples
    --------
    The weight gradient of the notebooks' worked examples, ``conv(x, g)``, right for one
    sample:

    >>> import convgrad as cg
    >>> from convgrad import testing
    >>> def backward(g, x, w, *, stride, padding, dilation, groups):
    ...     gx = cg.conv_input_grad(g, w, input_shape=x.shape, padding=padding)
    ...     return gx, cg.conv(x, g, padding=padding)
    >>> space = testing.configs(ndim=2, groups=False, stride=False, dilation=False, padding="int")
    >>> report = testing.check_implementation(backward=backward, configs=space)
    >>> failure = report.failure("weight_grad")
    >>> failure.mistake, failure.features
    ('batch_not_contracted', ('batch>1',))
    >>> print(failure.config)
    conv(x: (2, 1, 1, 1), w: (1, 1, 1, 1))
    """
    hypothesis = require_hypothesis()
    conv_ = get_convention(convention)
    if forward is None and backward is None:
        raise ValueError("give forward, backward or both")
    for name, fn in (("forward", forward), ("backward", backward)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable; got {type(fn).__name__}")
    if isinstance(max_examples, bool) or not isinstance(max_examples, (int, np.integer)) or max_examples < 1:
        raise ValueError(f"max_examples must be an int >= 1; got {max_examples!r}")
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**32))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int from 0 to 2**32 - 1, or None; got {seed!r}")
    rtol, atol = _check_tolerance(rtol, "rtol"), _check_tolerance(atol, "atol")
    strategy = conv_.default_configs() if configs is None else configs
    if not isinstance(strategy, hypothesis.strategies.SearchStrategy):
        raise TypeError(f"configs must be a Hypothesis strategy of ConvConfig (testing.configs(...)); "
                        f"got {type(configs).__name__}")
    strategy = strategy.filter(lambda c: isinstance(c, ConvConfig) and conv_.problem(c) is None)
    checker = _Checker(forward, backward, conv_, strategy, int(max_examples), int(seed), rtol, atol)

    functions = (("forward",) if forward is not None else ()) + (
        ("input_grad", "weight_grad") + (("bias_grad",) if conv_.has_bias else ()) if backward is not None else ())
    found: dict[str, tuple[ConvConfig, ConvConfig, bool]] = {}
    for function in functions:
        hit = checker.search(function, want_array=True)
        array_kind = hit is not None
        if hit is None and checker.examples_seen(function, kind_array=False):
            hit = checker.search(function, want_array=False)
        if hit is not None:
            found[function] = (hit[0], hit[1], array_kind)

    not_checked: dict[str, str] = {}
    if backward is not None and not conv_.has_bias:
        not_checked["bias_grad"] = f"the {conv_.name} convention has no bias"
    elif backward is not None and checker.bias_missing and not checker.bias_returned:
        not_checked["bias_grad"] = "backward returned no bias gradient"
    checked = tuple(f for f in functions if f not in not_checked)

    details = {}
    candidates: dict[str, list[str]] = {}
    for function, (config, first, array_kind) in found.items():
        features, passing, failing_neighbours = checker.depends_on(function, config)
        pool = [config, first, *failing_neighbours, *checker.examples_seen(function, kind_array=True)]
        if array_kind and len({repr(c) for c in pool}) < _MIN_CHECKED:
            pool += checker.more_failing(function, _MIN_CHECKED)
        names, count = checker.matching(function, pool) if array_kind else ([], 0)
        candidates[function] = names
        details[function] = (config, first, features, passing, count)
    tested_passed = {f for f in checked if f not in found}
    chosen = choose_mistakes(candidates, tested_passed, {f: d[0] for f, d in details.items()})

    failures = []
    for function in checked:
        if function not in details:
            continue
        config, first, features, passing, count = details[function]
        result = checker.outcome(config, function)
        note = ""
        if found[function][2] and checker.examples_seen(function, kind_array=False):
            other = checker.examples_seen(function, kind_array=False)[0]
            note = f"also, on {other}: {checker.outcome(other, function).message}"
        failures.append(Failure(
            function=function, config=config, kind=result.kind, message=result.message,
            max_error=result.max_error, index=result.index, expected=result.expected_value,
            actual=result.actual_value, features=features, passing_neighbours=tuple(passing),
            mistake=chosen.get(function), checked=count, convention=conv_.name,
            call=conv_.call_text(config, "forward" if function == "forward" else "backward"),
            first_config=first, examples=checker.examples_tried.get(function, 0), seed=int(seed), note=note,
        ))
    coverage = coverage_of(checker.coverage.values())
    return Report(
        passed=not failures, failures=failures, coverage=coverage, functions=checked,
        examples={f: checker.examples_tried.get(f, 0) for f in checked}, not_checked=not_checked,
        convention=conv_.name, seed=int(seed), max_examples=int(max_examples), rtol=rtol, atol=atol,
    )


def coverage_of(entries: Iterable[tuple[frozenset[str], dict[str, bool]]]) -> dict[str, FeatureCoverage]:
    """Coverage from ``(features, {function: passed})`` per configuration, features in :data:`FEATURES` order."""
    counts: dict[str, list[int]] = {}
    for features, results in entries:
        ok = all(results.values())
        for feature in features:
            entry = counts.setdefault(feature, [0, 0])
            entry[0] += 1
            entry[1] += ok
    order = list(FEATURES)
    return {f: FeatureCoverage(*counts[f]) for f in sorted(counts, key=lambda f: (order.index(f)
                                                                                    if f in order else len(order), f))}


def explain_mistake(name: str) -> str:
    """The catalogue entry ``name`` as text: title, explanation and correct recipe.

    Examples
    --------
    >>> from convgrad.testing import explain_mistake
    >>> print(explain_mistake("weight_grad_one_sample").splitlines()[0])
    weight_grad_one_sample: the weight gradient holds only one sample's contribution
    """
    if name not in MISTAKES:
        raise ValueError(f"unknown mistake {name!r}; known: {', '.join(MISTAKES)}")
    m = MISTAKES[name]
    return f"{m.name}: {m.title}\n\n{m.explanation}\n\nCorrect: {m.recipe}"

