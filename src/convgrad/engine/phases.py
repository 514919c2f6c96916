"""Input dilation without the inserted zeros: a polyphase split into ordinary convolutions.

With input dilation ``a`` the window map reads the zero-inserted, padded input
``x_a[p] = x[p / a]`` where ``a`` divides ``p`` (and ``0`` elsewhere) at
``p = q·s + k·δ − l``. Materialising ``x_a`` and running an ordinary
convolution would spend ``1 − 1/a`` of every product on an inserted zero.
Instead, along each dimension, the outputs split into ``a' = a / gcd(a, s)``
*phases* ``q = r + a'·m`` (``r`` in ``[0, a')``): within one phase the taps
that land on input entries are the same for every ``m``, namely
``k = k₀ + t·κ`` with ``κ = a / gcd(a, δ)`` and ``k₀`` the one solution of
``k₀·δ ≡ l − r·s (mod a)`` in ``[0, κ)`` (none when ``gcd(a, δ)`` does not
divide ``l − r·s``: that phase reads only zeros). They read

    x[m·s' + t·δ' + o],   s' = s / gcd(a, s),  δ' = δ / gcd(a, δ),  o = (r·s + k₀·δ − l) / a,

an ordinary convolution of the *undilated* input with the kernel's taps
``k₀::κ``, stride ``s'``, dilation ``δ'`` and padding ``(−o, ·)`` (a crop
where ``o > 0``), whose outputs are ``y[r::a']``. In ``d`` dimensions a phase
is one choice of ``r`` per dimension. Every product the phases compute is one
the definition has on an input entry or on a zero of the padding, never on an
inserted zero, and the whole set is the engine's ordinary routes on smaller
geometries:

* forward: ``y[phase outputs] = conv(x, w[phase taps])``;
* input gradient: ``gx = Σ_phases input_grad(g[phase outputs], w[phase taps])``;
* weight gradient: ``gw[phase taps] += weight_grad(g[phase outputs], x)``.

A phase still multiplies the zero padding where it lies on the input's
lattice (positions ``l + i·a`` for ``i`` outside ``[0, S)``), as the padded
convolution of the undilated input does, and skips the padding between
those positions with the inserted zeros. So a NaN or an infinity in the
kernel spreads through an output only where its tap meets an input entry or
lattice padding: XLA's placement (XLA multiplies no zeros at all) when the
padding on each side is less than ``a`` (no padding on the lattice), and
PyTorch's convention (padding zeros are multiplied) on the lattice otherwise.

Examples
--------
One dimension, ``a = 2``, ``s = 1``, ``K = 3``, ``l = 2``: even outputs use taps
0 and 2, odd outputs tap 1.

>>> from convgrad._geometry import conv_geometry
>>> geom = conv_geometry((1, 1, 4), (1, 1, 3), padding=2, input_dilation=2)
>>> [(p.outputs, p.taps, p.geom.kernel) for p in phases(geom)]
[((slice(0, None, 2),), (slice(0, None, 2),), (2,)), ((slice(1, None, 2),), (slice(1, None, 2),), (1,))]
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, NamedTuple

import numpy as np

from .._geometry import Geometry
from .state import cache

__all__ = ["Phase", "phases", "split"]


class Phase(NamedTuple):
    """One ordinary convolution of the split: which outputs and taps it owns, and its geometry."""

    outputs: tuple[slice, ...]
    """Per dimension, the outputs ``r::a'`` this phase computes."""
    taps: tuple[slice, ...]
    """Per dimension, the kernel taps ``k₀::κ`` it uses."""
    geom: Geometry
    """The convolution of the undilated input with those taps (input dilation 1)."""


class _Axis(NamedTuple):
    outputs: slice
    taps: slice
    kernel: int
    stride: int
    dilation: int
    lo: int
    hi: int
    out: int


def _axis_phases(size: int, kernel: int, out: int, stride: int, dilation: int, a: int, lo: int) -> list[_Axis]:
    """The phases of one dimension that read at least one input entry (phases with no output are dropped)."""
    n_out = a // math.gcd(a, stride)
    kappa = a // math.gcd(a, dilation)
    s2, d2 = stride // math.gcd(a, stride), dilation // math.gcd(a, dilation)
    found: list[_Axis] = []
    for r in range(min(n_out, out)):
        k0 = next((k for k in range(min(kappa, kernel)) if (r * stride + k * dilation - lo) % a == 0), None)
        if k0 is None:
            continue
        m = -(-(out - r) // n_out)
        k2 = -(-(kernel - k0) // kappa)
        offset = (r * stride + k0 * dilation - lo) // a
        hi = (m - 1) * s2 + d2 * (k2 - 1) + 1 - size + offset  # so that the phase has exactly m outputs
        found.append(_Axis(slice(r, None, n_out), slice(k0, None, kappa), k2, s2, d2, -offset, hi, m))
    return found


@cache(maxsize=256)
def phases(geom: Geometry) -> tuple[Phase, ...]:
    """The ordinary convolutions that together compute ``geom`` (which has input dilation), without its zeros.

    Outputs no phase owns read only inserted zeros and padding: they are zero.
    """
    per_axis = [
        _axis_phases(*args)
        for args in zip(geom.in_size, geom.kernel, geom.out_size, geom.stride, geom.dilation, geom.input_dilation,
                        geom.pad_lo)
    ]
    result = []
    for combo in itertools.product(*per_axis):
        sub = dataclasses.replace(
            geom,
            kernel=tuple(p.kernel for p in combo), out_size=tuple(p.out for p in combo),
            stride=tuple(p.stride for p in combo), dilation=tuple(p.dilation for p in combo),
            pad_lo=tuple(p.lo for p in combo), pad_hi=tuple(p.hi for p in combo),
            input_dilation=(1,) * geom.d,
        )
        result.append(Phase(tuple(p.outputs for p in combo), tuple(p.taps for p in combo), sub))
    return tuple(result)


def split(op: str, a: Any, b: Any, geom: Geometry, contraction: Any, xp: Any) -> Any:
    """Contraction ``op`` of a geometry with input dilation, as the sum of its :func:`phases`.

    ``contraction(op, a, b, sub_geometry)`` computes one ordinary convolution
    (the engine's dispatcher); ``xp`` is the arrays' namespace (``zeros``,
    and item assignment through :func:`convgrad._namespace.set_at` /
    :func:`~convgrad._namespace.add_at` for libraries without it).
    """
    from .._namespace import add_at, array_api_compat, set_at

    lead = (slice(None), slice(None))
    kwargs = {} if xp is np else {"device": array_api_compat().device(a)}
    dtype = xp.result_type(a.dtype, b.dtype)
    if op == "forward":
        shape = (a.shape[0], geom.c_out) + geom.out_size
    elif op == "input":
        shape = (a.shape[0], geom.c_in) + geom.in_size
    else:
        shape = geom.weight_shape
    out = xp.zeros(shape, dtype=dtype, **kwargs)
    for phase in phases(geom):
        if op == "forward":
            out = set_at(out, lead + phase.outputs, contraction(op, a, b[lead + phase.taps], phase.geom))
        elif op == "input":
            out = add_at(out, (Ellipsis,), contraction(op, a[lead + phase.outputs], b[lead + phase.taps], phase.geom))
        else:
            out = add_at(out, lead + phase.taps, contraction(op, a[lead + phase.outputs], b, phase.geom))
    return out
