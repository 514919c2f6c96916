"""The configuration space of a convolution: :class:`ConvConfig` and the Hypothesis strategies over it.

A :class:`ConvConfig` is one convolution call (shapes, geometry, bias flag,
dtype) in PyTorch's layout. It builds its own seeded arrays
(:meth:`ConvConfig.arrays`), its own ``convgrad`` keyword arguments
(:meth:`ConvConfig.kwargs`) and prints as the call that reproduces it.

The strategies (:func:`configs`, and :func:`conv_configs`, the fine-grained
form convgrad's own tests use) need Hypothesis, which is imported when a
strategy is first built, so that the configuration class itself works without
it. Draws are ordered so that Hypothesis's shrinking ends on the configuration
a person would call minimal: the number of dimensions first, then groups and
channels, kernel, stride, dilation, padding, the input size, and the batch last.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Union

import numpy as np
import numpy.typing as npt

from ._geometry import out_size, transposed_size

if TYPE_CHECKING:
    from hypothesis.strategies import DrawFn, SearchStrategy

Array = npt.NDArray[Any]
IntOrTuple = Union[int, tuple[int, ...]]

MODES = ("zeros", "reflect", "replicate", "circular")
"""The padding modes (``torch.nn.Conv*d``'s ``padding_mode``)."""

PADDING_FORMS = ("int", "asymmetric", "same", "valid")
"""How padding may be written: ``"int"`` (symmetric: an int, or one int per dimension), ``"asymmetric"``
(one ``(before, after)`` pair per dimension), ``"same"`` and ``"valid"``."""

DTYPES = ("float64", "float32", "complex128")
"""The dtypes a configuration's arrays may have."""

HYPOTHESIS_MISSING = "convgrad.testing needs Hypothesis: pip install 'convgrad[testing]'"

_MAX_PAD = 3
"""The largest padding drawn on one side of one dimension."""

_FORM_ALIASES = {"int": ("int", "tuple"), "tuple": ("tuple",), "asymmetric": ("pairs",), "pairs": ("pairs",),
                 "same": ("same",), "valid": ("valid",)}


def require_hypothesis() -> Any:
    """``hypothesis``, or an ImportError of one line naming the extra to install."""
    try:
        import hypothesis
    except ImportError:
        raise ImportError(HYPOTHESIS_MISSING) from None
    return hypothesis


# ----------------------------------------------------------------------------- padding


def resolve_padding(padding: object, kernel: Sequence[int], dilation: Sequence[int]) -> tuple[
        tuple[int, ...], tuple[int, ...]]:
    """The ``(before, after)`` padding of each dimension for a padding as written.

    Parameters
    ----------
    padding : int, tuple of int, tuple of (int, int), "same" or "valid"
    kernel, dilation : tuple of int, shape=(d,)

    Returns
    -------
    (tuple of int, tuple of int)
        ``lo`` and ``hi``.

    Examples
    --------
    >>> resolve_padding("same", (2, 3), (1, 1))
    ((0, 1), (1, 1))
    >>> resolve_padding(((1, 0),), (3,), (1,))
    ((1,), (0,))
    """
    d = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * d, (0,) * d
        if padding == "same":
            totals = [dl * (k - 1) for k, dl in zip(kernel, dilation)]
            return tuple(t // 2 for t in totals), tuple(t - t // 2 for t in totals)
        raise ValueError(f"padding must be an int, a tuple, 'same' or 'valid'; got {padding!r}")
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * d, (int(padding),) * d
    items = list(padding)  # type: ignore[call-overload]
    if len(items) == 1 and d > 1:
        items = items * d
    if len(items) != d:
        raise ValueError(f"padding {padding!r} must have one entry per spatial dimension ({d})")
    lo, hi = [], []
    for item in items:
        if isinstance(item, (int, np.integer)):
            lo.append(int(item))
            hi.append(int(item))
        else:
            before, after = item
            lo.append(int(before))
            hi.append(int(after))
    return tuple(lo), tuple(hi)


def _as_tuple(value: IntOrTuple, d: int) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)):
        return (int(value),) * d
    values = tuple(int(v) for v in value)
    return values * d if len(values) == 1 else values


def _compact(values: tuple[int, ...]) -> IntOrTuple:
    """``(2, 2)`` -> ``2``; ``(2, 1)`` stays."""
    return values[0] if len(set(values)) == 1 else values


# ----------------------------------------------------------------------------- the configuration


@dataclass
class ConvConfig:
    """One convolution call: shapes, geometry, bias flag and dtype, in PyTorch's layout.

    Build one with :meth:`from_shapes` (or draw them with :func:`configs`).
    ``str(config)`` is the call that reproduces it, ``repr(config)`` the
    :meth:`from_shapes` expression that rebuilds it.

    Attributes
    ----------
    d : int
        Number of spatial dimensions.
    n : int
        Batch size (1 when ``batched`` is false).
    batched : bool
        Whether ``x`` has a batch axis.
    groups : int
    c_in, c_out : int
        Channels of the input ``x`` and of the output ``y``.
    kernel, size : tuple of int, shape=(d,)
        Kernel size and the input's spatial size.
    stride, dilation : int or tuple of int
        As written in the call.
    padding : int, tuple of int, tuple of (int, int), "same" or "valid"
        As written in the call (PyTorch's forms, with convgrad's
        ``(before, after)`` pairs for asymmetric padding).
    lo, hi : tuple of int, shape=(d,)
        The padding before and after each dimension that ``padding`` means.
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
    bias : bool
        Whether the forward pass adds a bias.
    transposed : bool
        A transposed convolution: ``x (N, c_in, *size)``, weight
        ``(c_in, c_out / groups, *kernel)``.
    output_padding : int or tuple of int
        Transposed only: added to the output's far end.
    dtype : str
        The dtype of the arrays, e.g. ``"float64"``.

    Examples
    --------
    >>> from convgrad.testing import ConvConfig
    >>> config = ConvConfig.from_shapes((2, 3, 5, 5), (4, 3, 3, 3), stride=2, padding=1)
    >>> print(config)
    conv(x: (2, 3, 5, 5), w: (4, 3, 3, 3), b: (4,), stride=2, padding=1)
    >>> config.output_shape
    (2, 4, 3, 3)
    >>> x, w, b = config.arrays(seed=0)
    >>> x.shape, w.shape, b.shape
    ((2, 3, 5, 5), (4, 3, 3, 3), (4,))
    """

    d: int
    n: int
    batched: bool
    groups: int
    c_in: int
    c_out: int
    kernel: tuple[int, ...]
    size: tuple[int, ...]
    stride: IntOrTuple
    dilation: IntOrTuple
    padding: Any
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    padding_mode: str = "zeros"
    bias: bool = True
    transposed: bool = False
    output_padding: IntOrTuple = 0
    dtype: str = "float64"

    def __post_init__(self) -> None:
        if not (len(self.kernel) == len(self.size) == len(self.lo) == len(self.hi) == self.d):
            raise ValueError(
                f"kernel {self.kernel}, size {self.size}, lo {self.lo} and hi {self.hi} must each have "
                f"d = {self.d} entries"
            )
        lo, hi = resolve_padding(self.padding, self.kernel, self.dilation_t)
        if (lo, hi) != (tuple(self.lo), tuple(self.hi)):
            raise ValueError(f"padding {self.padding!r} means lo={lo}, hi={hi}; got lo={self.lo}, hi={self.hi}")

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_shapes(
        cls,
        input_shape: Sequence[int],
        weight_shape: Sequence[int],
        *,
        bias: bool = True,
        stride: IntOrTuple = 1,
        padding: Any = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        transposed: bool = False,
        output_padding: IntOrTuple = 0,
        dtype: str = "float64",
    ) -> ConvConfig:
        """The configuration of ``conv(x, w, b, ...)`` (or ``conv_transpose``) for these shapes.

        Parameters
        ----------
        input_shape : tuple of int
            ``(N, C, *S)``, or ``(C, *S)`` unbatched.
        weight_shape : tuple of int
            ``(O, C / groups, *K)``; transposed: ``(C, O / groups, *K)``.
        bias : bool
        stride, padding, dilation, groups, padding_mode, output_padding
            As for :func:`convgrad.conv` and :func:`convgrad.conv_transpose`.
        transposed : bool
        dtype : str

        Returns
        -------
        ConvConfig

        Raises
        ------
        ValueError, TypeError
            For a configuration :func:`convgrad.conv` would refuse, with its message.

        Examples
        --------
        >>> from convgrad.testing import ConvConfig
        >>> ConvConfig.from_shapes((1, 2, 6), (2, 3, 2), transposed=True, stride=2, output_padding=1)
        ConvConfig.from_shapes((1, 2, 6), (2, 3, 2), stride=2, transposed=True, output_padding=1)
        """
        input_shape, weight_shape = tuple(input_shape), tuple(weight_shape)
        d = len(weight_shape) - 2
        batched = len(input_shape) == d + 2
        n = input_shape[0] if batched else 1
        c_in = input_shape[-d - 1]
        c_out = weight_shape[1] * groups if transposed else weight_shape[0]
        kernel = weight_shape[2:]
        lo, hi = resolve_padding(padding, kernel, _as_tuple(dilation, d))
        config = cls(d, n, batched, groups, c_in, c_out, kernel, input_shape[-d:], stride, dilation, padding,
                     lo, hi, padding_mode, bias, transposed, output_padding, dtype)
        config.validate()
        if config.input_shape != input_shape or config.weight_shape != weight_shape:
            raise ValueError(f"input_shape {input_shape} and weight_shape {weight_shape} do not match groups={groups}")
        return config

    def replace(self, **changes: Any) -> ConvConfig:
        """A copy with some fields changed; ``lo`` and ``hi`` follow a new padding, kernel or dilation.

        Examples
        --------
        >>> from convgrad.testing import ConvConfig
        >>> ConvConfig.from_shapes((1, 1, 5), (1, 1, 3), padding="same").replace(kernel=(2,)).hi
        (1,)
        """
        if "lo" not in changes and "hi" not in changes:
            kernel = changes.get("kernel", self.kernel)
            d = len(kernel)
            dilation = _as_tuple(changes.get("dilation", self.dilation), d)
            changes["lo"], changes["hi"] = resolve_padding(changes.get("padding", self.padding), kernel, dilation)
            changes.setdefault("d", d)
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        """Raise ValueError or TypeError (convgrad's message) when the configuration is impossible."""
        from ._geometry import conv_geometry, transpose_geometry

        if self.n < 0 or self.c_in < 1 or self.c_out < 1 or self.groups < 1 or self.c_out % self.groups:
            raise ValueError(
                f"impossible channels: n={self.n}, c_in={self.c_in}, c_out={self.c_out}, groups={self.groups}"
            )
        if self.transposed:
            if self.padding_mode != "zeros":
                raise ValueError(f"a transposed convolution pads with zeros; got padding_mode={self.padding_mode!r}")
            transpose_geometry(self.input_shape, self.weight_shape, **self.kwargs())
        else:
            conv_geometry(self.input_shape, self.weight_shape, **self.kwargs())
        np.dtype(self.dtype)

    # ------------------------------------------------------------------ derived values

    @property
    def mode(self) -> str:
        """``padding_mode`` (its short name)."""
        return self.padding_mode

    @property
    def stride_t(self) -> tuple[int, ...]:
        """The stride, one int per dimension."""
        return _as_tuple(self.stride, self.d)

    @property
    def dilation_t(self) -> tuple[int, ...]:
        """The dilation, one int per dimension."""
        return _as_tuple(self.dilation, self.d)

    @property
    def output_padding_t(self) -> tuple[int, ...]:
        """The output padding, one int per dimension (zeros for a forward convolution)."""
        return _as_tuple(self.output_padding, self.d) if self.transposed else (0,) * self.d

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``x.shape``: ``(N, C, *S)`` or ``(C, *S)``."""
        return ((self.n, self.c_in) if self.batched else (self.c_in,)) + tuple(self.size)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """``w.shape``: ``(O, C / groups, *K)``, transposed ``(C, O / groups, *K)``."""
        if self.transposed:
            return (self.c_in, self.c_out // self.groups) + tuple(self.kernel)
        return (self.c_out, self.c_in // self.groups) + tuple(self.kernel)

    @property
    def bias_shape(self) -> tuple[int, ...]:
        """``b.shape``: ``(O,)``."""
        return (self.c_out,)

    @property
    def out_size(self) -> tuple[int, ...]:
        """The output's spatial size."""
        sizes = []
        for s, k, st, dl, lo, hi, a in zip(self.size, self.kernel, self.stride_t, self.dilation_t, self.lo, self.hi,
                                           self.output_padding_t):
            if self.transposed:
                sizes.append(transposed_size(s, k, st, dl, lo, hi, a))
            else:
                sizes.append(out_size(s, k, st, dl, lo, hi))
        return tuple(sizes)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """``y.shape`` (and the upstream gradient's)."""
        return ((self.n, self.c_out) if self.batched else (self.c_out,)) + self.out_size

    @property
    def remainder(self) -> tuple[int, ...]:
        """``(S + l + h − δ(K − 1) − 1) mod s`` per dimension: padded rows no window reaches.

        For a transposed convolution, its output padding (the same quantity of
        the convolution it is the adjoint of).
        """
        if self.transposed:
            return self.output_padding_t
        return tuple((s + lo + hi - dl * (k - 1) - 1) % st for s, k, st, dl, lo, hi in
                     zip(self.size, self.kernel, self.stride_t, self.dilation_t, self.lo, self.hi))

    @property
    def x_shape(self) -> tuple[int, ...]:
        """Alias of :attr:`input_shape`."""
        return self.input_shape

    @property
    def w_shape(self) -> tuple[int, ...]:
        """Alias of :attr:`weight_shape`."""
        return self.weight_shape

    @property
    def operation(self) -> str:
        """``"conv"`` or ``"conv_transpose"``."""
        return "conv_transpose" if self.transposed else "conv"

    def kwargs(self) -> dict[str, Any]:
        """The geometry keywords of the ``convgrad`` call (:func:`convgrad.conv` or :func:`convgrad.conv_transpose`).

        Examples
        --------
        >>> from convgrad.testing import ConvConfig
        >>> ConvConfig.from_shapes((1, 1, 5), (1, 1, 3), padding=((1, 0),)).kwargs()
        {'stride': 1, 'padding': ((1, 0),), 'dilation': 1, 'groups': 1, 'padding_mode': 'zeros'}
        """
        if self.transposed:
            return {"stride": self.stride, "padding": self.padding, "output_padding": self.output_padding,
                    "dilation": self.dilation, "groups": self.groups}
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups,
                "padding_mode": self.padding_mode}

    def nondefault_kwargs(self) -> dict[str, Any]:
        """:meth:`kwargs` without the keywords left at their defaults."""
        defaults = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "padding_mode": "zeros",
                    "output_padding": 0}
        out = {}
        for key, value in self.kwargs().items():
            plain = value
            if isinstance(value, tuple) and value and all(isinstance(v, (int, np.integer)) for v in value):
                plain = _compact(tuple(int(v) for v in value))
            if plain != defaults[key]:
                out[key] = value
        return out

    # ------------------------------------------------------------------ arrays

    def arrays(self, seed: Union[int, np.random.Generator] = 0, dtype: Any = None) -> tuple[
            Array, Array, Optional[Array]]:
        """Seeded standard-normal ``x``, ``w`` and ``b`` (``None`` without a bias), in PyTorch's layout.

        Parameters
        ----------
        seed : int or numpy.random.Generator
        dtype : dtype, optional
            Default: the configuration's.

        Returns
        -------
        x : numpy.ndarray, shape=input_shape
        w : numpy.ndarray, shape=weight_shape
        b : numpy.ndarray, shape=(c_out,), or None
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        dt = np.dtype(self.dtype if dtype is None else dtype)
        x = _normal(rng, self.input_shape, dt)
        w = _normal(rng, self.weight_shape, dt)
        b = _normal(rng, self.bias_shape, dt) if self.bias else None
        return x, w, b

    def grad_output(self, seed: Union[int, np.random.Generator] = 0, dtype: Any = None) -> Array:
        """A seeded standard-normal upstream gradient ``g``, shape :attr:`output_shape`.

        From its own stream: ``arrays(seed)`` and ``grad_output(seed)`` are independent.
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng((int(seed), 1))
        return _normal(rng, self.output_shape, np.dtype(self.dtype if dtype is None else dtype))

    # ------------------------------------------------------------------ features

    def features(self) -> frozenset[str]:
        """What this configuration exercises, in the vocabulary of :data:`FEATURES`.

        Examples
        --------
        >>> from convgrad.testing import ConvConfig
        >>> sorted(ConvConfig.from_shapes((2, 1, 7), (1, 1, 2), stride=2, bias=False).features())
        ['1-d', 'batch>1', 'even kernel', 'kernel>1', 'stride remainder', 'stride>1']
        """
        out = {f"{self.d}-d"}
        if not self.batched:
            out.add("unbatched")
        if self.n > 1:
            out.add("batch>1")
        if self.c_in // self.groups > 1:
            out.add("in_channels>1")
        if self.c_out // self.groups > 1:
            out.add("out_channels>1")
        if self.c_in // self.groups > 1 and self.c_out // self.groups > 1:
            out.add("channels>1")
        if self.groups > 1:
            out.add("groups>1")
        if any(s > 1 for s in self.stride_t):
            out.add("stride>1")
        if not self.transposed and any(self.remainder):
            out.add("stride remainder")
        if any(dl > 1 for dl in self.dilation_t):
            out.add("dilation>1")
        if any(self.lo) or any(self.hi):
            out.add("padding>0")
        if tuple(self.lo) != tuple(self.hi):
            out.add("asymmetric padding")
        if any(k > 1 for k in self.kernel):
            out.add("kernel>1")
        if any(k % 2 == 0 for k in self.kernel):
            out.add("even kernel")
        if self.padding_mode != "zeros":
            out.add(f"padding_mode={self.padding_mode}")
        if self.transposed:
            out.add("transposed")
            if any(self.output_padding_t):
                out.add("output_padding>0")
        if self.bias:
            out.add("bias")
        return frozenset(out)

    # ------------------------------------------------------------------ printing

    def __str__(self) -> str:
        parts = [f"x: {self.input_shape}", f"w: {self.weight_shape}"]
        if self.bias:
            parts.append(f"b: {self.bias_shape}")
        parts += [f"{key}={value!r}" for key, value in self.nondefault_kwargs().items()]
        if self.dtype != "float64":
            parts.append(f"dtype={self.dtype}")
        return f"{self.operation}({', '.join(parts)})"

    def __repr__(self) -> str:
        parts = [repr(self.input_shape), repr(self.weight_shape)]
        if not self.bias:
            parts.append("bias=False")
        kw = self.nondefault_kwargs()
        output_padding = kw.pop("output_padding", None)
        parts += [f"{key}={value!r}" for key, value in kw.items()]
        if self.transposed:
            parts.append("transposed=True")
        if output_padding is not None:
            parts.append(f"output_padding={output_padding!r}")
        if self.dtype != "float64":
            parts.append(f"dtype={self.dtype!r}")
        return f"ConvConfig.from_shapes({', '.join(parts)})"


FEATURES = {
    "batch>1": "more than one sample (N > 1)",
    "unbatched": "an unbatched input (C, *S)",
    "in_channels>1": "more than one input channel per group",
    "out_channels>1": "more than one output channel per group",
    "channels>1": "more than one input and more than one output channel per group",
    "groups>1": "grouped convolution (groups > 1)",
    "stride>1": "stride > 1",
    "stride remainder": "(S + l + h − δ(K − 1) − 1) mod s ≠ 0: padded rows that no window reaches",
    "dilation>1": "dilation > 1",
    "padding>0": "padding",
    "asymmetric padding": "different padding before and after",
    "kernel>1": "a kernel larger than 1",
    "even kernel": "an even kernel size",
    "padding_mode=reflect": "reflect padding",
    "padding_mode=replicate": "replicate padding",
    "padding_mode=circular": "circular padding",
    "transposed": "a transposed convolution",
    "output_padding>0": "a transposed convolution's output_padding",
    "bias": "a bias in the forward pass",
    "1-d": "one spatial dimension",
    "2-d": "two spatial dimensions",
    "3-d": "three spatial dimensions",
}
"""Every feature name :meth:`ConvConfig.features` can report, with what it means."""


def _normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------------------- strategies


@dataclass(frozen=True)
class _Space:
    """The bounds of one strategy (see :func:`conv_configs` and :func:`configs`)."""

    dims: tuple[int, ...]
    modes: tuple[str, ...]
    forms: tuple[str, ...]
    max_kernel: int
    max_stride: int
    max_dilation: int
    max_groups: int
    max_channels_per_group: int
    max_channels: Optional[int]
    max_batch: int
    max_extra: Optional[int]
    max_size: Optional[int]
    allow_unbatched: bool
    bias: tuple[bool, ...]
    transposed: bool
    dtypes: tuple[str, ...]


def _int_or_tuple(draw: DrawFn, values: tuple[int, ...]) -> IntOrTuple:
    from hypothesis import strategies as st

    if len(set(values)) == 1 and not draw(st.booleans()):  # shrinks to the plain int
        return values[0]
    return values


class _Dim(NamedTuple):
    """One spatial dimension of a drawn configuration."""

    kernel: int
    stride: int
    dilation: int
    lo: int
    hi: int
    size: int
    output_padding: int = 0


def _draw_dim(draw: DrawFn, space: _Space, mode: str, form: str, p: int, cap: int) -> _Dim:
    """Kernel, stride, dilation, padding and input size of one dimension of a forward convolution."""
    from hypothesis import strategies as st

    max_kernel = space.max_kernel if space.max_size is None else min(space.max_kernel, space.max_size)
    k = draw(st.integers(1, max_kernel))
    s = 1 if form == "same" else draw(st.integers(1, space.max_stride))
    top = space.max_dilation
    if space.max_size is not None and k > 1:  # keep the dilated kernel within max_size
        top = max(1, min(top, (space.max_size - 1) // (k - 1)))
    dl = draw(st.integers(1, top))
    if form == "int":
        lo = hi = p
    elif form == "tuple":
        lo = hi = draw(st.integers(0, cap))
    elif form == "pairs":
        lo, hi = draw(st.integers(0, cap)), draw(st.integers(0, cap))
    elif form == "valid":
        lo = hi = 0
    else:  # PyTorch's 'same': dilation·(k − 1) in total, the odd one after
        lo, hi = dl * (k - 1) // 2, dl * (k - 1) - dl * (k - 1) // 2
    minimum = max(1, dl * (k - 1) + 1 - lo - hi)
    if mode == "reflect":
        minimum = max(minimum, lo + 1, hi + 1)
    elif mode == "circular":
        minimum = max(minimum, lo, hi)
    extra = space.max_extra if space.max_size is None else max(0, space.max_size - minimum)
    return _Dim(k, s, dl, lo, hi, minimum + draw(st.integers(0, extra or 0)))


def _draw_transposed_dim(draw: DrawFn, space: _Space, form: str) -> _Dim:
    """Kernel, stride, dilation, input size, output padding and padding of one transposed dimension."""
    from hypothesis import strategies as st

    max_kernel = space.max_kernel if space.max_size is None else min(space.max_kernel, space.max_size)
    k = draw(st.integers(1, max_kernel))
    s = draw(st.integers(1, space.max_stride))
    dl = draw(st.integers(1, space.max_dilation))
    size = draw(st.integers(1, space.max_size if space.max_size is not None else 1 + (space.max_extra or 0)))
    a = draw(st.integers(0, max(s, dl) - 1))
    room = (size - 1) * s + dl * (k - 1) + a  # the output size is room + 1 - lo - hi >= 1
    if form == "tuple":
        lo = hi = draw(st.integers(0, min(_MAX_PAD, room // 2)))
    elif form == "pairs":
        lo = draw(st.integers(0, min(_MAX_PAD, room)))
        hi = draw(st.integers(0, min(_MAX_PAD, room - lo)))
    else:
        lo = hi = 0  # "int": drawn once for every dimension, below
    return _Dim(k, s, dl, lo, hi, size, a)


def _draw_config(draw: DrawFn, space: _Space) -> ConvConfig:
    """One configuration; each spatial dimension is one element of a list, so that shrinking can drop it."""
    from hypothesis import strategies as st

    groups = draw(st.integers(1, space.max_groups))
    per_group = space.max_channels_per_group
    if space.max_channels is not None:
        per_group = min(per_group, max(1, space.max_channels // groups))
    c_in = groups * draw(st.integers(1, per_group))
    c_out = groups * draw(st.integers(1, per_group))
    shortest, longest = min(space.dims), max(space.dims)
    if space.transposed:
        forms = [f for f in space.forms if f in ("int", "tuple", "pairs")] or ["int"]
        form = draw(st.sampled_from(forms))
        one = st.composite(lambda draw_: _draw_transposed_dim(draw_, space, form))()
        dims = draw(st.lists(one, min_size=shortest, max_size=longest).filter(lambda ds: len(ds) in space.dims))
        if form == "int":
            room = min((dm.size - 1) * dm.stride + dm.dilation * (dm.kernel - 1) + dm.output_padding for dm in dims)
            p = draw(st.integers(0, min(_MAX_PAD, room // 2)))
            dims = [dm._replace(lo=p, hi=p) for dm in dims]
        mode = "zeros"
    else:
        mode = draw(st.sampled_from(space.modes))
        form = draw(st.sampled_from(space.forms))
        cap = _MAX_PAD
        if space.max_size is not None and mode == "reflect":
            cap = min(cap, space.max_size - 1)
        elif space.max_size is not None and mode == "circular":
            cap = min(cap, space.max_size)
        p = draw(st.integers(0, cap)) if form == "int" else 0
        one = st.composite(lambda draw_: _draw_dim(draw_, space, mode, form, p, cap))()
        dims = draw(st.lists(one, min_size=shortest, max_size=longest).filter(lambda ds: len(ds) in space.dims))
    d = len(dims)
    lo = tuple(dm.lo for dm in dims)
    hi = tuple(dm.hi for dm in dims)
    padding: Any
    if form == "int":
        padding = lo[0]
    elif form == "tuple":
        padding = lo
    elif form == "pairs":
        padding = tuple(zip(lo, hi))
    else:
        padding = form
    batched = draw(st.booleans()) if space.allow_unbatched else True
    n = draw(st.integers(1, space.max_batch)) if batched else 1
    stride = _int_or_tuple(draw, tuple(dm.stride for dm in dims))
    dilation = _int_or_tuple(draw, tuple(dm.dilation for dm in dims))
    output_padding = _int_or_tuple(draw, tuple(dm.output_padding for dm in dims)) if space.transposed else 0
    bias = draw(st.sampled_from(space.bias))
    dtype = draw(st.sampled_from(space.dtypes))
    return ConvConfig(d, n, batched, groups, c_in, c_out, tuple(dm.kernel for dm in dims),
                      tuple(dm.size for dm in dims), stride, dilation, padding, lo, hi, mode, bias, space.transposed,
                      output_padding, dtype)


def _strategy(space: _Space) -> SearchStrategy[ConvConfig]:
    require_hypothesis()
    from hypothesis import strategies as st

    @st.composite
    def draw_config(draw: DrawFn) -> ConvConfig:
        return _draw_config(draw, space)

    return draw_config()


def _choices(value: Union[str, Sequence[str]], known: Sequence[str], name: str) -> tuple[str, ...]:
    values = (value,) if isinstance(value, str) else tuple(value)
    if not values:
        raise ValueError(f"{name} must name at least one of {tuple(known)}")
    for v in values:
        if v not in known:
            raise ValueError(f"{name} must be among {tuple(known)}; got {v!r}")
    return values


def _positive(value: object, name: str, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def configs(
    ndim: Union[int, Sequence[int]] = (1, 2, 3),
    *,
    transposed: bool = False,
    max_batch: int = 3,
    max_channels: int = 4,
    max_size: int = 9,
    groups: bool = True,
    stride: bool = True,
    dilation: bool = True,
    padding: Union[str, Sequence[str]] = PADDING_FORMS,
    padding_modes: Union[str, Sequence[str]] = ("zeros",),
    dtype: Union[str, Sequence[str]] = "float64",
    bias: Optional[bool] = None,
    unbatched: bool = False,
    max_kernel: int = 3,
    max_stride: int = 3,
    max_dilation: int = 3,
) -> SearchStrategy[ConvConfig]:
    """A Hypothesis strategy of valid :class:`ConvConfig` (output size ≥ 1 in every dimension).

    Narrow it to the part of the space an implementation supports; every
    draw shrinks towards one sample, one channel, no groups, kernel 1,
    stride 1, dilation 1, no padding and no bias.

    Parameters
    ----------
    ndim : int or tuple of int
        Numbers of spatial dimensions to draw from.
    transposed : bool
        Transposed convolutions (``conv_transpose``) instead.
    max_batch : int
        Largest batch.
    max_channels : int
        Largest number of input or output channels (groups included).
    max_size : int
        Largest spatial input size.
    groups, stride, dilation : bool
        Whether to draw groups, strides and dilations above 1.
    padding : str or tuple of str
        Among :data:`PADDING_FORMS`: ``"int"`` (symmetric, an int or one
        per dimension), ``"asymmetric"`` (``(before, after)`` pairs),
        ``"same"`` (stride 1), ``"valid"``. Transposed: ``"int"`` and
        ``"asymmetric"`` only.
    padding_modes : str or tuple of str
        Among :data:`MODES` (``"zeros"`` only when ``transposed``).
    dtype : str or tuple of str
        Among :data:`DTYPES`.
    bias : bool, optional
        Always (``True``), never (``False``) or either (``None``).
    unbatched : bool
        Also draw unbatched inputs ``(C, *S)``.
    max_kernel, max_stride, max_dilation : int
        Largest kernel size, stride and dilation.

    Returns
    -------
    hypothesis.strategies.SearchStrategy of ConvConfig

    Raises
    ------
    ImportError
        Without Hypothesis.
    ValueError
        For bounds or names outside the space.

    Examples
    --------
    >>> from hypothesis import given
    >>> from convgrad import testing
    >>> @given(testing.configs(ndim=2, groups=False, stride=False))
    ... def test_output_shape(config):
    ...     assert len(config.output_shape) == 4
    >>> test_output_shape()
    """
    dims = (ndim,) if isinstance(ndim, (int, np.integer)) else tuple(ndim)
    if not dims:
        raise ValueError("ndim must name at least one number of spatial dimensions")
    for v in dims:
        _positive(v, "ndim")
    forms = tuple(f for name in _choices(padding, tuple(_FORM_ALIASES), "padding") for f in _FORM_ALIASES[name])
    modes = _choices(padding_modes, MODES, "padding_modes")
    if transposed and modes != ("zeros",):
        raise ValueError(f"a transposed convolution pads with zeros only; got padding_modes={modes}")
    if transposed and not any(f in ("int", "tuple", "pairs") for f in forms):
        raise ValueError(f"a transposed convolution takes int or asymmetric padding; got padding={padding!r}")
    max_channels = _positive(max_channels, "max_channels")
    max_size = _positive(max_size, "max_size")
    space = _Space(
        dims=tuple(int(v) for v in dims),
        modes=modes,
        forms=forms,
        max_kernel=_positive(max_kernel, "max_kernel"),
        max_stride=_positive(max_stride, "max_stride") if stride else 1,
        max_dilation=_positive(max_dilation, "max_dilation") if dilation else 1,
        max_groups=max_channels if groups else 1,
        max_channels_per_group=max_channels,
        max_channels=max_channels,
        max_batch=_positive(max_batch, "max_batch"),
        max_extra=None,
        max_size=max_size,
        allow_unbatched=bool(unbatched),
        bias=(False, True) if bias is None else (bool(bias),),
        transposed=bool(transposed),
        dtypes=_choices(dtype, DTYPES, "dtype"),
    )
    return _strategy(space)


def conv_configs(
    *,
    dims: tuple[int, ...] = (1, 2, 3),
    modes: tuple[str, ...] = MODES,
    max_kernel: int = 3,
    max_stride: int = 3,
    max_dilation: int = 3,
    max_groups: int = 3,
    max_channels_per_group: int = 2,
    max_batch: int = 3,
    max_extra: int = 5,
    allow_unbatched: bool = True,
    allow_strings: bool = True,
) -> SearchStrategy[ConvConfig]:
    """The fine-grained strategy convgrad's own tests draw from (every padding form and mode, with a bias).

    Sizes are drawn as the smallest valid input size plus up to
    ``max_extra``; channels per group up to ``max_channels_per_group``.
    ``allow_strings`` adds the ``"valid"`` and ``"same"`` padding forms.

    Returns
    -------
    hypothesis.strategies.SearchStrategy of ConvConfig

    Examples
    --------
    >>> from hypothesis import given
    >>> from convgrad.testing import conv_configs
    >>> @given(conv_configs(dims=(1,), modes=("reflect",), allow_strings=False))
    ... def test_reflect(config):
    ...     assert config.padding_mode == "reflect" and config.d == 1
    >>> test_reflect()
    """
    forms = ("int", "tuple", "pairs") + (("valid", "same") if allow_strings else ())
    space = _Space(
        dims=tuple(dims), modes=tuple(modes), forms=forms, max_kernel=max_kernel, max_stride=max_stride,
        max_dilation=max_dilation, max_groups=max_groups, max_channels_per_group=max_channels_per_group,
        max_channels=None, max_batch=max_batch, max_extra=max_extra, max_size=None,
        allow_unbatched=allow_unbatched, bias=(True,), transposed=False, dtypes=("float64",),
    )
    return _strategy(space)
