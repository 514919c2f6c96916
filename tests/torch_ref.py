"""PyTorch (float64 autograd) as the differential oracle."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from strategies import Config

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _torch_pad_list(lo: tuple[int, ...], hi: tuple[int, ...]) -> list[int]:
    """F.pad wants (last_lo, last_hi, second_last_lo, ...)."""
    out: list[int] = []
    for a, b in zip(reversed(lo), reversed(hi)):
        out += [a, b]
    return out


def torch_conv(cfg: Config, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: np.ndarray | None = None) -> tuple[Any, ...]:
    """``y`` and, if ``g`` is given, ``(gx, gw, gb)`` from torch.autograd.grad."""
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    conv = _CONV[cfg.d]
    direct = cfg.mode == "zeros" and not (isinstance(cfg.padding, tuple) and isinstance(cfg.padding[0], tuple))
    if direct:
        yt = conv(xt, wt, bt, stride=cfg.stride, padding=cfg.padding, dilation=cfg.dilation, groups=cfg.groups)
    else:
        xin = xt if cfg.batched else xt[None]
        mode = "constant" if cfg.mode == "zeros" else cfg.mode
        xpad = F.pad(xin, _torch_pad_list(cfg.lo, cfg.hi), mode=mode)
        yt = conv(xpad, wt, bt, stride=cfg.stride, dilation=cfg.dilation, groups=cfg.groups)
        if not cfg.batched:
            yt = yt[0]
    y = yt.detach().numpy()
    if g is None:
        return (y,)
    inputs = (xt, wt) + (() if bt is None else (bt,))
    grads = torch.autograd.grad(yt, inputs, torch.tensor(g))
    return (y,) + tuple(t.numpy() for t in grads)


def torch_conv_transpose(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: np.ndarray | None, **kw: Any
) -> tuple[Any, ...]:
    """Transposed convolution through F.conv_transpose*d and its autograd gradients."""
    d = w.ndim - 2
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    yt = _CONV_T[d](xt, wt, bt, **kw)
    y = yt.detach().numpy()
    if g is None:
        return (y,)
    inputs = (xt, wt) + (() if bt is None else (bt,))
    grads = torch.autograd.grad(yt, inputs, torch.tensor(g))
    return (y,) + tuple(t.numpy() for t in grads)
