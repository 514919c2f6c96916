"""A smaller configuration of the same geometry class, for checking and drawing large configurations.

Two configurations are in the same geometry class when they share the kernel,
stride, dilation, padding, padding mode, groups and, per spatial dimension,
the remainder ``r = S + l + h − (Q − 1)·s − δ·(K − 1) − 1`` (for a forward
convolution ``(S + l + h − δ·(K − 1) − 1) mod s``; for a transposed one its
``output_padding``). Whether each group has one channel or more, and whether
a group has fewer, as many or more output channels than input channels, is
kept too. Gradient recipes are the same code across a class up to the sizes
they spell out, so a recipe verified on a small member of the class is
verified for the class.
"""

from __future__ import annotations

import dataclasses

from ._arguments import Shape
from ._geometry import Geometry
from ._recipes import Numbers

SMALL_OUTPUTS = 3
"""Output positions per spatial dimension of the smaller configuration (fewer if the original has fewer)."""

SMALL_CHANNELS = 2
"""Channels per group of the smaller configuration (one more on the side that has more)."""


def _fewer_channels(c_a: int, c_b: int, cap: int) -> tuple[int, int]:
    """At most ``cap`` (or ``cap + 1``) channels per group on each side, keeping their order (<, =, >)."""
    a, b = min(c_a, cap), min(c_b, cap)
    if c_a < c_b and a >= b:
        b = a + 1
    elif c_a > c_b and b >= a:
        a = b + 1
    return a, b


def _smallest_input(padding_mode: str, lo: int, hi: int) -> int:
    """The smallest input size the padding mode allows with padding ``(lo, hi)`` (PyTorch's limits)."""
    if padding_mode == "reflect":
        return max(lo, hi) + 1
    if padding_mode == "circular":
        return max(lo, hi, 1)
    return 1


def small_geometry(geom: Geometry, *, outputs: int = SMALL_OUTPUTS, channels: int = SMALL_CHANNELS) -> Geometry:
    """A configuration of ``geom``'s geometry class with few channels and positions (the batch is kept).

    Per spatial dimension the output size becomes ``min(Q, outputs)``, or the
    smallest size for which the input is still at least 1 (and large enough
    for reflect and circular padding); the input size follows from the
    remainder, so it never exceeds the original one.
    """
    groups = geom.groups
    c_a, c_b = _fewer_channels(geom.c_in // groups, geom.c_out // groups, channels)
    in_size: list[int] = []
    out_size: list[int] = []
    for q, st, sp, lo, hi, r in zip(geom.out_size, geom.stride, geom.span, geom.pad_lo, geom.pad_hi,
                                    Numbers(geom).remainder):
        need = _smallest_input(geom.padding_mode, lo, hi)
        fewest = max(1, -(-(need - sp - r + lo + hi) // st) + 1)  # smallest Q' with an input of at least `need`
        q_small = min(q, max(min(q, outputs), fewest))
        out_size.append(q_small)
        in_size.append((q_small - 1) * st + sp + r - lo - hi)
    return dataclasses.replace(
        geom, c_in=groups * c_a, c_out=groups * c_b, in_size=tuple(in_size), out_size=tuple(out_size)
    )


def operation_shapes(geom: Geometry, transposed: bool) -> tuple[Shape, Shape, Shape]:
    """``(x, w, y)`` shapes of the operation: for a transposed convolution, ``x`` is ``A``'s output."""
    if transposed:
        return (geom.n, geom.c_out) + geom.out_size, geom.weight_shape, (geom.n, geom.c_in) + geom.in_size
    return (geom.n, geom.c_in) + geom.in_size, geom.weight_shape, (geom.n, geom.c_out) + geom.out_size


def shapes_text(geom: Geometry, transposed: bool) -> str:
    """``x (1, 2, 7, 7) * w (2, 2, 3, 3) -> y (1, 2, 5, 5)``."""
    x, w, y = operation_shapes(geom, transposed)
    return f"x {x} * w {w} -> y {y}"


def class_text(transposed: bool) -> str:
    """What a smaller configuration shares with the original, in words."""
    remainder = "output_padding" if transposed else "remainder (S + l + h − δ·(K − 1) − 1) mod s"
    return f"the same kernel, stride, dilation, padding, padding mode, groups and {remainder}"
