"""Transposed convolution: the core's three contractions with the roles exchanged.

PyTorch's transposed weight ``(C_in, C_out / G, *K)`` is exactly the weight of
the forward convolution the transposed convolution is the adjoint of (that
convolution maps ``C_out`` channels to ``C_in``). So, with ``A`` that forward
convolution:

* ``conv_transpose(x, w) = Aᵀ x``        — the core's input gradient;
* its input gradient      ``= A g``      — the core's forward convolution;
* its weight gradient                     — the core's weight gradient with
  ``x`` as the upstream gradient and ``g`` as the input.

Array type in = array type out, as for :func:`convgrad.conv`.
"""

from __future__ import annotations

from typing import Optional

from . import engine
from ._arguments import IntOrTuple, PaddingArg, normalize_shape
from ._conv import Array, ArrayLike, Grads, conj, with_bias
from ._geometry import transpose_geometry
from ._prepare import prepare


def conv_transpose_output_shape(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> tuple[int, ...]:
    """Shape of ``conv_transpose(x, w)``.

    Per spatial dimension ``(S − 1)·s − l − h + δ·(K − 1) + a + 1``, with
    ``a`` the output padding (Dumoulin & Visin, arXiv:1603.07285,
    relationship 14 and its dilated form).

    Parameters
    ----------
    input_shape : tuple of int
        ``(N, C_in, *S)`` or ``(C_in, *S)``.
    weight_shape : tuple of int
        ``(C_in, C_out / groups, *K)``.
    stride, padding, output_padding, dilation, groups
        As for :func:`conv_transpose`.

    Returns
    -------
    tuple of int
        ``(N, C_out, *out)`` or ``(C_out, *out)``.

    Examples
    --------
    >>> import convgrad as cg
    >>> cg.conv_transpose_output_shape((8, 128, 28, 28), (128, 64, 4, 4), stride=2, padding=1)
    (8, 64, 56, 56)
    """
    geom = transpose_geometry(
        normalize_shape(input_shape, "input_shape"), normalize_shape(weight_shape, "weight_shape"),
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups,
        x_name="input_shape", w_name="weight_shape",
    )
    return geom.input_shape


def conv_transpose(
    x: ArrayLike,
    w: ArrayLike,
    b: Optional[ArrayLike] = None,
    /,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    output_shape: Optional[tuple[int, ...]] = None,
    method: str = "auto",
) -> Array:
    """N-dimensional transposed convolution, as ``torch.nn.functional.conv_transpose*d``.

    ``y = conv_input_grad(x, w, input_shape=y.shape, ...) + b`` for real data:
    the transposed convolution *is* the input gradient of the forward
    convolution with weight ``w`` (and no second kernel computes it). Each
    input element scatters a copy of the kernel, scaled by its value, into
    the output at ``q·s − l + k·δ``.

    Parameters
    ----------
    x : array_like, shape=(N, C_in, *S) or (C_in, *S)
    w : array_like, shape=(C_in, C_out / groups, *K)
    b : array_like, shape=(C_out,), optional
    stride, dilation : int or tuple of d ints, each ≥ 1
    padding : int, tuple of d ints, or tuple of d (before, after) pairs
        Removed from the output's borders.
    output_padding : int or tuple of d ints
        Added to the output's far end; each must be ``< max(stride, dilation)``.
    groups : int
    output_shape : tuple of int, optional
        The wanted output size (spatial sizes or the full shape), as
        ``ConvTranspose*d``'s ``output_size``; derives ``output_padding``.
    method : {"auto", "direct", "fft", "winograd"}
        How it is computed, as for :func:`convgrad.conv`.

    Returns
    -------
    array, shape=(N, C_out, *out) or (C_out, *out)
        Of ``x``'s type and device (a NumPy array for NumPy inputs); see
        :func:`conv_transpose_output_shape`.

    Examples
    --------
    The gradient footprint of one input element of a 5-sample signal under a 3-tap kernel.

    >>> import numpy as np
    >>> import convgrad as cg
    >>> delta = np.zeros((1, 1, 5)); delta[0, 0, 2] = 1.0
    >>> cg.conv_transpose(delta, np.array([[[-1.0, 2.0, 1.0]]]), padding=1)
    array([[[ 0., -1.,  2.,  1.,  0.]]])
    """
    p = prepare({"x": x, "w": w, "b": b}, native=True, transposed=True, method=method, stride=stride, padding=padding,
                output_padding=output_padding, dilation=dilation, groups=groups, output_shape=output_shape)
    return with_bias(engine.input_grad, p)


def conv_transpose_backward(
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
) -> Grads:
    """All three gradients of :func:`conv_transpose`: ``Grads(input, weight, bias)``.

    * input:  ``conv(grad_output, conj(w))`` with the same stride, padding,
      dilation and groups — a forward convolution;
    * weight: the core's weight gradient with the roles exchanged,
      ``gw[i, o, k] = Σ_{n, q} conj(x[n, i, q]) · pad(g)[n, o, q·s + k·δ]``;
    * bias:   ``grad_output`` summed over batch and space.

    Parameters
    ----------
    grad_output : array_like
        Shaped like ``conv_transpose(x, w, ...)``.
    x, w, stride, padding, output_padding, dilation, groups, output_shape, method
        As for :func:`conv_transpose`.

    Returns
    -------
    Grads

    Examples
    --------
    >>> import numpy as np
    >>> import convgrad as cg
    >>> x, w = np.ones((1, 1, 2)), np.array([[[1.0, 2.0]]])
    >>> cg.conv_transpose(x, w, stride=2)
    array([[[1., 2., 1., 2.]]])
    >>> g = cg.conv_transpose_backward(np.array([[[1.0, 0.0, 0.0, 1.0]]]), x, w, stride=2)
    >>> g.input, g.weight
    (array([[[1., 2.]]]), array([[[1., 1.]]]))
    """
    p = prepare({"grad_output": grad_output, "x": x, "w": w}, native=True, transposed=True, method=method,
                stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups,
                output_shape=output_shape)
    g, geom = p["grad_output"], p.geom
    gx = engine.forward(g, conj(p["w"]), geom, p.method, exact=p.exact)
    gw = engine.weight_grad(conj(p["x"]), g, geom, p.method, exact=p.exact)
    gb = engine.bias_grad(g, blas=engine.bias_by_blas(g, p.geom, p.method))
    return Grads(p.finish(gx), p.finish(gw, False), p.finish(gb, False))

