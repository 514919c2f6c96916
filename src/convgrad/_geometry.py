"""The checked geometry of a convolution, and the one place its size formulas live.

Per spatial dimension, with input size ``S``, padding ``(l, h)``, kernel ``K``,
stride ``s`` and dilation ``δ``:

* padded size ``P = S + l + h``; kernel span ``κ = δ(K − 1) + 1``;
* output size ``Q = ⌊(P − κ) / s⌋ + 1`` (:func:`out_size`; must be ≥ 1);
* a transposed convolution's output size ``(S − 1)·s − l − h + κ + a`` with
  output padding ``a`` (:func:`transposed_size`).

:func:`conv_geometry` and :func:`transpose_geometry` check a call's shapes and
geometry arguments and return a :class:`Geometry`; a transposed convolution is
described by the geometry of the forward convolution it is the adjoint of.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ._arguments import (
    Shape,
    check_int,
    check_padding_mode,
    normalize_padding,
    normalize_shape,
    normalize_tuple,
    prod,
)

__all__ = ["Geometry", "conv_geometry", "out_size", "prod", "transpose_geometry", "transposed_size"]


def out_size(size: int, kernel: int, stride: int = 1, dilation: int = 1, lo: int = 0, hi: int = 0,
             input_dilation: int = 1) -> int:
    """``Q = ⌊(P − δ(K − 1) − 1) / s⌋ + 1`` with ``P = (S − 1)·a + 1 + l + h``: outputs along one dimension.

    A result below 1 means that no window fits.

    Examples
    --------
    >>> out_size(224, 7, stride=2, lo=3, hi=3)
    112
    """
    return (dilated_size(size, input_dilation) + lo + hi - dilation * (kernel - 1) - 1) // stride + 1


def dilated_size(size: int, input_dilation: int = 1) -> int:
    """``(S − 1)·a + 1``: the length of an input with ``a − 1`` zeros inserted between its entries."""
    return (size - 1) * input_dilation + 1


def transposed_size(size: int, kernel: int, stride: int = 1, dilation: int = 1, lo: int = 0, hi: int = 0,
                    output_padding: int = 0) -> int:
    """``(S − 1)·s − l − h + δ(K − 1) + a + 1``: a transposed convolution's output along one dimension.

    Examples
    --------
    >>> transposed_size(112, 7, stride=2, lo=3, hi=3, output_padding=1)
    224
    """
    return (size - 1) * stride - lo - hi + dilation * (kernel - 1) + output_padding + 1


@dataclass(frozen=True)
class Geometry:
    """The checked geometry of one convolution ``y = conv(x, w)``.

    All tuples have one entry per spatial dimension. For a transposed
    convolution this is the geometry of the forward convolution it is the
    adjoint of (its ``in_size`` is the transposed output size).
    """

    batched: bool
    n: int
    c_in: int
    c_out: int
    groups: int
    in_size: Shape
    kernel: Shape
    out_size: Shape
    stride: Shape
    dilation: Shape
    pad_lo: Shape
    pad_hi: Shape
    padding_mode: str
    input_dilation: Shape = ()
    """``a``: the input is read with ``a − 1`` zeros between its entries (JAX's ``lhs_dilation``); ``()`` means 1."""

    def __post_init__(self) -> None:
        if not self.input_dilation:
            object.__setattr__(self, "input_dilation", (1,) * len(self.kernel))

    def __hash__(self) -> int:
        """Hashed once (a geometry keys the route and plan caches on every call)."""
        try:
            return self.__dict__["_hash"]  # type: ignore[no-any-return]
        except KeyError:
            h = hash(tuple(getattr(self, f) for f in self.__dataclass_fields__))
            object.__setattr__(self, "_hash", h)
            return h

    @cached_property
    def d(self) -> int:
        """Number of spatial dimensions."""
        return len(self.kernel)

    @cached_property
    def padded_size(self) -> Shape:
        """``P = (S − 1)·a + 1 + l + h`` per dimension (``S + l + h`` without input dilation)."""
        return tuple(
            dilated_size(s, a) + lo + hi for s, a, lo, hi in zip(self.in_size, self.input_dilation, self.pad_lo,
                                                                  self.pad_hi)
        )

    @cached_property
    def span(self) -> Shape:
        """Dilated kernel size ``δ(K − 1) + 1`` per dimension."""
        return tuple(dl * (k - 1) + 1 for k, dl in zip(self.kernel, self.dilation))

    @cached_property
    def input_shape(self) -> Shape:
        """Full shape of ``x`` (batched or not, as given)."""
        lead = (self.n, self.c_in) if self.batched else (self.c_in,)
        return lead + self.in_size

    @cached_property
    def weight_shape(self) -> Shape:
        """Shape of ``w``: ``(O, C / groups, *K)``."""
        return (self.c_out, self.c_in // self.groups) + self.kernel

    @cached_property
    def output_shape(self) -> Shape:
        """Full shape of ``y`` (batched or not, as given)."""
        lead = (self.n, self.c_out) if self.batched else (self.c_out,)
        return lead + self.out_size

    @cached_property
    def has_padding(self) -> bool:
        """Whether any side of any dimension is padded (or cropped)."""
        return any(self.pad_lo) or any(self.pad_hi)

    @cached_property
    def pads_input(self) -> bool:
        """Whether the padding map is more than the identity: padding, cropping or input dilation."""
        return self.has_padding or self.dilates_input

    @cached_property
    def dilates_input(self) -> bool:
        """Whether the input is read with zeros inserted between its entries (some input dilation above 1)."""
        return any(a != 1 for a in self.input_dilation)

    @cached_property
    def plain_padding(self) -> bool:
        """Padding without cropping or input dilation: the input sits unchanged inside the padded grid."""
        return min(self.pad_lo + self.pad_hi, default=0) >= 0 and not self.dilates_input

    @cached_property
    def full_size(self) -> Shape:
        """``P − κ + 1``: the output size at stride 1."""
        return tuple(p - sp + 1 for p, sp in zip(self.padded_size, self.span))


# ----------------------------------------------------------------------------- the geometry


def _spatial_dims(w_shape: Shape, w_name: str) -> int:
    if len(w_shape) < 3:
        raise ValueError(
            f"{w_name} must have at least 3 dimensions (out_channels, in_channels / groups, *kernel); "
            f"got shape {w_shape}"
        )
    return len(w_shape) - 2


def _split_input(x_shape: Shape, d: int, x_name: str, w_name: str) -> tuple[bool, int, int, Shape]:
    if len(x_shape) == d + 2:
        return True, x_shape[0], x_shape[1], x_shape[2:]
    if len(x_shape) == d + 1:
        return False, 1, x_shape[0], x_shape[1:]
    raise ValueError(
        f"{x_name} must have {d + 2} dimensions (batch, channels, {d} spatial) or {d + 1} (unbatched) "
        f"to match {w_name} with {d} spatial dimensions; got {x_name} with {len(x_shape)} dimensions, "
        f"shape {x_shape}"
    )


def _axis(name: str, i: int) -> str:
    """``x.shape[1]`` for an array argument, ``input_shape[1]`` for a shape argument."""
    return f"{name}[{i}]" if name.endswith("_shape") else f"{name}.shape[{i}]"


def _check_nonempty(sizes: Shape, full_shape: Shape, name: str, what: str) -> None:
    if any(s < 1 for s in sizes):
        raise ValueError(f"{what} of {name} must all be >= 1; got {name} shape {full_shape}")


def conv_geometry(
    x_shape: Shape,
    w_shape: Shape,
    *,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
    groups: object = 1,
    padding_mode: object = "zeros",
    input_dilation: object = 1,
    x_name: str = "x",
    w_name: str = "w",
) -> Geometry:
    """Check a forward convolution's arguments and return its geometry.

    ``padding`` pairs may be negative (the input is cropped) and
    ``input_dilation`` may exceed 1 (zeros between the input's entries, JAX's
    ``lhs_dilation``), both with ``padding_mode="zeros"`` only.
    """
    d = _spatial_dims(w_shape, w_name)
    batched, n, c_in, in_size = _split_input(x_shape, d, x_name, w_name)
    c_out, c_per_group, kernel = w_shape[0], w_shape[1], w_shape[2:]
    _check_nonempty(w_shape, w_shape, w_name, "the dimensions")
    _check_nonempty((c_in,) + in_size, x_shape, x_name, "the channel and spatial sizes")
    stride_t = normalize_tuple(stride, d, "stride", 1)
    dilation_t = normalize_tuple(dilation, d, "dilation", 1)
    g = check_int(groups, "groups", 1)
    mode = check_padding_mode(padding_mode)
    lo, hi = normalize_padding(padding, d, kernel, dilation_t, stride_t)
    a_t = normalize_tuple(input_dilation, d, "input_dilation", 1)
    _check_zeros_only(mode, lo, hi, a_t)
    cin_axis = _axis(x_name, 1 if batched else 0)
    if c_in % g:
        raise ValueError(f"groups={g} does not divide in_channels={c_in} ({cin_axis})")
    if c_out % g:
        raise ValueError(f"groups={g} does not divide out_channels={c_out} ({_axis(w_name, 0)})")
    if c_per_group * g != c_in:
        raise ValueError(
            f"{_axis(w_name, 1)} ({c_per_group}) must equal in_channels / groups "
            f"({cin_axis} = {c_in}, groups = {g}: {c_in // g})"
        )
    check_padding_mode_limits(mode, in_size, lo, hi)
    sizes = []
    for i, (s, k, st, dl, pl, ph, a) in enumerate(zip(in_size, kernel, stride_t, dilation_t, lo, hi, a_t)):
        q = out_size(s, k, st, dl, pl, ph, a)
        if q < 1:
            padded, span = dilated_size(s, a) + pl + ph, dl * (k - 1) + 1
            size = f"input {s}" if a == 1 else f"input {s} dilated by {a} to {dilated_size(s, a)}"
            raise ValueError(
                f"output size would be < 1 in spatial dimension {i}: the padded input size {padded} "
                f"({size} + padding {pl} + {ph}) is smaller than the dilated kernel size {span} "
                f"(dilation {dl} * (kernel {k} - 1) + 1)"
            )
        sizes.append(q)
    return Geometry(
        batched=batched,
        n=n,
        c_in=c_in,
        c_out=c_out,
        groups=g,
        in_size=in_size,
        kernel=kernel,
        out_size=tuple(sizes),
        stride=stride_t,
        dilation=dilation_t,
        pad_lo=lo,
        pad_hi=hi,
        padding_mode=mode,
        input_dilation=a_t,
    )


def _check_zeros_only(mode: str, lo: Shape, hi: Shape, input_dilation: Shape) -> None:
    """Cropping (negative padding) and input dilation are defined for zero padding only."""
    if mode == "zeros":
        return
    if min(lo + hi) < 0:
        raise ValueError(
            f"negative padding (a crop) needs padding_mode='zeros'; got padding_mode={mode!r} with padding "
            f"{tuple(zip(lo, hi))}"
        )
    if any(a != 1 for a in input_dilation):
        raise ValueError(f"input_dilation needs padding_mode='zeros'; got padding_mode={mode!r}")


def check_padding_mode_limits(mode: str, in_size: Shape, lo: Shape, hi: Shape) -> None:
    """PyTorch's limits on non-zero padding modes, as errors."""
    for i, (s, pl, ph) in enumerate(zip(in_size, lo, hi)):
        if mode == "reflect" and max(pl, ph) >= s:
            raise ValueError(
                f"padding_mode='reflect' needs padding smaller than the input size: spatial dimension {i} "
                f"has size {s} and padding ({pl}, {ph})"
            )
        if mode == "circular" and max(pl, ph) > s:
            raise ValueError(
                f"padding_mode='circular' needs padding at most the input size: spatial dimension {i} "
                f"has size {s} and padding ({pl}, {ph})"
            )


def transpose_geometry(
    x_shape: Shape,
    w_shape: Shape,
    *,
    stride: object = 1,
    padding: object = 0,
    output_padding: object = 0,
    dilation: object = 1,
    groups: object = 1,
    output_shape: object = None,
    x_name: str = "x",
    w_name: str = "w",
) -> Geometry:
    """Check a transposed convolution's arguments.

    Returns the geometry of the forward convolution whose input gradient the
    transposed convolution is: its input is the transposed output, its output
    is the transposed input, its weight is ``w`` as given. ``padding`` pairs
    may be negative (the output grows), and ``output_padding`` may be any
    size ``>= 0``; an ``output_shape`` must be one PyTorch's ``output_size``
    accepts.
    """
    d = _spatial_dims(w_shape, w_name)
    batched, n, c_in, in_size = _split_input(x_shape, d, x_name, w_name)
    _check_nonempty(w_shape, w_shape, w_name, "the dimensions")
    _check_nonempty((c_in,) + in_size, x_shape, x_name, "the channel and spatial sizes")
    w_in, c_out_per_group, kernel = w_shape[0], w_shape[1], w_shape[2:]
    stride_t = normalize_tuple(stride, d, "stride", 1)
    dilation_t = normalize_tuple(dilation, d, "dilation", 1)
    g = check_int(groups, "groups", 1)
    lo, hi = normalize_padding(padding, d, kernel, dilation_t, stride_t, allow_strings=False)
    cin_axis = _axis(x_name, 1 if batched else 0)
    if w_in != c_in:
        raise ValueError(
            f"{_axis(w_name, 0)} ({w_in}) must equal in_channels ({cin_axis} = {c_in}) for a transposed "
            f"convolution, whose weight is (in_channels, out_channels / groups, *kernel)"
        )
    if c_in % g:
        raise ValueError(f"groups={g} does not divide in_channels={c_in} ({cin_axis})")
    base = tuple(
        transposed_size(s, k, st, dl, pl, ph)
        for s, st, pl, ph, dl, k in zip(in_size, stride_t, lo, hi, dilation_t, kernel)
    )
    limits = tuple(max(st, dl) for st, dl in zip(stride_t, dilation_t))
    if output_shape is not None:
        if output_padding not in (0, None) and normalize_tuple(output_padding, d, "output_padding", 0) != (0,) * d:
            raise ValueError("give either output_padding or output_shape, not both")
        given = target = normalize_shape(output_shape, "output_shape")
        if len(target) == d + 2 or (len(target) == d + 1 and not batched):
            target = target[-d:]
        elif len(target) != d:
            raise ValueError(
                f"output_shape must hold the {d} spatial sizes or the full output shape; got {target}"
            )
        out_pad = []
        for i, (t, b, lim) in enumerate(zip(target, base, limits)):
            if not b <= t <= b + lim - 1:
                raise ValueError(
                    f"output_shape {given} is impossible in spatial dimension {i}: "
                    f"valid sizes range from {b} to {b + lim - 1}; got {t}"
                )
            out_pad.append(t - b)
        out_pad_t = tuple(out_pad)
    else:
        # Any output padding >= 0 (as lax.conv_transpose allows): beyond max(stride, dilation) - 1 the
        # extra rows are reached by no window and come out as the bias alone.
        out_pad_t = normalize_tuple(0 if output_padding is None else output_padding, d, "output_padding", 0)
    out_size = tuple(b + a for b, a in zip(base, out_pad_t))
    for i, size in enumerate(out_size):
        if size < 1:
            raise ValueError(
                f"output size would be {size} < 1 in spatial dimension {i}: (input {in_size[i]} - 1) * "
                f"stride {stride_t[i]} - padding {lo[i]} - {hi[i]} + dilation {dilation_t[i]} * "
                f"(kernel {kernel[i]} - 1) + output_padding {out_pad_t[i]} + 1"
            )
    return Geometry(
        batched=batched,
        n=n,
        c_in=c_out_per_group * g,
        c_out=c_in,
        groups=g,
        in_size=out_size,
        kernel=kernel,
        out_size=in_size,
        stride=stride_t,
        dilation=dilation_t,
        pad_lo=lo,
        pad_hi=hi,
        padding_mode="zeros",
    )


