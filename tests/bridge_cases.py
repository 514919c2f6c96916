"""Tiny convolution configurations and PyTorch references for the bridge and double-backward tests.

Sizes are kept small on purpose: ``gradgradcheck`` builds numerical Jacobians
of the backward pass, whose cost grows with the square of the element count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from hypothesis import strategies as st

MODES = ("zeros", "reflect", "replicate", "circular")
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@dataclass(frozen=True)
class Case:
    """One convolution (``transposed=False``) or transposed convolution configuration."""

    transposed: bool
    d: int
    batched: bool
    n: int
    groups: int
    c_in: int
    c_out: int
    kernel: tuple[int, ...]
    size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: Any
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    mode: str
    output_padding: tuple[int, ...]
    bias: bool

    @property
    def x_shape(self) -> tuple[int, ...]:
        return ((self.n, self.c_in) if self.batched else (self.c_in,)) + self.size

    @property
    def w_shape(self) -> tuple[int, ...]:
        if self.transposed:
            return (self.c_in, self.c_out // self.groups) + self.kernel
        return (self.c_out, self.c_in // self.groups) + self.kernel

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for convgrad (NumPy or torch bridge)."""
        kw: dict[str, Any] = {
            "stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups,
        }
        if self.transposed:
            kw["output_padding"] = self.output_padding
        else:
            kw["padding_mode"] = self.mode
        return kw

    def tensors(self, dtype: torch.dtype = torch.float64, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """``(x, w)`` or ``(x, w, b)``, requiring grad."""
        gen = torch.Generator().manual_seed(seed)
        shapes = [self.x_shape, self.w_shape] + ([(self.c_out,)] if self.bias else [])
        return tuple(torch.randn(s, dtype=dtype, generator=gen).requires_grad_() for s in shapes)


def _pad_list(lo: tuple[int, ...], hi: tuple[int, ...]) -> list[int]:
    """``F.pad`` wants (last_lo, last_hi, second_last_lo, ...)."""
    out: list[int] = []
    for a, b in zip(reversed(lo), reversed(hi)):
        out += [a, b]
    return out


def reference(case: Case) -> Callable[..., torch.Tensor]:
    """The same operation through ``torch.nn.functional`` only (differentiable to any order)."""
    d = case.d

    def conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        xb = x if case.batched else x[None]
        mode = "constant" if case.mode == "zeros" else case.mode
        xp = F.pad(xb, _pad_list(case.lo, case.hi), mode=mode)
        y = _CONV[d](xp, w, b, stride=case.stride, dilation=case.dilation, groups=case.groups)
        return y if case.batched else y[0]

    def conv_transpose(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        # asymmetric padding: transposed convolution without padding, then crop lo before and hi after
        full = _CONV_T[d](
            x, w, b, stride=case.stride, output_padding=case.output_padding, dilation=case.dilation,
            groups=case.groups,
        )
        index = [slice(None)] * (full.ndim - d) + [
            slice(lo, n - hi) for lo, hi, n in zip(case.lo, case.hi, full.shape[-d:])
        ]
        return full[tuple(index)]

    return conv_transpose if case.transposed else conv


def _tuple(draw: Any, d: int, lo: int, hi: int) -> tuple[int, ...]:
    return tuple(draw(st.lists(st.integers(lo, hi), min_size=d, max_size=d)))


@st.composite
def cases(
    draw: Any,
    *,
    transposed: bool = False,
    dims: tuple[int, ...] = (1, 2, 3),
    modes: tuple[str, ...] = MODES,
) -> Case:
    """A valid tiny configuration; fewer channels and smaller sizes as ``d`` grows."""
    d = draw(st.sampled_from(dims))
    groups = draw(st.integers(1, 2))
    per_group = 2 if d < 3 else 1
    c_in = groups * draw(st.integers(1, per_group))
    c_out = groups * draw(st.integers(1, per_group))
    kernel = _tuple(draw, d, 1, 3 if d == 1 else 2)
    stride = _tuple(draw, d, 1, 2)
    dilation = _tuple(draw, d, 1, 2)
    max_pad = 2 if d == 1 else 1
    mode = "zeros" if transposed else draw(st.sampled_from(modes))
    forms = ["int", "tuple", "pairs"] + ([] if transposed else ["valid"] + (["same"] if max(stride) == 1 else []))
    form = draw(st.sampled_from(forms))
    padding: Any
    if form == "int":
        p = draw(st.integers(0, max_pad))
        padding, lo, hi = p, (p,) * d, (p,) * d
    elif form == "tuple":
        lo = hi = _tuple(draw, d, 0, max_pad)
        padding = lo
    elif form == "pairs":
        lo, hi = _tuple(draw, d, 0, max_pad), _tuple(draw, d, 0, max_pad)
        padding = tuple(zip(lo, hi))
    elif form == "valid":
        padding, lo, hi = "valid", (0,) * d, (0,) * d
    else:
        totals = [dl * (k - 1) for k, dl in zip(kernel, dilation)]
        padding, lo, hi = "same", tuple(t // 2 for t in totals), tuple(t - t // 2 for t in totals)
    output_padding = (0,) * d
    if transposed:
        output_padding = tuple(draw(st.integers(0, max(s, dl) - 1)) for s, dl in zip(stride, dilation))
        # the output (S − 1)s − l − h + δ(K − 1) + a + 1 must be >= 1
        size = tuple(
            max(1, -((-(lo_ + hi_ - dl * (k - 1) - a)) // s) + 1) + draw(st.integers(0, 1))
            for lo_, hi_, dl, k, a, s in zip(lo, hi, dilation, kernel, output_padding, stride)
        )
    else:
        needed = []
        for k, dl, lo_, hi_ in zip(kernel, dilation, lo, hi):
            least = max(1, dl * (k - 1) + 1 - lo_ - hi_)
            if mode == "reflect":
                least = max(least, max(lo_, hi_) + 1)
            if mode == "circular":
                least = max(least, lo_, hi_)
            needed.append(least)
        size = tuple(m + draw(st.integers(0, 2 if d < 3 else 1)) for m in needed)
    batched = draw(st.booleans()) if d < 3 else True
    n = draw(st.integers(1, 2)) if batched and d < 3 else 1
    return Case(
        transposed=transposed, d=d, batched=batched, n=n, groups=groups, c_in=c_in, c_out=c_out, kernel=kernel,
        size=size, stride=stride, dilation=dilation, padding=padding, lo=lo, hi=hi, mode=mode,
        output_padding=output_padding, bias=draw(st.booleans()),
    )
