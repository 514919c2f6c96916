"""Second derivatives: the backward pass of the backward pass.

The gradients of a convolution are bilinear, ``gx = A_wᵀ g`` (linear in ``g``
and in ``w``), ``gw = B_xᵀ g`` (linear in ``g`` and in ``x``), ``gb = Σ g``.
Their vector-Jacobian products with upstream gradients ``(ggx, ggw, ggb)``
are therefore the same three contractions again, with the roles exchanged:

====================  ==========================================================
with respect to        is
====================  ==========================================================
``grad_output``        ``conv(ggx, w) + conv(x, ggw) + ggb``  (the forward map)
``x``                  ``conv_input_grad(g, ggw)``            (from ``gw``)
``w``                  ``conv_weight_grad(g, ggx)``           (from ``gx``)
====================  ==========================================================

For a transposed convolution the forward map and the input gradient swap
places. Complex data follow PyTorch's convention, as the first derivatives do.
Array type in = array type out, as for :func:`convgrad.conv`.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from . import engine
from ._arguments import IntOrTuple, PaddingArg
from ._conv import Array, ArrayLike, conj
from ._prepare import Prepared, prepare


class DoubleGrads(NamedTuple):
    """The second-order terms of a convolution's backward pass.

    Each is the vector-Jacobian product of ``(gx, gw, gb)`` — the first
    gradients as functions of ``(grad_output, x, w)`` — with the upstream
    gradients ``(ggx, ggw, ggb)``.

    Each is an array of the inputs' type.

    Attributes
    ----------
    grad_output : array
        With respect to the upstream gradient, shaped like ``grad_output``.
    input : array
        With respect to the input, shaped like ``x``.
    weight : array
        With respect to the weight, shaped like ``w``.
    """

    grad_output: Array
    input: Array
    weight: Array


def _sum(u: Prepared, terms: list[Array], shape: tuple[int, ...]) -> Array:
    """The sum of the present terms (broadcast to ``shape``), zeros when there is none."""
    total = u.zeros(shape)
    for term in terms:
        if u.xp is None:
            total += term
        else:
            total = total + term
    return total


def _result(u: Prepared, terms: list[Array], g_x: Array, g_w: Array) -> DoubleGrads:
    """The three terms in the result dtype, unbatched like the call."""
    g = u["grad_output"]
    return DoubleGrads(u.finish(_sum(u, terms, tuple(g.shape))), u.finish(g_x), u.finish(g_w, False))


def _add_bias(u: Prepared, terms: list[Array], ggb: Optional[Array], d: int) -> None:
    if ggb is not None:
        shape = (1, -1) + (1,) * d
        terms.append(ggb.reshape(shape) if u.xp is None else u.xp.reshape(ggb, shape))


def conv_double_backward(
    ggx: Optional[ArrayLike],
    ggw: Optional[ArrayLike],
    ggb: Optional[ArrayLike],
    grad_output: ArrayLike,
    x: ArrayLike,
    w: ArrayLike,
    /,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    input_dilation: IntOrTuple = 1,
    method: str = "auto",
) -> DoubleGrads:
    """Second-order terms of :func:`conv`: the backward pass of :func:`conv_backward`.

    With ``(gx, gw, gb) = conv_backward(grad_output, x, w)``, returns the
    gradient of ``⟨gx, ggx⟩ + ⟨gw, ggw⟩ + ⟨gb, ggb⟩`` with respect to
    ``grad_output``, ``x`` and ``w``:

    * ``grad_output``: ``conv(ggx, w) + conv(x, ggw) + ggb``;
    * ``input``:       ``conv_input_grad(grad_output, ggw)``;
    * ``weight``:      ``conv_weight_grad(grad_output, ggx)``.

    These are what ``torch.autograd.grad((gx, gw, gb), (grad_output, x, w),
    (ggx, ggw, ggb))`` returns after a ``create_graph=True`` backward: the
    Hessian-vector products used by gradient penalties and second-order
    optimisers.

    Parameters
    ----------
    ggx : array_like or None, shape=x.shape
        Upstream gradient of the input gradient; ``None`` means zero.
    ggw : array_like or None, shape=w.shape
        Upstream gradient of the weight gradient; ``None`` means zero.
    ggb : array_like or None, shape=(O,)
        Upstream gradient of the bias gradient; ``None`` means zero.
    grad_output : array_like, shape=(N, O, *Q) or (O, *Q)
        The upstream gradient of the first backward pass.
    x : array_like, shape=(N, C, *S) or (C, *S)
    w : array_like, shape=(O, C / groups, *K)
    stride, padding, dilation, groups, padding_mode, input_dilation, method
        As for :func:`conv`.

    Returns
    -------
    DoubleGrads
        ``grad_output`` shaped like ``grad_output``, ``input`` like ``x``,
        ``weight`` like ``w``.

    Raises
    ------
    ValueError, TypeError
        For inconsistent shapes, bad geometry or non-numeric dtypes, before any work.

    Notes
    -----
    ``gx`` does not depend on ``x`` and ``gw`` does not depend on ``w``, so
    ``ggx`` reaches only ``grad_output`` and ``w``, ``ggw`` only
    ``grad_output`` and ``x``, and ``ggb`` only ``grad_output``.

    Examples
    --------
    The input gradient ``gx = conv_input_grad(g, w)`` is linear in ``w``, so
    its derivative along ``ggx`` is the weight gradient of ``g`` against ``ggx``:

    >>> import numpy as np
    >>> import convgrad as cg
    >>> x, w = np.arange(4.0).reshape(1, 1, 4), np.array([[[1.0, -1.0]]])
    >>> g = np.ones((1, 1, 3))
    >>> dd = cg.conv_double_backward(np.ones((1, 1, 4)), None, None, g, x, w)
    >>> dd.weight
    array([[[3., 3.]]])
    >>> dd.grad_output  # conv(ggx, w)
    array([[[0., 0., 0.]]])
    """
    u = prepare({"ggx": ggx, "ggw": ggw, "ggb": ggb, "grad_output": grad_output, "x": x, "w": w}, native=True,
                method=method,
                stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=padding_mode,
                input_dilation=input_dilation)
    geom, m, e = u.geom, u.method, u.exact
    ggx_, ggw_, g, x_, w_ = u.get("ggx"), u.get("ggw"), u["grad_output"], u["x"], u["w"]
    # ∂/∂g: the forward map (linear in each of x and w) applied to the upstream gradients
    terms: list[Array] = []
    if ggx_ is not None:
        terms.append(engine.forward(ggx_, w_, geom, m, exact=e))
    if ggw_ is not None:
        terms.append(engine.forward(x_, ggw_, geom, m, exact=e))
    _add_bias(u, terms, u.get("ggb"), geom.d)
    # ∂/∂x of ⟨gw, ggw⟩ = conv_input_grad(g, ggw); ∂/∂w of ⟨gx, ggx⟩ = conv_weight_grad(g, ggx)
    g_x = u.zeros(tuple(x_.shape)) if ggw_ is None else engine.input_grad(g, conj(ggw_), geom, m, exact=e)
    g_w = u.zeros(tuple(w_.shape)) if ggx_ is None else engine.weight_grad(g, conj(ggx_), geom, m, exact=e)
    return _result(u, terms, g_x, g_w)


def conv_transpose_double_backward(
    ggx: Optional[ArrayLike],
    ggw: Optional[ArrayLike],
    ggb: Optional[ArrayLike],
    grad_output: ArrayLike,
    x: ArrayLike,
    w: ArrayLike,
    /,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    output_shape: Optional[tuple[int, ...]] = None,
    method: str = "auto",
) -> DoubleGrads:
    """Second-order terms of :func:`conv_transpose`: the backward pass of :func:`conv_transpose_backward`.

    With ``(gx, gw, gb) = conv_transpose_backward(grad_output, x, w)``,
    returns the gradient of ``⟨gx, ggx⟩ + ⟨gw, ggw⟩ + ⟨gb, ggb⟩`` with
    respect to ``grad_output``, ``x`` and ``w``. The roles of :func:`conv`
    and :func:`conv_input_grad` are exchanged compared with
    :func:`conv_double_backward`:

    * ``grad_output``: ``conv_transpose(ggx, w) + conv_transpose(x, ggw) + ggb``;
    * ``input``:       ``conv(grad_output, ggw)`` (``conj(ggw)`` for complex data);
    * ``weight``:      the weight gradient of ``conv_transpose`` at input
      ``ggx`` against ``grad_output``, i.e. ``conv_transpose_backward(grad_output, ggx, w).weight``.

    Parameters
    ----------
    ggx : array_like or None, shape=x.shape
        Upstream gradient of the input gradient; ``None`` means zero.
    ggw : array_like or None, shape=w.shape
        Upstream gradient of the weight gradient; ``None`` means zero.
    ggb : array_like or None, shape=(C_out,)
        Upstream gradient of the bias gradient; ``None`` means zero.
    grad_output : array_like
        Shaped like ``conv_transpose(x, w, ...)``.
    x : array_like, shape=(N, C_in, *S) or (C_in, *S)
    w : array_like, shape=(C_in, C_out / groups, *K)
    stride, padding, output_padding, dilation, groups, output_shape, method
        As for :func:`conv_transpose`.

    Returns
    -------
    DoubleGrads

    Raises
    ------
    ValueError, TypeError
        For inconsistent shapes, bad geometry or non-numeric dtypes, before any work.

    Examples
    --------
    >>> import numpy as np
    >>> import convgrad as cg
    >>> x, w = np.ones((1, 1, 2)), np.array([[[1.0, 2.0]]])
    >>> g = np.array([[[1.0, 0.0, 0.0, 1.0]]])
    >>> dd = cg.conv_transpose_double_backward(None, np.ones((1, 1, 2)), None, g, x, w, stride=2)
    >>> dd.grad_output  # conv_transpose(x, ggw)
    array([[[1., 1., 1., 1.]]])
    >>> dd.input  # conv(g, ggw)
    array([[[1., 1.]]])
    """
    u = prepare({"ggx": ggx, "ggw": ggw, "ggb": ggb, "grad_output": grad_output, "x": x, "w": w}, native=True,
                transposed=True,
                method=method, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
                groups=groups, output_shape=output_shape)
    geom, m, e = u.geom, u.method, u.exact
    ggx_, ggw_, g, x_, w_ = u.get("ggx"), u.get("ggw"), u["grad_output"], u["x"], u["w"]
    # ∂/∂g: the transposed map (the forward conv's input gradient) applied to the upstream gradients
    terms: list[Array] = []
    if ggx_ is not None:
        terms.append(engine.input_grad(ggx_, w_, geom, m, exact=e))
    if ggw_ is not None:
        terms.append(engine.input_grad(x_, ggw_, geom, m, exact=e))
    _add_bias(u, terms, u.get("ggb"), geom.d)
    # ∂/∂x of ⟨gw, ggw⟩ = conv(g, conj(ggw)); ∂/∂w of ⟨gx, ggx⟩ = the transposed weight gradient at ggx
    g_x = u.zeros(tuple(x_.shape)) if ggw_ is None else engine.forward(g, conj(ggw_), geom, m, exact=e)
    g_w = u.zeros(tuple(w_.shape)) if ggx_ is None else engine.weight_grad(conj(ggx_), g, geom, m, exact=e)
    return _result(u, terms, g_x, g_w)
