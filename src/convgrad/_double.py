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
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

from ._conv import (
    Array,
    ArrayLike,
    _conj,
    as_batched,
    finish,
    forward_batched,
    input_grad_batched,
    weight_grad_batched,
)
from ._validate import (
    Geometry,
    IntOrTuple,
    PaddingArg,
    check_array,
    check_grad_output_shape,
    compute_dtype,
    conv_geometry,
    result_dtype,
    transpose_geometry,
)


class DoubleGrads(NamedTuple):
    """The second-order terms of a convolution's backward pass.

    Each is the vector-Jacobian product of ``(gx, gw, gb)`` — the first
    gradients as functions of ``(grad_output, x, w)`` — with the upstream
    gradients ``(ggx, ggw, ggb)``.

    Attributes
    ----------
    grad_output : numpy.ndarray
        With respect to the upstream gradient, shaped like ``grad_output``.
    input : numpy.ndarray
        With respect to the input, shaped like ``x``.
    weight : numpy.ndarray
        With respect to the weight, shaped like ``w``.
    """

    grad_output: Array
    input: Array
    weight: Array


def _optional(a: Optional[ArrayLike], name: str, expected: tuple[int, ...], rule: str) -> Optional[Array]:
    """Check an optional upstream gradient against the shape it must have."""
    if a is None:
        return None
    arr = check_array(a, name)
    if arr.shape != expected:
        raise ValueError(f"{name}.shape {arr.shape} must equal {rule} {expected}")
    return arr


class _Upstream(NamedTuple):
    """Batched, compute-dtype arrays for one double-backward call."""

    g: Array
    x: Array
    w: Array
    ggx: Optional[Array]
    ggw: Optional[Array]
    ggb: Optional[Array]
    dtype: np.dtype[Any]


def _prepare(
    ggx: Optional[ArrayLike],
    ggw: Optional[ArrayLike],
    ggb: Optional[ArrayLike],
    g_arr: Array,
    x_arr: Array,
    w_arr: Array,
    geom: Geometry,
    bias_size: int,
) -> _Upstream:
    ggx_arr = _optional(ggx, "ggx", x_arr.shape, "x.shape")
    ggw_arr = _optional(ggw, "ggw", w_arr.shape, "w.shape")
    ggb_arr = _optional(ggb, "ggb", (bias_size,), "(out_channels,) =")
    present = [a for a in (ggx_arr, ggw_arr, ggb_arr) if a is not None]
    dtype = result_dtype(g_arr, x_arr, w_arr, *present)
    work = compute_dtype(dtype)
    return _Upstream(
        g=as_batched(g_arr, geom).astype(work, copy=False),
        x=as_batched(x_arr, geom).astype(work, copy=False),
        w=w_arr.astype(work, copy=False),
        ggx=None if ggx_arr is None else as_batched(ggx_arr, geom).astype(work, copy=False),
        ggw=None if ggw_arr is None else ggw_arr.astype(work, copy=False),
        ggb=None if ggb_arr is None else ggb_arr.astype(work, copy=False),
        dtype=dtype,
    )


def _sum(terms: list[Array], shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
    """The sum of the present terms (broadcast to ``shape``), zeros when there is none."""
    total = np.zeros(shape, dtype=dtype)
    for term in terms:
        total += term
    return total


def _add_bias(terms: list[Array], ggb: Optional[Array], d: int) -> None:
    if ggb is not None:
        terms.append(ggb.reshape((1, -1) + (1,) * d))


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
    stride, padding, dilation, groups, padding_mode
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
    g_arr, x_arr, w_arr = check_array(grad_output, "grad_output"), check_array(x, "x"), check_array(w, "w")
    geom = conv_geometry(
        x_arr.shape, w_arr.shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
        padding_mode=padding_mode,
    )
    check_grad_output_shape(g_arr, geom.output_shape, f"x.shape {x_arr.shape}, w.shape {w_arr.shape}")
    u = _prepare(ggx, ggw, ggb, g_arr, x_arr, w_arr, geom, geom.c_out)

    # ∂/∂g: the forward map (linear in each of x and w) applied to the upstream gradients
    terms: list[Array] = []
    if u.ggx is not None:
        terms.append(forward_batched(u.ggx, u.w, geom))
    if u.ggw is not None:
        terms.append(forward_batched(u.x, u.ggw, geom))
    _add_bias(terms, u.ggb, geom.d)
    g_g = _sum(terms, u.g.shape, u.g.dtype)
    # ∂/∂x of ⟨gw, ggw⟩ = conv_input_grad(g, ggw); ∂/∂w of ⟨gx, ggx⟩ = conv_weight_grad(g, ggx)
    g_x = np.zeros_like(u.x) if u.ggw is None else input_grad_batched(u.g, _conj(u.ggw), geom)
    g_w = np.zeros_like(u.w) if u.ggx is None else weight_grad_batched(u.g, _conj(u.ggx), geom)
    return DoubleGrads(finish(g_g, geom, u.dtype), finish(g_x, geom, u.dtype), g_w.astype(u.dtype, copy=False))


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
    stride, padding, output_padding, dilation, groups, output_shape
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
    g_arr, x_arr, w_arr = check_array(grad_output, "grad_output"), check_array(x, "x"), check_array(w, "w")
    geom = transpose_geometry(
        x_arr.shape, w_arr.shape, stride=stride, padding=padding, output_padding=output_padding,
        dilation=dilation, groups=groups, output_shape=output_shape,
    )
    check_grad_output_shape(g_arr, geom.input_shape, f"x.shape {x_arr.shape}, w.shape {w_arr.shape}")
    u = _prepare(ggx, ggw, ggb, g_arr, x_arr, w_arr, geom, geom.c_in)

    # ∂/∂g: the transposed map (the forward conv's input gradient) applied to the upstream gradients
    terms: list[Array] = []
    if u.ggx is not None:
        terms.append(input_grad_batched(u.ggx, u.w, geom))
    if u.ggw is not None:
        terms.append(input_grad_batched(u.x, u.ggw, geom))
    _add_bias(terms, u.ggb, geom.d)
    g_g = _sum(terms, u.g.shape, u.g.dtype)
    # ∂/∂x of ⟨gw, ggw⟩ = conv(g, conj(ggw)); ∂/∂w of ⟨gx, ggx⟩ = the transposed weight gradient at ggx
    g_x = np.zeros_like(u.x) if u.ggw is None else forward_batched(u.g, _conj(u.ggw), geom)
    g_w = np.zeros_like(u.w) if u.ggx is None else weight_grad_batched(_conj(u.ggx), u.g, geom)
    return DoubleGrads(finish(g_g, geom, u.dtype), finish(g_x, geom, u.dtype), g_w.astype(u.dtype, copy=False))
