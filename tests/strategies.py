"""Hypothesis strategies over the convolution configuration space."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

MODES = ("zeros", "reflect", "replicate", "circular")


@dataclass
class Config:
    """One convolution configuration, with the padding both as given and resolved."""

    d: int
    n: int
    batched: bool
    groups: int
    c_in: int
    c_out: int
    kernel: tuple[int, ...]
    size: tuple[int, ...]
    stride: Any
    dilation: Any
    padding: Any
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    mode: str

    @property
    def stride_t(self) -> tuple[int, ...]:
        return self.stride if isinstance(self.stride, tuple) else (self.stride,) * self.d

    @property
    def dilation_t(self) -> tuple[int, ...]:
        return self.dilation if isinstance(self.dilation, tuple) else (self.dilation,) * self.d

    @property
    def x_shape(self) -> tuple[int, ...]:
        return ((self.n, self.c_in) if self.batched else (self.c_in,)) + self.size

    @property
    def w_shape(self) -> tuple[int, ...]:
        return (self.c_out, self.c_in // self.groups) + self.kernel

    def kwargs(self) -> dict[str, Any]:
        return {
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "groups": self.groups,
            "padding_mode": self.mode,
        }

    def arrays(self, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = rng.standard_normal(self.x_shape).astype(dtype)
        w = rng.standard_normal(self.w_shape).astype(dtype)
        b = rng.standard_normal(self.c_out).astype(dtype)
        return x, w, b


def _int_or_tuple(draw: Any, values: tuple[int, ...]) -> Any:
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return values


@st.composite
def conv_configs(
    draw: Any,
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
) -> Config:
    """A valid configuration: any padding form, any mode, output size >= 1."""
    d = draw(st.sampled_from(dims))
    groups = draw(st.integers(1, max_groups))
    c_in = groups * draw(st.integers(1, max_channels_per_group))
    c_out = groups * draw(st.integers(1, max_channels_per_group))
    kernel = tuple(draw(st.lists(st.integers(1, max_kernel), min_size=d, max_size=d)))
    stride = tuple(draw(st.lists(st.integers(1, max_stride), min_size=d, max_size=d)))
    dilation = tuple(draw(st.lists(st.integers(1, max_dilation), min_size=d, max_size=d)))
    mode = draw(st.sampled_from(modes))
    forms = ["int", "tuple", "pairs"]
    if allow_strings:
        forms.append("valid")
        if all(s == 1 for s in stride):
            forms.append("same")
    form = draw(st.sampled_from(forms))
    if form == "int":
        p = draw(st.integers(0, 3))
        padding: Any = p
        lo = hi = (p,) * d
    elif form == "tuple":
        lo = hi = tuple(draw(st.lists(st.integers(0, 3), min_size=d, max_size=d)))
        padding = lo
    elif form == "pairs":
        lo = tuple(draw(st.lists(st.integers(0, 3), min_size=d, max_size=d)))
        hi = tuple(draw(st.lists(st.integers(0, 3), min_size=d, max_size=d)))
        padding = tuple(zip(lo, hi))
    elif form == "valid":
        padding = "valid"
        lo = hi = (0,) * d
    else:  # PyTorch's 'same': total dilation·(k−1), the odd one after
        padding = "same"
        totals = [dl * (k - 1) for k, dl in zip(kernel, dilation)]
        lo = tuple(t // 2 for t in totals)
        hi = tuple(t - t // 2 for t in totals)
    size = []
    for k, dl, a, b in zip(kernel, dilation, lo, hi):
        minimum = max(1, dl * (k - 1) + 1 - a - b)
        if mode == "reflect":
            minimum = max(minimum, a + 1, b + 1)
        elif mode == "circular":
            minimum = max(minimum, a, b)
        size.append(minimum + draw(st.integers(0, max_extra)))
    batched = draw(st.booleans()) if allow_unbatched else True
    n = draw(st.integers(1, max_batch)) if batched else 1
    return Config(
        d=d,
        n=n,
        batched=batched,
        groups=groups,
        c_in=c_in,
        c_out=c_out,
        kernel=kernel,
        size=tuple(size),
        stride=_int_or_tuple(draw, stride),
        dilation=_int_or_tuple(draw, dilation),
        padding=padding,
        lo=lo,
        hi=hi,
        mode=mode,
    )
