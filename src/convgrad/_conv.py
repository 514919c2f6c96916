"""The public convolution API: ``conv``, its three gradients, ``conv_backward`` and ``conv_output_shape``.

Notation (see the README's glossary): ``x (N, C, *S)``, ``w (O, C/G, *K)``,
``y (N, O, *Q)``, ``g`` the upstream gradient shaped like ``y``; ``U`` the
windows of the padded input, ``U[n, c, q, k] = pad(x)[n, c, q·s + k·δ]``.
Every function checks its arguments with :func:`convgrad._prepare.prepare`
and hands the arithmetic to :mod:`convgrad.engine`.

Array type in = array type out: NumPy arrays (and lists) give NumPy arrays
from the tuned routes; CuPy arrays, torch tensors (CPU or CUDA),
``array_api_strict`` and JAX arrays give arrays of their own type on their
own device, computed by the generic array-API route (extra
``convgrad[array-api]``); Dask arrays give lazy Dask arrays, computed block
by block (:mod:`convgrad.dask`, extra ``convgrad[dask]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Optional

import numpy as np
import numpy.typing as npt

from . import _namespace, engine
from ._arguments import IntOrTuple, PaddingArg, check_array, compute_dtype, normalize_shape, result_dtype
from ._geometry import conv_geometry
from ._namespace import conj, is_foreign
from ._prepare import Prepared, prepare

ArrayLike = npt.ArrayLike
Array = npt.NDArray[Any]


class Grads(NamedTuple):
    """The three gradients of a convolution.

    Each is an array of the inputs' type (a NumPy array for NumPy inputs, a
    tensor on the inputs' device for torch tensors, ...).

    Attributes
    ----------
    input : array
        Gradient with respect to the input, shaped like ``x``.
    weight : array
        Gradient with respect to the weight, shaped like ``w``.
    bias : array
        Gradient with respect to the bias, shape ``(out_channels,)``.
    """

    input: Array
    weight: Array
    bias: Array


__all__ = ["Grads", "conj", "conv", "conv_backward", "conv_bias_grad", "conv_input_grad", "conv_output_shape",
           "conv_weight_grad", "with_bias"]


def with_bias(contraction: Callable[..., Array], p: Prepared, a: str = "x") -> Array:
    """``contraction(p[a], p["w"]) + b`` in the compute dtype, returned in the result dtype (``conv``, transposed)."""
    b = p.get("b")
    if b is not None and contraction is engine.forward and p.xp is None:  # NumPy: the bias may join the GEMM
        return p.finish(engine.forward_bias(p[a], p["w"], b, p.geom, p.method, exact=p.exact))
    y = contraction(p[a], p["w"], p.geom, p.method, exact=p.exact)
    if b is not None:
        y = p.add_bias(y, b)
    return p.finish(y)


# ----------------------------------------------------------------------------- the public API


def conv_output_shape(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    input_dilation: IntOrTuple = 1,
) -> tuple[int, ...]:
    """Shape of ``conv(x, w)`` for ``x.shape == input_shape``, ``w.shape == weight_shape``.

    Per spatial dimension ``Q = floor((S + l + h − δ·(K − 1) − 1) / s) + 1``
    (Dumoulin & Visin, arXiv:1603.07285, relationship 15). The number of
    groups is ``input_shape[1] / weight_shape[1]``.

    Parameters
    ----------
    input_shape : tuple of int
        ``(N, C, *S)``, or ``(C, *S)`` unbatched.
    weight_shape : tuple of int
        ``(O, C / groups, *K)``.
    stride, padding, dilation, input_dilation
        As for :func:`conv`.

    Returns
    -------
    tuple of int
        ``(N, O, *Q)``, or ``(O, *Q)`` unbatched.

    Raises
    ------
    ValueError
        For inconsistent shapes or an output size below 1.

    Examples
    --------
    >>> import convgrad as cg
    >>> cg.conv_output_shape((8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)
    (8, 64, 112, 112)
    >>> cg.conv_output_shape((1, 6, 5), (3, 2, 3), padding=((2, 0),))  # groups = 6 / 2
    (1, 3, 5)
    """
    input_shape = normalize_shape(input_shape, "input_shape")
    weight_shape = normalize_shape(weight_shape, "weight_shape")
    groups = 1
    if len(weight_shape) >= 3 and len(input_shape) in (len(weight_shape), len(weight_shape) - 1):
        c_in = input_shape[-len(weight_shape) + 1]
        if weight_shape[1] > 0 and c_in % weight_shape[1] == 0 and c_in // weight_shape[1] > 0:
            groups = c_in // weight_shape[1]
    geom = conv_geometry(
        input_shape,
        weight_shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        input_dilation=input_dilation,
        groups=groups,
        x_name="input_shape",
        w_name="weight_shape",
    )
    return geom.output_shape


def conv(
    x: ArrayLike,
    w: ArrayLike,
    b: Optional[ArrayLike] = None,
    /,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    input_dilation: IntOrTuple = 1,
    method: str = "auto",
) -> Array:
    """N-dimensional convolution (cross-correlation), as ``torch.nn.functional.conv*d``.

    ``y[n, o, q] = b[o] + Σ_{c, k} pad(x)[n, γ(o)·C/G + c, q·s + k·δ] · w[o, c, k]``
    — a cross-correlation: the kernel is not flipped.

    Parameters
    ----------
    x : array_like, shape=(N, C, *S) or (C, *S)
        Input; the number of spatial dimensions ``d = w.ndim − 2`` is any ``d ≥ 1``.
    w : array_like, shape=(O, C / groups, *K)
        Weight.
    b : array_like, shape=(O,), optional
        Bias.
    stride, dilation : int or tuple of d ints, each ≥ 1
    padding : int, tuple of d ints, tuple of d (before, after) pairs, "valid" or "same"
        ``"same"`` pads ``dilation·(K − 1)`` in total, the odd one after
        (stride 1 only, as PyTorch). ``(before, after)`` pairs may be
        negative: the input is cropped (as JAX allows; zero padding only).
    groups : int
        Must divide both ``C`` and ``O``.
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        How the border is filled (``torch.nn.Conv*d`` semantics).
    input_dilation : int or tuple of d ints, each ≥ 1
        ``a − 1`` zeros between the input's entries before padding (JAX's
        ``lhs_dilation``; zero padding only): the window reads
        ``pad(dilate(x, a))[q·s + k·δ]``. Default 1. The inserted zeros are
        never multiplied (:mod:`convgrad.engine.phases`).
    method : {"auto", "direct", "fft", "winograd"}
        How it is computed, not what: ``"direct"`` sums over the kernel
        offsets (im2col + GEMM, or the pointwise / depthwise routes, compiled
        with ``convgrad[jit]``); ``"fft"`` multiplies transforms block by
        block (overlap-save), which is faster for large kernels and agrees to
        rounding; ``"winograd"`` uses Winograd's minimal filtering where it
        applies (3×3 and 3×3×3 stride-1 layers, ``groups=1``, finite
        floating data; elsewhere the direct routes); ``"auto"`` (default)
        picks the route with the lowest estimated cost, as
        ``scipy.signal.choose_conv_method`` does, Winograd only where its
        measured float32 error is within 10× the direct route's. See the
        performance page for the rules and their measured constants.

    Returns
    -------
    numpy.ndarray, shape=(N, O, *Q) or (O, *Q)
        A new array; ``Q`` is given by :func:`conv_output_shape`. The dtype is
        NumPy's promotion of the inputs, with integers and bools promoted to
        float64 and float16 computed in float32 and returned as float16.

    Raises
    ------
    ValueError, TypeError
        For inconsistent shapes, bad geometry or non-numeric dtypes, before any work.

    Notes
    -----
    Complex inputs are supported without conjugation in the forward pass, as
    in PyTorch. The batch is processed in chunks so that the im2col workspace
    stays within :func:`get_workspace_budget`.

    Examples
    --------
    A 5-sample signal under a 3-tap kernel, padded by one:

    >>> import numpy as np
    >>> import convgrad as cg
    >>> x = np.arange(10.0, 15.0).reshape(1, 1, 5)
    >>> w = np.array([[[1.0, 2.0, -1.0]]])
    >>> cg.conv(x, w, padding=1)
    array([[[ 9., 20., 22., 24., 41.]]])
    """
    p = prepare({"x": x, "w": w, "b": b}, native=True, method=method, stride=stride, padding=padding, dilation=dilation,
                groups=groups, padding_mode=padding_mode,
                input_dilation=input_dilation)
    return with_bias(engine.forward, p)


def conv_input_grad(
    grad_output: ArrayLike,
    w: ArrayLike,
    /,
    *,
    input_shape: tuple[int, ...],
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    input_dilation: IntOrTuple = 1,
    method: str = "auto",
) -> Array:
    """Gradient of :func:`conv` with respect to its input.

    ``gx = pad_adjoint(fold(Z))`` with ``Z[n, c, q, k] = Σ_{o ∈ γ(c)} g[n, o, q] · conj(w[o, c, k])``:
    every output gradient is spread back over the window it was computed
    from. This is exactly :func:`conv_transpose` of ``grad_output`` with the
    same ``w`` (for real data) and the ``output_padding`` that recovers
    ``input_shape``.

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *Q) or (O, *Q)
        Upstream gradient; must have the forward output's shape.
    w : array_like, shape=(O, C / groups, *K)
        The weight of the forward convolution.
    input_shape : tuple of int
        Shape of the forward input ``x``. It is needed because, with stride
        > 1, several input sizes give the same output size.
    stride, padding, dilation, groups, padding_mode, input_dilation, method
        As for :func:`conv`.

    Returns
    -------
    numpy.ndarray, shape=input_shape

    Examples
    --------
    A 6×5 image under a 3×3 Sobel kernel, loss ``y.sum()``:

    >>> import numpy as np
    >>> import convgrad as cg
    >>> w = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]]).reshape(1, 1, 3, 3)
    >>> cg.conv_input_grad(np.ones((1, 1, 4, 3)), w, input_shape=(1, 1, 6, 5))[0, 0]
    array([[ 1.,  1.,  0., -1., -1.],
           [ 3.,  3.,  0., -3., -3.],
           [ 4.,  4.,  0., -4., -4.],
           [ 4.,  4.,  0., -4., -4.],
           [ 3.,  3.,  0., -3., -3.],
           [ 1.,  1.,  0., -1., -1.]])
    """
    p = prepare({"grad_output": grad_output, "w": w}, native=True, input_shape=input_shape, method=method,
                stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=padding_mode,
                input_dilation=input_dilation)
    return p.finish(engine.input_grad(p["grad_output"], conj(p["w"]), p.geom, p.method, exact=p.exact))


def conv_weight_grad(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    *,
    weight_shape: tuple[int, ...],
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    input_dilation: IntOrTuple = 1,
    method: str = "auto",
) -> Array:
    """Gradient of :func:`conv` with respect to its weight.

    ``gw[o, c, k] = Σ_{n, q} g[n, o, q] · conj(U[n, γ(o)·C/G + c, q, k])``: each
    weight sees every window it was multiplied with, weighted by the output
    gradient there.

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *Q) or (O, *Q)
        Upstream gradient; must have the forward output's shape.
    x : array_like, shape=(N, C, *S) or (C, *S)
        The forward input.
    weight_shape : tuple of int
        ``(O, C / groups, *K)``: the kernel size is not implied by the other shapes.
    stride, padding, dilation, groups, padding_mode, input_dilation, method
        As for :func:`conv`.

    Returns
    -------
    numpy.ndarray, shape=weight_shape

    Examples
    --------
    A 6×5 image under a 3×3 kernel, loss ``y.sum()``:

    >>> import numpy as np
    >>> import convgrad as cg
    >>> x = np.array([[1, 1, 1, 2, 3], [1, 1, 1, 2, 3], [1, 1, 1, 2, 3],
    ...               [2, 2, 2, 2, 3], [3, 3, 3, 3, 3], [4, 4, 4, 4, 4]]).reshape(1, 1, 6, 5)
    >>> cg.conv_weight_grad(np.ones((1, 1, 4, 3)), x, weight_shape=(1, 1, 3, 3))[0, 0]
    array([[15., 18., 25.],
           [21., 23., 28.],
           [30., 31., 34.]])
    """
    p = prepare({"grad_output": grad_output, "x": x}, native=True, weight_shape=weight_shape, method=method,
                stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=padding_mode,
                input_dilation=input_dilation)
    gw = engine.weight_grad(p["grad_output"], conj(p["x"]), p.geom, p.method, exact=p.exact)
    return p.finish(gw, batched_like_input=False)


def conv_bias_grad(grad_output: ArrayLike, /, *, unbatched: bool = False) -> Array:
    """Gradient of :func:`conv` with respect to its bias: ``gb[o] = Σ_{n, q} g[n, o, q]``.

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *Q), or (O, *Q) with ``unbatched=True``
    unbatched : bool
        Whether ``grad_output`` has no batch axis.

    Returns
    -------
    numpy.ndarray, shape=(O,)

    Examples
    --------
    A 3×3 image under a 2×2 kernel: the bias gradient of ``y.sum()`` counts the output elements.

    >>> import numpy as np
    >>> import convgrad as cg
    >>> cg.conv_bias_grad(np.ones((1, 1, 2, 2)))
    array([4.])
    """
    if type(grad_output) is not np.ndarray and is_foreign(grad_output):
        return _foreign_bias_grad(grad_output, unbatched)
    g_arr = check_array(grad_output, "grad_output")
    minimum = 2 if unbatched else 3
    if g_arr.ndim < minimum:
        raise ValueError(
            f"grad_output must have at least {minimum} dimensions "
            f"({'(O, *Q)' if unbatched else '(N, O, *Q)'}); got shape {g_arr.shape}"
        )
    dtype = result_dtype(g_arr)
    g_b = g_arr[np.newaxis] if unbatched else g_arr
    return engine.bias_grad(g_b.astype(compute_dtype(dtype), copy=False)).astype(dtype, copy=False)


def _foreign_bias_grad(grad_output: Any, unbatched: bool) -> Array:
    """:func:`conv_bias_grad` for another library's array, summed in its namespace."""
    ns = _namespace.namespace_of({"grad_output": grad_output})
    xp, g = ns.xp, grad_output
    if hasattr(g, "detach") and type(g).__module__.startswith("torch"):
        g = g.detach()
    minimum = 2 if unbatched else 3
    if g.ndim < minimum:
        raise ValueError(
            f"grad_output must have at least {minimum} dimensions "
            f"({'(O, *Q)' if unbatched else '(N, O, *Q)'}); got shape {tuple(g.shape)}"
        )
    if not xp.isdtype(g.dtype, ("bool", "integral", "real floating", "complex floating")):
        raise TypeError(f"grad_output must have a numeric dtype (bool, integer, floating or complex); got {g.dtype}")
    dtype = _namespace.float64_or_default(xp, ns.device) if xp.isdtype(g.dtype, ("bool", "integral")) else g.dtype
    g_b = xp.expand_dims(g, axis=0) if unbatched else g
    gb = engine.bias_grad(xp.astype(g_b, _namespace.compute_dtype(xp, dtype), copy=False))
    return xp.astype(gb, dtype, copy=False)  # type: ignore[no-any-return]


def conv_backward(
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
) -> Grads:
    """All three gradients of :func:`conv`: ``Grads(input, weight, bias)``.

    The same numbers as ``torch.autograd.grad(y, (x, w, b), grad_output)``
    for ``y = torch.nn.functional.conv*d(x, w, b, ...)``. For complex data the
    gradients follow PyTorch's convention (conjugate Wirtinger:
    ``gx = conv_input_grad(g, conj(w))``).

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *Q) or (O, *Q)
        Upstream gradient ``∂L/∂y``.
    x : array_like, shape=(N, C, *S) or (C, *S)
    w : array_like, shape=(O, C / groups, *K)
    stride, padding, dilation, groups, padding_mode, input_dilation, method
        As for :func:`conv`.

    Returns
    -------
    Grads
        ``input`` shaped like ``x``, ``weight`` like ``w``, ``bias`` ``(O,)``
        (computed whether or not the forward pass had a bias).

    Examples
    --------
    >>> import numpy as np
    >>> import convgrad as cg
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.array([[[[1.0, 0.0], [0.0, 1.0]]]])
    >>> grads = cg.conv_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> grads.weight[0, 0]
    array([[ 8., 12.],
           [20., 24.]])
    >>> grads.bias
    array([4.])
    """
    p = prepare({"grad_output": grad_output, "x": x, "w": w}, native=True, method=method, stride=stride,
                padding=padding, dilation=dilation, groups=groups, padding_mode=padding_mode,
                input_dilation=input_dilation)
    g, geom = p["grad_output"], p.geom
    fused = engine.backward(g, p["x"], p["w"], geom, p.method, exact=p.exact)  # depthwise: one pass over g
    if fused is not None:
        gx, gw, gb = fused
    else:
        gx = engine.input_grad(g, conj(p["w"]), geom, p.method, exact=p.exact)
        gw = engine.weight_grad(g, conj(p["x"]), geom, p.method, exact=p.exact)
        gb = engine.bias_grad(g, blas=engine.bias_by_blas(g, p.geom, p.method))
    return Grads(p.finish(gx), p.finish(gw, False), p.finish(gb, False))
