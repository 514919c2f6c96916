"""Strategies and references shared by the gradcheck, matrix, explain and CLI tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st


@dataclass
class TConfig:
    """A transposed-convolution configuration (PyTorch's conv_transpose arguments)."""

    d: int
    n: int
    groups: int
    c_in: int
    c_out: int
    kernel: tuple[int, ...]
    size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (self.n, self.c_in) + self.size

    @property
    def w_shape(self) -> tuple[int, ...]:
        return (self.c_in, self.c_out // self.groups) + self.kernel

    def kwargs(self) -> dict[str, Any]:
        return {
            "stride": self.stride,
            "padding": self.padding,
            "output_padding": self.output_padding,
            "dilation": self.dilation,
            "groups": self.groups,
        }


@st.composite
def transposed_configs(draw: Any, *, dims: tuple[int, ...] = (1, 2, 3), max_size: int = 4) -> TConfig:
    """A valid transposed convolution with symmetric padding (as PyTorch takes it) and any output_padding."""
    d = draw(st.sampled_from(dims))
    groups = draw(st.integers(1, 2))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.lists(st.integers(1, 3), min_size=d, max_size=d)))
    stride = tuple(draw(st.lists(st.integers(1, 3), min_size=d, max_size=d)))
    dilation = tuple(draw(st.lists(st.integers(1, 2), min_size=d, max_size=d)))
    size, padding, out_pad = [], [], []
    for k, s, dl in zip(kernel, stride, dilation):
        sz = draw(st.integers(1, max_size))
        a = draw(st.integers(0, max(s, dl) - 1))
        full = (sz - 1) * s + dl * (k - 1) + a + 1
        p = draw(st.integers(0, max(0, (full - 1) // 2)))
        size.append(sz)
        padding.append(p)
        out_pad.append(a)
    return TConfig(
        d=d, n=draw(st.integers(1, 2)), groups=groups, c_in=c_in, c_out=c_out, kernel=kernel, size=tuple(size),
        stride=stride, dilation=dilation, padding=tuple(padding), output_padding=tuple(out_pad),
    )


def torch_conv_transpose_grads(cfg: TConfig, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, ...]:
    """``y, gx, gw, gb`` from PyTorch float64 autograd (an independent reference)."""
    import torch
    import torch.nn.functional as F

    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[cfg.d]
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = torch.zeros(cfg.c_out, dtype=torch.float64, requires_grad=True)
    yt = fn(xt, wt, bt, **cfg.kwargs())
    grads = torch.autograd.grad(yt, (xt, wt, bt), torch.tensor(g))
    return (yt.detach().numpy(), *(t.numpy() for t in grads))
