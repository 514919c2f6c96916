"""PyTorch bridge: convgrad as ``torch.autograd`` Functions and drop-in ``torch.nn`` modules.

The forward and backward passes run convgrad in NumPy on CPU copies of the
tensors; the results come back as tensors with the caller's dtype and device.
Every backward is built from the same differentiable Functions, so gradients
of gradients (``create_graph=True``, ``torch.autograd.gradgradcheck``) work to
any order. With ``A_w`` the convolution by ``w`` (``A_w x = conv(x, w)``) and
``B_x`` the same map seen as a function of the weight (``B_x w = conv(x, w)``):

==========================================  ========================  =========================
Function                                    d/d(first argument) · v   d/d(second argument) · v
==========================================  ========================  =========================
:class:`ConvFunction`: ``A_w x``            ``A_w̄ᵀ v`` (transposed)  ``B_x̄ᵀ v`` (weight grad)
:class:`ConvTransposeFunction`: ``A_wᵀ x``  ``A_w̄ v`` (conv)         ``B_vᵀ x̄`` (weight grad)
weight grad: ``B_xᵀ g``                     ``B_x̄ v`` (conv)         ``A_vᵀ ḡ`` (transposed)
==========================================  ========================  =========================

(bars are complex conjugates, no-ops for real tensors). The set is closed:
each derivative is again one of the three, so no autograd graph of the
NumPy code is needed at any order.

This module imports ``torch`` (``pip install "convgrad[torch]"``);
``import convgrad`` alone never does.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from . import engine
from ._arguments import IntOrTuple, PaddingArg, check_bias
from ._geometry import Geometry, conv_geometry, transpose_geometry

__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvFunction",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "ConvTransposeFunction",
    "conv",
    "conv_transpose",
]

Tensor = torch.Tensor


# ----------------------------------------------------------------------------- tensors <-> arrays


def _array(t: Tensor) -> np.ndarray:
    """A CPU NumPy copy of ``t`` in the dtype convgrad computes in (float32 for 16-bit floats)."""
    t = t.detach()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.to(torch.float32)
    return t.cpu().resolve_conj().resolve_neg().numpy()


def _batched(t: Tensor, geom: Geometry) -> np.ndarray:
    """:func:`_array` with the batch axis that unbatched calls lack."""
    a = _array(t)
    return a if geom.batched else a[np.newaxis]


def _tensor(a: np.ndarray, like: Tensor, geom: Optional[Geometry]) -> Tensor:
    """``a`` as a tensor with ``like``'s dtype and device (batch axis dropped for unbatched ``geom``)."""
    if geom is not None and not geom.batched:
        a = a[0]
    return torch.from_numpy(np.ascontiguousarray(a)).to(device=like.device, dtype=like.dtype)


def _bias_view(b: np.ndarray, d: int) -> np.ndarray:
    return b.reshape((1, -1) + (1,) * d)


def _apply(function: type[torch.autograd.Function], *args: Any) -> Tensor:
    """``function.apply(*args)``, typed."""
    out: Tensor = function.apply(*args)  # type: ignore[no-untyped-call]
    return out


def _conj(t: Optional[Tensor]) -> Optional[Tensor]:
    return None if t is None else t.conj()


# ----------------------------------------------------------------------------- the autograd Functions
# Every Function takes the checked geometry of one forward convolution: x has
# geom.input_shape, w geom.weight_shape and g geom.output_shape throughout.


class ConvFunction(torch.autograd.Function):
    """``y = conv(x, w) + b`` as a ``torch.autograd.Function`` (any order of derivatives).

    Called as ``ConvFunction.apply(x, w, b, geom)`` with the
    :class:`~convgrad._geometry.Geometry` from ``conv_geometry``; use
    :func:`conv`, which checks the arguments and builds it.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor, b: Optional[Tensor], geom: Geometry) -> Tensor:  # type: ignore[override]
        """Run :func:`convgrad.conv` on NumPy copies of the tensors."""
        ctx.geom = geom
        ctx.save_for_backward(x, w)
        y = engine.forward(_batched(x, geom), _array(w), geom)
        if b is not None:
            y += _bias_view(_array(b), geom.d)
        return _tensor(y, x, geom)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Optional[Tensor], ...]:  # type: ignore[override]
        """``(conv_transpose(g, w̄), weight_grad(g, x̄), Σ g)``, each only if needed."""
        x, w = ctx.saved_tensors
        geom: Geometry = ctx.geom
        need_x, need_w, need_b, _ = ctx.needs_input_grad
        gx = _apply(ConvTransposeFunction, g, _conj(w), None, geom) if need_x else None
        gw = _apply(_WeightGradFunction, g, _conj(x), geom) if need_w else None
        gb = _apply(_BiasGradFunction, g, geom) if need_b else None
        return gx, gw, gb, None


class ConvTransposeFunction(torch.autograd.Function):
    """``y = conv_transpose(x, w) + b`` as a ``torch.autograd.Function``.

    The transposed convolution is the input gradient of the forward
    convolution with the same weight, so it is also what
    :class:`ConvFunction`'s backward calls. Called as
    ``ConvTransposeFunction.apply(x, w, b, geom)`` with the geometry from
    ``transpose_geometry`` (that of the forward convolution it is the adjoint
    of); use :func:`conv_transpose`.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor, b: Optional[Tensor], geom: Geometry) -> Tensor:  # type: ignore[override]
        """Run :func:`convgrad.conv_transpose` on NumPy copies of the tensors."""
        ctx.geom = geom
        ctx.save_for_backward(x, w)
        y = engine.input_grad(_batched(x, geom), _array(w), geom)
        if b is not None:
            y += _bias_view(_array(b), geom.d)
        return _tensor(y, x, geom)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Optional[Tensor], ...]:  # type: ignore[override]
        """``(conv(g, w̄), weight_grad(x̄, g), Σ g)``, each only if needed."""
        x, w = ctx.saved_tensors
        geom: Geometry = ctx.geom
        need_x, need_w, need_b, _ = ctx.needs_input_grad
        gx = _apply(ConvFunction, g, _conj(w), None, geom) if need_x else None
        gw = _apply(_WeightGradFunction, _conj(x), g, geom) if need_w else None
        gb = _apply(_BiasGradFunction, g, geom) if need_b else None
        return gx, gw, gb, None


class _WeightGradFunction(torch.autograd.Function):
    """``gw = B_xᵀ g``: the weight gradient, bilinear in ``(g, x)``."""

    @staticmethod
    def forward(ctx: Any, g: Tensor, x: Tensor, geom: Geometry) -> Tensor:  # type: ignore[override]
        ctx.geom = geom
        ctx.save_for_backward(g, x)
        gw = engine.weight_grad(_batched(g, geom), _batched(x, geom), geom)
        return _tensor(gw, g, None)

    @staticmethod
    def backward(ctx: Any, v: Tensor) -> tuple[Optional[Tensor], ...]:  # type: ignore[override]
        # ⟨B_xᵀ g, v⟩ = ⟨g, conv(x, v)⟩ = ⟨conv_transpose(g, v), x⟩
        g, x = ctx.saved_tensors
        geom: Geometry = ctx.geom
        need_g, need_x, _ = ctx.needs_input_grad
        gg = _apply(ConvFunction, _conj(x), v, None, geom) if need_g else None
        gx = _apply(ConvTransposeFunction, _conj(g), v, None, geom) if need_x else None
        return gg, gx, None


class _BiasGradFunction(torch.autograd.Function):
    """``gb[o] = Σ_{n, q} g[n, o, q]``; its backward broadcasts back (a torch view, differentiable)."""

    @staticmethod
    def forward(ctx: Any, g: Tensor, geom: Geometry) -> Tensor:  # type: ignore[override]
        ctx.shape = tuple(g.shape)
        ctx.geom = geom
        return _tensor(engine.bias_grad(_batched(g, geom)), g, None)

    @staticmethod
    def backward(ctx: Any, v: Tensor) -> tuple[Optional[Tensor], ...]:  # type: ignore[override]
        geom: Geometry = ctx.geom
        lead = (1,) if geom.batched else ()
        return v.reshape(lead + (-1,) + (1,) * geom.d).expand(ctx.shape), None


# ----------------------------------------------------------------------------- the functional API


def _check_tensors(x: object, w: object, b: object) -> None:
    """Tensors, all of one floating or complex dtype and one device, as ``torch.nn.functional`` wants."""
    named: list[tuple[str, Tensor]] = []
    for name, t in [("x", x), ("w", w)] + ([] if b is None else [("b", b)]):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(t).__name__}")
        named.append((name, t))
    first = named[0][1]
    if not (first.is_floating_point() or first.is_complex()):
        raise TypeError(f"x must have a floating or complex dtype; got {first.dtype}")
    for name, t in named[1:]:
        if t.dtype != first.dtype:
            raise TypeError(f"{name}.dtype ({t.dtype}) must equal x.dtype ({first.dtype})")
        if t.device != first.device:
            raise ValueError(f"{name} is on device {t.device} but x is on device {first.device}")


def conv(
    x: Tensor,
    w: Tensor,
    b: Optional[Tensor] = None,
    /,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """:func:`convgrad.conv` on tensors, differentiable to any order.

    The same numbers as ``torch.nn.functional.conv1d/2d/3d`` (and, for
    ``padding_mode`` other than ``"zeros"``, as ``torch.nn.Conv*d``), for any
    number of spatial dimensions, with every padding form of :func:`convgrad.conv`.

    Parameters
    ----------
    x : torch.Tensor, shape=(N, C, *S) or (C, *S)
    w : torch.Tensor, shape=(O, C / groups, *K)
    b : torch.Tensor, shape=(O,), optional
        All of one floating or complex dtype and one device.
    stride, padding, dilation, groups, padding_mode
        As for :func:`convgrad.conv`.

    Returns
    -------
    torch.Tensor, shape=(N, O, *Q) or (O, *Q)
        With ``x``'s dtype and device; float16 and bfloat16 are computed in float32.

    Raises
    ------
    TypeError
        For arguments that are not tensors, or mixed or non-floating dtypes.
    ValueError
        For mixed devices, inconsistent shapes or bad geometry (from :func:`convgrad.conv`'s checks).

    Examples
    --------
    >>> import torch
    >>> import convgrad.torch as cgt
    >>> x = torch.arange(10.0, 15.0, dtype=torch.float64).reshape(1, 1, 5).requires_grad_()
    >>> w = torch.tensor([[[1.0, 2.0, -1.0]]], dtype=torch.float64, requires_grad=True)
    >>> y = cgt.conv(x, w, padding=1)
    >>> y
    tensor([[[ 9., 20., 22., 24., 41.]]], dtype=torch.float64, grad_fn=<ConvFunctionBackward>)
    >>> (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    >>> torch.autograd.grad(gx.sum(), w)[0]  # a second derivative, as torch.nn.functional.conv1d gives
    tensor([[[424., 480., 328.]]], dtype=torch.float64)
    """
    _check_tensors(x, w, b)
    geom = conv_geometry(
        tuple(x.shape), tuple(w.shape), stride=stride, padding=padding, dilation=dilation, groups=groups,
        padding_mode=padding_mode,
    )
    if b is not None:
        check_bias(tuple(b.shape), geom.c_out)
    return _apply(ConvFunction, x, w, b, geom)


def conv_transpose(
    x: Tensor,
    w: Tensor,
    b: Optional[Tensor] = None,
    /,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    output_shape: Optional[tuple[int, ...]] = None,
) -> Tensor:
    """:func:`convgrad.conv_transpose` on tensors, differentiable to any order.

    The same numbers as ``torch.nn.functional.conv_transpose1d/2d/3d``.

    Parameters
    ----------
    x : torch.Tensor, shape=(N, C_in, *S) or (C_in, *S)
    w : torch.Tensor, shape=(C_in, C_out / groups, *K)
    b : torch.Tensor, shape=(C_out,), optional
    stride, padding, output_padding, dilation, groups, output_shape
        As for :func:`convgrad.conv_transpose`.

    Returns
    -------
    torch.Tensor
        Shape from :func:`convgrad.conv_transpose_output_shape`, with ``x``'s dtype and device.

    Raises
    ------
    TypeError, ValueError
        As for :func:`conv`.

    Examples
    --------
    >>> import torch
    >>> import convgrad.torch as cgt
    >>> x = torch.ones(1, 1, 2)
    >>> cgt.conv_transpose(x, torch.tensor([[[1.0, 2.0]]]), stride=2, output_padding=1)
    tensor([[[1., 2., 1., 2., 0.]]])
    """
    _check_tensors(x, w, b)
    geom = transpose_geometry(
        tuple(x.shape), tuple(w.shape), stride=stride, padding=padding, output_padding=output_padding,
        dilation=dilation, groups=groups, output_shape=output_shape,
    )
    if b is not None:
        check_bias(tuple(b.shape), geom.c_in)
    return _apply(ConvTransposeFunction, x, w, b, geom)


# ----------------------------------------------------------------------------- drop-in modules


class _ConvMixin(torch.nn.modules.conv._ConvNd):
    """``_conv_forward`` through :func:`conv`; everything else is ``torch.nn``'s."""

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        return conv(
            input, weight, bias, stride=self.stride, padding=self.padding, dilation=self.dilation,
            groups=self.groups, padding_mode=self.padding_mode,
        )


class _ConvTransposeMixin(torch.nn.modules.conv._ConvTransposeNd):
    """``forward(input, output_size=None)`` through :func:`conv_transpose`."""

    def forward(self, input: Tensor, output_size: Optional[list[int]] = None) -> Tensor:
        """Transposed convolution of ``input``; ``output_size`` picks the output padding."""
        return conv_transpose(
            input, self.weight, self.bias, stride=self.stride, padding=self.padding,
            output_padding=self.output_padding if output_size is None else 0, dilation=self.dilation,
            groups=self.groups, output_shape=None if output_size is None else tuple(output_size),
        )


class Conv1d(_ConvMixin, torch.nn.Conv1d):
    """``torch.nn.Conv1d`` computed by convgrad: same arguments, initialisation and ``state_dict``.

    Examples
    --------
    >>> import torch
    >>> import convgrad.torch as cgt
    >>> _ = torch.manual_seed(0)
    >>> reference = torch.nn.Conv1d(2, 3, 3, padding=1, padding_mode="circular")
    >>> layer = cgt.Conv1d(2, 3, 3, padding=1, padding_mode="circular")
    >>> _ = layer.load_state_dict(reference.state_dict())
    >>> x = torch.randn(4, 2, 7)
    >>> bool(torch.allclose(layer(x), reference(x), atol=1e-6))
    True
    """


class Conv2d(_ConvMixin, torch.nn.Conv2d):
    """``torch.nn.Conv2d`` computed by convgrad: same arguments, initialisation and ``state_dict``.

    Examples
    --------
    Swap the class, load the same checkpoint:

    >>> import torch
    >>> import convgrad.torch as cgt
    >>> _ = torch.manual_seed(0)
    >>> reference = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=True)
    >>> layer = cgt.Conv2d(3, 4, 3, stride=2, padding=1, bias=True)
    >>> layer
    Conv2d(3, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
    >>> _ = layer.load_state_dict(reference.state_dict())
    >>> x = torch.randn(2, 3, 9, 9)
    >>> bool(torch.allclose(layer(x), reference(x), atol=1e-6))
    True
    """


class Conv3d(_ConvMixin, torch.nn.Conv3d):
    """``torch.nn.Conv3d`` computed by convgrad: same arguments, initialisation and ``state_dict``.

    Examples
    --------
    >>> import torch
    >>> import convgrad.torch as cgt
    >>> cgt.Conv3d(2, 4, (1, 2, 3), groups=2, padding="same")(torch.randn(2, 3, 4, 5)).shape
    torch.Size([4, 3, 4, 5])
    """


class ConvTranspose1d(_ConvTransposeMixin, torch.nn.ConvTranspose1d):
    """``torch.nn.ConvTranspose1d`` computed by convgrad, ``forward(input, output_size=None)`` included.

    Examples
    --------
    >>> import torch
    >>> import convgrad.torch as cgt
    >>> up = cgt.ConvTranspose1d(2, 1, 3, stride=2, padding=1)
    >>> up(torch.randn(1, 2, 4)).shape, up(torch.randn(1, 2, 4), output_size=[8]).shape
    (torch.Size([1, 1, 7]), torch.Size([1, 1, 8]))
    """


class ConvTranspose2d(_ConvTransposeMixin, torch.nn.ConvTranspose2d):
    """``torch.nn.ConvTranspose2d`` computed by convgrad, ``forward(input, output_size=None)`` included.

    Examples
    --------
    >>> import torch
    >>> import convgrad.torch as cgt
    >>> _ = torch.manual_seed(0)
    >>> reference = torch.nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1)
    >>> layer = cgt.ConvTranspose2d(4, 2, 4, stride=2, padding=1)
    >>> _ = layer.load_state_dict(reference.state_dict())
    >>> x = torch.randn(1, 4, 5, 5)
    >>> bool(torch.allclose(layer(x), reference(x), atol=1e-6))
    True
    """


class ConvTranspose3d(_ConvTransposeMixin, torch.nn.ConvTranspose3d):
    """``torch.nn.ConvTranspose3d`` computed by convgrad, ``forward(input, output_size=None)`` included.

    Examples
    --------
    >>> import torch
    >>> import convgrad.torch as cgt
    >>> cgt.ConvTranspose3d(2, 2, 2, stride=2)(torch.randn(1, 2, 2, 3, 1)).shape
    torch.Size([1, 2, 4, 6, 2])
    """
