"""PyTorch bridge: convgrad as PyTorch custom operators and drop-in ``torch.nn`` modules.

How it works
------------
The convolution and its gradients are registered with ``torch.library.custom_op``
as five operators in the ``convgrad`` namespace. Each one runs convgrad in NumPy
on CPU copies of its tensors (through the same :func:`convgrad._prepare.prepare`
checks as the NumPy functions) and returns a new tensor with the dtype and device
of its first tensor argument; float16 and bfloat16 are computed in float32.

===========================================  ======================================
Operator (``torch.ops.convgrad.…``)          Computes
===========================================  ======================================
``conv_forward(x, w, b, …)``                 ``A_w x + b``: :func:`conv`
``conv_transpose(x, w, b, …)``               ``A_wᵀ x + b``: :func:`conv_transpose`
``conv_input_grad(g, w, input_shape, …)``    ``A_wᵀ g``, any ``padding_mode``
``conv_weight_grad(g, x, weight_shape, …)``  ``B_xᵀ g``
``conv_bias_grad(g, unbatched)``             ``Σ g`` over all but the channel axis
===========================================  ======================================

Here ``A_w x = conv(x, w)`` and ``B_x w = conv(x, w)`` (the same map seen as a
function of the weight). Every operator takes the geometry of one forward
convolution as plain values: ``stride``, ``padding_lo``, ``padding_hi``,
``dilation`` (lists of ints, one per spatial dimension), ``groups`` and
``padding_mode`` (``conv_transpose`` takes ``output_padding`` instead, as its
padding mode is always ``"zeros"``).

Each operator has a fake (meta) implementation, which gets the output shape
from :func:`convgrad._geometry.conv_geometry` or
:func:`convgrad._geometry.transpose_geometry`, and an autograd formula made of
these same operators (bars are complex conjugates, no-ops for real tensors):

==============================  ========================  =========================
Operator                        d/d(first argument) · v   d/d(second argument) · v
==============================  ========================  =========================
``A_w x`` (forward)             ``A_w̄ᵀ v`` (input grad)   ``B_x̄ᵀ v`` (weight grad)
``A_wᵀ x`` (transposed, input)  ``A_w̄ v`` (forward)       ``B_vᵀ x̄`` (weight grad)
``B_xᵀ g`` (weight grad)        ``B_x̄ v`` (forward)       ``A_vᵀ ḡ`` (input grad)
==============================  ========================  =========================

The set is closed under differentiation, so gradients of gradients
(``create_graph=True``, ``torch.autograd.gradgradcheck``) work to any order.

PyTorch's tracers see these operators, with their output shapes, and never the
NumPy code behind them: ``torch.compile`` (the default inductor backend or any
other; input shapes may change between calls), ``torch.export.export`` (static
or dynamic shapes) and ``torch.jit.trace`` (which, as always, records the
geometry values of the traced call as constants) keep the calls in their
graphs. One limit is PyTorch's own: a function compiled with an AOT-autograd
backend (inductor, ``"aot_eager"``) cannot be differentiated twice
(``create_graph=True``); compile with ``backend="eager"``, or not at all, for
double backward.

This module needs PyTorch (``pip install 'convgrad[torch]'``);
``import convgrad`` alone never imports it.

Examples
--------
>>> import torch
>>> import convgrad.torch as cgt
>>> model = torch.nn.Sequential(cgt.Conv1d(1, 2, 3, padding=1), cgt.ConvTranspose1d(2, 1, 2, stride=2))
>>> program = torch.export.export(model, (torch.randn(1, 1, 5),))
>>> sorted({str(node.target) for node in program.graph.nodes if "convgrad" in str(node.target)})
['convgrad.conv_forward.default', 'convgrad.conv_transpose.default']
>>> x = torch.randn(1, 1, 5)
>>> bool(torch.equal(program.module()(x), model(x)))
True
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

try:
    import torch
except ModuleNotFoundError as err:
    if err.name != "torch":
        raise
    raise ImportError("convgrad.torch needs PyTorch: pip install 'convgrad[torch]'") from None

from . import engine
from ._arguments import IntOrTuple, PaddingArg, check_bias, check_method
from ._conv import conv_bias_grad, with_bias
from ._geometry import Geometry, conv_geometry, transpose_geometry, transposed_size
from ._prepare import prepare

__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "conv",
    "conv_transpose",
]

Tensor = torch.Tensor
Ints = list[int]


# ----------------------------------------------------------------------------- helpers


def _tensor(a: Any, like: Tensor) -> Tensor:
    """``a`` (a NumPy array, or a tensor from the core's native path) as a tensor with ``like``'s dtype and device."""
    if isinstance(a, torch.Tensor):
        return a.to(device=like.device, dtype=like.dtype)
    return torch.from_numpy(np.ascontiguousarray(a)).to(device=like.device, dtype=like.dtype)


def _geometry(stride: Ints, padding_lo: Ints, padding_hi: Ints, dilation: Ints, groups: int) -> dict[str, Any]:
    """An operator's geometry values as keyword arguments of :func:`conv_geometry` and :func:`prepare`."""
    return {"stride": stride, "padding": tuple(zip(padding_lo, padding_hi)), "dilation": dilation, "groups": groups}


def _conj(t: Tensor) -> Tensor:
    return t.conj() if t.is_complex() else t


def _unbatched(x: Tensor, w: Tensor) -> bool:
    return x.dim() == w.dim() - 1


def _fit(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``t`` cut or zero-padded at the far end of each axis to ``shape`` (a differentiable ``F.pad``)."""
    pads: list[int] = []
    for have, want in zip(reversed(t.shape), reversed(shape)):
        pads += [0, want - have]
    return torch.nn.functional.pad(t, pads) if any(pads) else t


# ----------------------------------------------------------------------------- the operators


@torch.library.custom_op("convgrad::conv_forward", mutates_args=())
def _conv_forward(x: Tensor, w: Tensor, b: Optional[Tensor], stride: Ints, padding_lo: Ints, padding_hi: Ints,
                  dilation: Ints, groups: int, padding_mode: str, method: str = "auto") -> Tensor:
    """``conv(x, w) + b``."""
    p = prepare({"x": x, "w": w, "b": b}, padding_mode=padding_mode, method=method,
                **_geometry(stride, padding_lo, padding_hi, dilation, groups))
    return _tensor(with_bias(engine.forward, p), x)


@torch.library.custom_op("convgrad::conv_transpose", mutates_args=())
def _conv_transpose(x: Tensor, w: Tensor, b: Optional[Tensor], stride: Ints, padding_lo: Ints, padding_hi: Ints,
                    dilation: Ints, groups: int, output_padding: Ints, method: str = "auto") -> Tensor:
    """``conv_transpose(x, w) + b``."""
    p = prepare({"x": x, "w": w, "b": b}, transposed=True, output_padding=output_padding, method=method,
                **_geometry(stride, padding_lo, padding_hi, dilation, groups))
    return _tensor(with_bias(engine.input_grad, p), x)


@torch.library.custom_op("convgrad::conv_input_grad", mutates_args=())
def _conv_input_grad(g: Tensor, w: Tensor, input_shape: Ints, stride: Ints, padding_lo: Ints, padding_hi: Ints,
                     dilation: Ints, groups: int, padding_mode: str, method: str = "auto") -> Tensor:
    """``A_wᵀ g``: the input gradient of a convolution, without conjugation."""
    p = prepare({"grad_output": g, "w": w}, input_shape=input_shape, padding_mode=padding_mode, method=method,
                **_geometry(stride, padding_lo, padding_hi, dilation, groups))
    return _tensor(p.finish(engine.input_grad(p["grad_output"], p["w"], p.geom, p.method, exact=p.exact)), g)


@torch.library.custom_op("convgrad::conv_weight_grad", mutates_args=())
def _conv_weight_grad(g: Tensor, x: Tensor, weight_shape: Ints, stride: Ints, padding_lo: Ints, padding_hi: Ints,
                      dilation: Ints, groups: int, padding_mode: str, method: str = "auto") -> Tensor:
    """``B_xᵀ g``: the weight gradient of a convolution, without conjugation."""
    p = prepare({"grad_output": g, "x": x}, weight_shape=weight_shape, padding_mode=padding_mode, method=method,
                **_geometry(stride, padding_lo, padding_hi, dilation, groups))
    gw = engine.weight_grad(p["grad_output"], p["x"], p.geom, p.method, exact=p.exact)
    return _tensor(p.finish(gw, batched_like_input=False), g)


@torch.library.custom_op("convgrad::conv_bias_grad", mutates_args=())
def _conv_bias_grad(g: Tensor, unbatched: bool) -> Tensor:
    """``g`` summed over every axis but the channel axis."""
    return _tensor(conv_bias_grad(g, unbatched=unbatched), g)


# ----------------------------------------------------------------------------- fake (meta) implementations


@_conv_forward.register_fake
def _(x: Tensor, w: Tensor, b: Optional[Tensor], stride: Ints, padding_lo: Ints, padding_hi: Ints,
      dilation: Ints, groups: int, padding_mode: str, method: str = "auto") -> Tensor:
    geom = conv_geometry(tuple(x.shape), tuple(w.shape), padding_mode=padding_mode,
                         **_geometry(stride, padding_lo, padding_hi, dilation, groups))
    return x.new_empty(geom.output_shape)


@_conv_transpose.register_fake
def _(x: Tensor, w: Tensor, b: Optional[Tensor], stride: Ints, padding_lo: Ints, padding_hi: Ints,
      dilation: Ints, groups: int, output_padding: Ints, method: str = "auto") -> Tensor:
    geom = transpose_geometry(tuple(x.shape), tuple(w.shape), output_padding=output_padding,
                              **_geometry(stride, padding_lo, padding_hi, dilation, groups))
    return x.new_empty(geom.input_shape)


@_conv_input_grad.register_fake
def _(g: Tensor, w: Tensor, input_shape: Ints, stride: Ints, padding_lo: Ints, padding_hi: Ints,
      dilation: Ints, groups: int, padding_mode: str, method: str = "auto") -> Tensor:
    geom = conv_geometry(tuple(input_shape), tuple(w.shape), padding_mode=padding_mode,
                         **_geometry(stride, padding_lo, padding_hi, dilation, groups))
    return g.new_empty(geom.input_shape)


@_conv_weight_grad.register_fake
def _(g: Tensor, x: Tensor, weight_shape: Ints, stride: Ints, padding_lo: Ints, padding_hi: Ints,
      dilation: Ints, groups: int, padding_mode: str, method: str = "auto") -> Tensor:
    geom = conv_geometry(tuple(x.shape), tuple(weight_shape), padding_mode=padding_mode,
                         **_geometry(stride, padding_lo, padding_hi, dilation, groups))
    return g.new_empty(geom.weight_shape)


@_conv_bias_grad.register_fake
def _(g: Tensor, unbatched: bool) -> Tensor:
    return g.new_empty((g.shape[0 if unbatched else 1],))


# ----------------------------------------------------------------------------- autograd formulas
# ctx.geometry holds (stride, padding_lo, padding_hi, dilation, groups, padding_mode, method) of the forward
# convolution (method: how convgrad computes it, passed on to every derivative); x has its input shape, w its
# weight shape and g its output shape throughout.


def _setup_forward(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    x, w, _, stride, lo, hi, dilation, groups, padding_mode, method = inputs
    ctx.save_for_backward(x, w)
    ctx.geometry = (stride, lo, hi, dilation, groups, padding_mode, method)
    ctx.unbatched = _unbatched(x, w)


def _backward_forward(ctx: Any, g: Tensor) -> tuple[Optional[Tensor], ...]:
    """``(A_w̄ᵀ g, B_x̄ᵀ g, Σ g)``, each only if needed."""
    x, w = ctx.saved_tensors
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    gx = _conv_input_grad(g, _conj(w), list(x.shape), *ctx.geometry) if need_x else None
    gw = _conv_weight_grad(g, _conj(x), list(w.shape), *ctx.geometry) if need_w else None
    gb = _conv_bias_grad(g, ctx.unbatched) if need_b else None
    return (gx, gw, gb) + (None,) * 7


def _setup_transpose(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    x, w, _, stride, lo, hi, dilation, groups, _, method = inputs
    ctx.save_for_backward(x, w)
    ctx.geometry = (stride, lo, hi, dilation, groups, "zeros", method)
    ctx.unbatched = _unbatched(x, w)


def _backward_input_grad(ctx: Any, v: Tensor) -> tuple[Optional[Tensor], ...]:
    """For ``A_wᵀ g`` (with or without a bias): ``(A_w̄ v, B_vᵀ ḡ, Σ v)``, each only if needed.

    With an output padding of at least the stride (dilation > stride), ``g`` is
    shorter than the forward convolution of ``v``: that convolution is cut to
    ``g``'s shape, and ``g`` zero-padded to its shape for the weight gradient.
    """
    g, w = ctx.saved_tensors
    need_g, need_w, need_b = ctx.needs_input_grad[:3]
    gg = _fit(_conv_forward(v, _conj(w), None, *ctx.geometry), tuple(g.shape)) if need_g else None
    gw = None
    if need_w:
        *geometry, padding_mode, _ = ctx.geometry
        full = conv_geometry(tuple(v.shape), tuple(w.shape), padding_mode=padding_mode, **_geometry(*geometry))
        gw = _conv_weight_grad(_fit(_conj(g), full.output_shape), v, list(w.shape), *ctx.geometry)
    gb = _conv_bias_grad(v, ctx.unbatched) if need_b else None
    return (gg, gw, gb) + (None,) * 7


def _setup_input_grad(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    g, w, _, stride, lo, hi, dilation, groups, padding_mode, method = inputs
    ctx.save_for_backward(g, w)
    ctx.geometry = (stride, lo, hi, dilation, groups, padding_mode, method)


def _setup_weight_grad(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    g, x, _, stride, lo, hi, dilation, groups, padding_mode, method = inputs
    ctx.save_for_backward(g, x)
    ctx.geometry = (stride, lo, hi, dilation, groups, padding_mode, method)


def _backward_weight_grad(ctx: Any, v: Tensor) -> tuple[Optional[Tensor], ...]:
    """``(B_x̄ v, A_vᵀ ḡ)``, each only if needed."""
    g, x = ctx.saved_tensors
    need_g, need_x = ctx.needs_input_grad[:2]
    gg = _conv_forward(_conj(x), v, None, *ctx.geometry) if need_g else None
    gx = _conv_input_grad(_conj(g), v, list(x.shape), *ctx.geometry) if need_x else None
    return (gg, gx) + (None,) * 8


def _setup_bias_grad(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    g, unbatched = inputs
    ctx.shape = tuple(g.shape)
    ctx.unbatched = unbatched


def _backward_bias_grad(ctx: Any, v: Tensor) -> tuple[Optional[Tensor], None]:
    """``gb`` broadcast back over ``g``'s shape (torch views, differentiable)."""
    lead = () if ctx.unbatched else (1,)
    return v.reshape(lead + (-1,) + (1,) * (len(ctx.shape) - len(lead) - 1)).expand(ctx.shape), None


_conv_forward.register_autograd(_backward_forward, setup_context=_setup_forward)
_conv_transpose.register_autograd(_backward_input_grad, setup_context=_setup_transpose)
_conv_input_grad.register_autograd(_backward_input_grad, setup_context=_setup_input_grad)
_conv_weight_grad.register_autograd(_backward_weight_grad, setup_context=_setup_weight_grad)
_conv_bias_grad.register_autograd(_backward_bias_grad, setup_context=_setup_bias_grad)


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


def _operator_geometry(geom: Geometry) -> tuple[Ints, Ints, Ints, Ints, int]:
    """``(stride, padding_lo, padding_hi, dilation, groups)`` of a checked geometry, as the operators take them."""
    return list(geom.stride), list(geom.pad_lo), list(geom.pad_hi), list(geom.dilation), geom.groups


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
    method: str = "auto",
) -> Tensor:
    """:func:`convgrad.conv` on tensors, differentiable to any order.

    The same numbers as ``torch.nn.functional.conv1d/2d/3d`` (and, for
    ``padding_mode`` other than ``"zeros"``, as ``torch.nn.Conv*d``), for any
    number of spatial dimensions, with every padding form of :func:`convgrad.conv`.
    The arguments are checked here; the work is one call of the
    ``convgrad::conv_forward`` operator, which ``torch.compile`` and
    ``torch.export`` keep in their graphs.

    Parameters
    ----------
    x : torch.Tensor, shape=(N, C, *S) or (C, *S)
    w : torch.Tensor, shape=(O, C / groups, *K)
    b : torch.Tensor, shape=(O,), optional
        All of one floating or complex dtype and one device.
    stride, padding, dilation, groups, padding_mode, method
        As for :func:`convgrad.conv`; ``method`` is used for the gradients too, to any order.

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
    tensor([[[ 9., 20., 22., 24., 41.]]], dtype=torch.float64,
           grad_fn=<GeneratedBackwardFor_convgrad_conv_forward_defaultBackward>)
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
    out: Tensor = _conv_forward(x, w, b, *_operator_geometry(geom), geom.padding_mode, check_method(method))
    return out


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
    method: str = "auto",
) -> Tensor:
    """:func:`convgrad.conv_transpose` on tensors, differentiable to any order.

    The same numbers as ``torch.nn.functional.conv_transpose1d/2d/3d``; one
    call of the ``convgrad::conv_transpose`` operator after the checks.

    Parameters
    ----------
    x : torch.Tensor, shape=(N, C_in, *S) or (C_in, *S)
    w : torch.Tensor, shape=(C_in, C_out / groups, *K)
    b : torch.Tensor, shape=(C_out,), optional
    stride, padding, output_padding, dilation, groups, output_shape, method
        As for :func:`convgrad.conv_transpose`; ``method`` is used for the gradients too.

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
    stride_, lo, hi, dilation_, groups_ = _operator_geometry(geom)
    # the output padding, from the checked sizes (int(): torch.jit.trace hands sizes over as tensors)
    output_padding_ = [
        int(size - transposed_size(q, k, s, dl, pl, ph))
        for size, q, k, s, dl, pl, ph in zip(geom.in_size, geom.out_size, geom.kernel, stride_, dilation_, lo, hi)
    ]
    out: Tensor = _conv_transpose(x, w, b, stride_, lo, hi, dilation_, groups_, output_padding_,
                                  check_method(method))
    return out


# ----------------------------------------------------------------------------- drop-in modules


class _MethodMixin(torch.nn.Module):
    """A keyword ``method=`` (default ``"auto"``) after ``torch.nn``'s own arguments, kept as ``self.method``."""

    method: str

    def __init__(self, *args: Any, method: str = "auto", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.method = check_method(method)

    def extra_repr(self) -> str:
        """``torch.nn``'s description, plus ``method=`` when it is not ``"auto"``."""
        text: str = super().extra_repr()
        return text if self.method == "auto" else f"{text}, method={self.method!r}"


class _ConvMixin(_MethodMixin, torch.nn.modules.conv._ConvNd):
    """``_conv_forward`` through :func:`conv`; everything else is ``torch.nn``'s."""

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        return conv(
            input, weight, bias, stride=self.stride, padding=self.padding, dilation=self.dilation,
            groups=self.groups, padding_mode=self.padding_mode, method=getattr(self, "method", "auto"),
        )


class _ConvTransposeMixin(_MethodMixin, torch.nn.modules.conv._ConvTransposeNd):
    """``forward(input, output_size=None)`` through :func:`conv_transpose`."""

    def forward(self, input: Tensor, output_size: Optional[list[int]] = None) -> Tensor:
        """Transposed convolution of ``input``; ``output_size`` picks the output padding."""
        return conv_transpose(
            input, self.weight, self.bias, stride=self.stride, padding=self.padding,
            output_padding=self.output_padding if output_size is None else 0, dilation=self.dilation,
            groups=self.groups, output_shape=None if output_size is None else tuple(output_size),
            method=getattr(self, "method", "auto"),
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
    >>> cgt.Conv2d(3, 4, 3, method="direct")
    Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), method='direct')
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
