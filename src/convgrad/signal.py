"""SciPy's ``correlate`` / ``convolve`` conventions, with exact gradients.

``convgrad.signal.correlate`` and ``convgrad.signal.convolve`` return what
``scipy.signal.correlate`` and ``scipy.signal.convolve`` return, for N-d arrays
and the three modes ``"full"``, ``"same"`` and ``"valid"``; ``*_backward``
gives the gradient with respect to both operands. Nothing here computes a
convolution of its own: every result is one call of the core's
:func:`convgrad.conv`, :func:`convgrad.conv_input_grad` or
:func:`convgrad.conv_weight_grad` on a ``(1, 1, *shape)`` view, with the
zero padding that reproduces SciPy's output window. ``method`` is passed to
the core: as in SciPy it chooses how the result is computed (``"direct"``
sums, ``"fft"`` transforms, ``"auto"`` the cheaper), never what it is.

The three modes as zero padding of ``in1`` (``K`` = ``in2.shape`` per axis), then
an unpadded cross-correlation:

=========  ==================================  ===========================
mode       padding (before, after)             output size
=========  ==================================  ===========================
``full``   ``(K − 1, K − 1)``                  ``S + K − 1``
``same``   ``(K // 2, (K − 1) // 2)``          ``S`` (the size of ``in1``)
``valid``  ``(0, 0)``                          ``max(S, K) − min(S, K) + 1``
=========  ==================================  ===========================

SciPy's ``"same"`` is the centre of the full output starting at ``(K − 1) // 2``,
so for an even kernel the extra zero goes *before* the signal — PyTorch's
``padding="same"`` puts it after. In ``"valid"`` mode one operand must be at
least as large as the other in every axis; when ``in2`` is the larger one, SciPy
exchanges the operands, and so does this module (for ``correlate`` that
reverses the output: ``correlate(a, b)`` is ``correlate(b, a)`` reversed).

A hand-written ``convolve2d_gradient`` (3×3 image, 2×2 kernel)
--------------------------------------------------------------
A worked example people wrote computes, for ``L = sum(d * convolve2d(x, w, mode="valid"))``,
``dx = convolve2d(d, rot180(w), "full")[:H, :W]`` and
``dw = convolve2d(rot180(x), d, "valid")`` and prints ``dx = [[1, 2, 0], [3, 5, 2],
[0, 3, 4]]``, ``dw = [[77, 67], [47, 37]]``. Both numbers are the true gradients,
and the two formulas are right in general for a *true convolution* whose input
is at least as large as its kernel (the ``[:H, :W]`` crop never removes
anything there). They are wrong in two cases the example does not show:

* for a cross-correlation forward pass (``correlate2d``, ``tf.nn.conv2d``,
  ``torch.nn.functional.conv2d``) both are rotated by 180°: the true gradients
  are ``convolve2d(d, w, "full")`` and ``correlate2d(x, d, "valid")``. The
  example hides it for ``dx`` because its ``w`` equals its own 180° rotation;
  its ``dw`` would be ``[[37, 47], [67, 77]]``;
* when ``w`` is larger than ``x``, SciPy's ``"valid"`` mode exchanges the
  operands, and that example's ``dx`` and ``dw`` are wrong in value and in shape
  (for ``x`` 2×2, ``w`` 3×3 its ``dw`` is 1×1).

:func:`convolve_backward` computes the right gradients in every case.

Integer and boolean inputs reach the core as they are and follow its rule:
they are never sent to the FFT (whatever ``method``), so their sums are exact
while they stay below 2**53, and are returned as float64 (SciPy keeps integer
outputs integer): an integer image and kernel give exactly SciPy's direct
result. Complex inputs are supported by :func:`correlate` and :func:`convolve`
(``in2`` is conjugated by ``correlate``, as SciPy does); the gradients are for
real data.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._arguments import Shape, check_array, check_method, same_padding
from ._conv import Array, ArrayLike, conj
from ._conv import conv as _conv
from ._conv import conv_input_grad as _input_grad
from ._conv import conv_weight_grad as _weight_grad
from ._geometry import out_size

__all__ = [
    "SignalGrads",
    "convolve",
    "convolve_backward",
    "convolve_batched",
    "convolve_batched_backward",
    "correlate",
    "correlate_backward",
    "correlate_batched",
    "correlate_batched_backward",
]


def __dir__() -> list[str]:
    return sorted(__all__)


_MODES = ("full", "same", "valid")

Pads = tuple[tuple[int, int], ...]


class SignalGrads(NamedTuple):
    """The gradients of ``L`` with respect to the two operands.

    Attributes
    ----------
    in1 : numpy.ndarray
        ``∂L/∂in1``, shaped like ``in1`` (for the batched forms: like ``x``).
    in2 : numpy.ndarray
        ``∂L/∂in2``, shaped like ``in2`` (for the batched forms: like ``w``).
    """

    in1: Array
    in2: Array


# ----------------------------------------------------------------------------- modes as padding


def _check_mode(mode: object, method: object) -> str:
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}; got {mode!r}")
    check_method(method)
    return mode


def _mode_padding(mode: str, kernel: Shape) -> Pads:
    """Zero padding of the signal that gives SciPy's output window.

    ``"same"`` centres as SciPy does: the core's :func:`same_padding` of the
    kernel, mirrored (the odd element before, where PyTorch puts it after).
    """
    if mode == "full":
        return tuple((k - 1, k - 1) for k in kernel)
    if mode == "same":
        after, before = same_padding(kernel, (1,) * len(kernel))
        return tuple(zip(before, after))
    return tuple((0, 0) for _ in kernel)


def _valid_swap(shape1: Shape, shape2: Shape, name1: str, name2: str) -> bool:
    """SciPy's rule: in "valid" mode one operand must cover the other; swap when it is ``in2``."""
    first_larger = all(a >= b for a, b in zip(shape1, shape2, strict=True))
    second_larger = all(b >= a for a, b in zip(shape1, shape2, strict=True))
    if not (first_larger or second_larger):
        raise ValueError(
            f"mode='valid' needs one operand at least as large as the other in every dimension; "
            f"got {name1}.shape {shape1} and {name2}.shape {shape2}"
        )
    return not first_larger


def _flip(a: Array, axes: tuple[int, ...]) -> Array:
    return np.flip(a, axis=axes) if axes else a


def _pair(in1: ArrayLike, in2: ArrayLike) -> tuple[Array, Array]:
    """The two operands as arrays (integers stay integers, so that the core computes them exactly)."""
    a, b = check_array(in1, "in1"), check_array(in2, "in2")
    if a.ndim != b.ndim:
        raise ValueError(
            f"in1 and in2 must have the same number of dimensions; got in1.ndim={a.ndim} "
            f"(shape {a.shape}) and in2.ndim={b.ndim} (shape {b.shape})"
        )
    for name, arr in (("in1", a), ("in2", b)):
        if arr.size == 0:
            raise ValueError(f"{name} must not be empty; got shape {arr.shape}")
    return a, b


def _as_signal(a: Array) -> Array:
    """``(*S)`` -> ``(1, 1, *S)`` (a 0-d array counts as one sample in one dimension)."""
    return a.reshape((1, 1) + (a.shape or (1,)))


def _check_real(arrays: dict[str, Array]) -> None:
    for name, arr in arrays.items():
        if arr.dtype.kind == "c":
            raise TypeError(
                f"{name} must be real (bool, integer or floating) for the gradient; got dtype {arr.dtype}"
            )


# ----------------------------------------------------------------------------- one cross-correlation, both operands


class _Window(NamedTuple):
    """SciPy's ``mode`` for ``(1, 1, *S)`` operands: which is the signal, its padding, the output size."""

    swapped: bool
    """``"valid"`` with ``b`` covering ``a``: SciPy correlates ``b`` with ``a`` and reverses the result."""
    signal: Array
    kernel: Array
    pads: Pads
    out_shape: Shape


def _window(a: Array, b: Array, mode: str) -> _Window:
    sa, sb = _as_signal(a), _as_signal(b)
    swapped = mode == "valid" and _valid_swap(sa.shape[2:], sb.shape[2:], "in1", "in2")
    signal, kernel = (sb, sa) if swapped else (sa, sb)
    pads = _mode_padding(mode, kernel.shape[2:])
    out_shape = tuple(out_size(s, k, lo=lo, hi=hi) for s, k, (lo, hi) in zip(signal.shape[2:], kernel.shape[2:], pads))
    return _Window(swapped, signal, kernel, pads, out_shape)


def _spatial_axes(a: Array) -> tuple[int, ...]:
    return tuple(range(2, a.ndim))


def _xcorr(a: Array, b: Array, mode: str, method: str) -> Array:
    """``Σ_k pad(a)[q + k] · b[k]`` in SciPy's window, no conjugation; shape as SciPy's."""
    win = _window(a, b, mode)
    y = _conv(win.signal, win.kernel, padding=win.pads, method=method)
    y = _flip(y, _spatial_axes(y)) if win.swapped else y
    return y.reshape(win.out_shape if a.shape else ())


def _xcorr_backward(g: Array, a: Array, b: Array, mode: str, method: str) -> SignalGrads:
    """Gradients of ``sum(g · _xcorr(a, b, mode))`` with respect to ``a`` and ``b``."""
    win = _window(a, b, mode)
    expected = win.out_shape if a.shape else ()
    if g.shape != expected:
        raise ValueError(
            f"grad_output.shape {g.shape} must equal the forward output shape {expected} "
            f"(in1.shape {a.shape}, in2.shape {b.shape}, mode={mode!r})"
        )
    sg = g.reshape((1, 1, *win.out_shape))
    sg = _flip(sg, _spatial_axes(sg)) if win.swapped else sg
    g_signal = _input_grad(sg, win.kernel, input_shape=win.signal.shape, padding=win.pads, method=method)
    g_kernel = _weight_grad(sg, win.signal, weight_shape=win.kernel.shape, padding=win.pads, method=method)
    ga, gb = (g_kernel, g_signal) if win.swapped else (g_signal, g_kernel)
    return SignalGrads(ga.reshape(a.shape), gb.reshape(b.shape))


# ----------------------------------------------------------------------------- scipy.signal.correlate / convolve


def correlate(in1: ArrayLike, in2: ArrayLike, /, mode: str = "full", method: str = "auto") -> Array:
    """Cross-correlate two N-d arrays, as ``scipy.signal.correlate``.

    ``z[q] = Σ_k pad(in1)[q + k] · conj(in2[k])`` over the output window that
    ``mode`` selects (module docstring): the kernel is not flipped.

    Parameters
    ----------
    in1 : array_like, shape=S
        First input (the signal).
    in2 : array_like, shape=K
        Second input; the same number of dimensions as ``in1``.
    mode : {"full", "same", "valid"}
        ``"full"``: every overlap, ``S + K − 1``; ``"same"``: the size of ``in1``,
        centred as SciPy centres it; ``"valid"``: only complete overlaps
        (one operand must be at least as large as the other in every axis).
    method : {"auto", "direct", "fft", "winograd"}
        How it is computed, as in SciPy: ``"direct"`` sums, ``"fft"`` uses
        transforms (equal to rounding), ``"auto"`` picks the cheaper
        (:func:`convgrad.conv`'s ``method``).

    Returns
    -------
    numpy.ndarray
        A new array. Integers and bools give exact float64 results.

    Raises
    ------
    ValueError
        For an unknown ``mode`` or ``method``, operands of different
        dimensionality, empty operands, or ``"valid"`` operands neither of
        which covers the other.
    TypeError
        For non-numeric data.

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import signal
    >>> signal.correlate(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]))
    array([0.5, 2. , 3.5, 3. , 0. ])

    SciPy's ``"same"`` window for an even kernel starts one sample early
    (PyTorch's ``padding="same"`` would give ``[1., 2., 3., 4.]`` here):

    >>> signal.correlate(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 0.0]), mode="same")
    array([0., 1., 2., 3.])
    """
    m = _check_mode(mode, method)
    a, b = _pair(in1, in2)
    return _xcorr(a, conj(b), m, method)


def convolve(in1: ArrayLike, in2: ArrayLike, /, mode: str = "full", method: str = "auto") -> Array:
    """Convolve two N-d arrays, as ``scipy.signal.convolve``.

    ``z[q] = Σ_k pad(in1)[q + k] · in2[K − 1 − k]``: a cross-correlation with
    the kernel flipped in every axis, over the window ``mode`` selects.

    Parameters
    ----------
    in1 : array_like, shape=S
    in2 : array_like, shape=K
        Same number of dimensions as ``in1``.
    mode : {"full", "same", "valid"}
        As for :func:`correlate`; in ``"valid"`` mode the larger operand is
        used as the signal (convolution is commutative).
    method : {"auto", "direct", "fft", "winograd"}
        As for :func:`correlate`.

    Returns
    -------
    numpy.ndarray
        A new array. Integers and bools give exact float64 results.

    Raises
    ------
    ValueError, TypeError
        As for :func:`correlate`.

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import signal
    >>> signal.convolve(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]))
    array([0. , 1. , 2.5, 4. , 1.5])
    >>> x = np.arange(1, 10).reshape(3, 3)
    >>> signal.convolve(x, np.array([[1, 0], [0, 1]]), mode="valid")
    array([[ 6.,  8.],
           [12., 14.]])
    """
    m = _check_mode(mode, method)
    a, b = _pair(in1, in2)
    return _xcorr(a, _flip(b, tuple(range(b.ndim))), m, method)


def correlate_backward(
    grad_output: ArrayLike, in1: ArrayLike, in2: ArrayLike, /, mode: str = "full", method: str = "auto"
) -> SignalGrads:
    """Gradients of :func:`correlate` with respect to both operands.

    For ``z = correlate(in1, in2, mode)`` and a loss ``L`` with
    ``∂L/∂z = grad_output``: ``∂L/∂in1`` is the core's input gradient (the
    adjoint of the window map, a full convolution of ``grad_output`` with
    ``in2``) and ``∂L/∂in2`` the core's weight gradient (a valid
    cross-correlation of the padded ``in1`` with ``grad_output``).

    Parameters
    ----------
    grad_output : array_like
        Shaped like ``correlate(in1, in2, mode)``.
    in1, in2 : array_like
        The forward operands; real (bool, integer or floating).
    mode : {"full", "same", "valid"}
    method : {"auto", "direct", "fft", "winograd"}
        As for :func:`correlate`.

    Returns
    -------
    SignalGrads
        ``(in1, in2)``: the two gradients, shaped like the operands.

    Raises
    ------
    ValueError
        For the errors of :func:`correlate`, or a ``grad_output`` whose shape
        is not the forward output's.
    TypeError
        For complex or non-numeric data.

    Examples
    --------
    The loss ``sum(correlate(x, w, "valid"))``:

    >>> import numpy as np
    >>> from convgrad import signal
    >>> x, w = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, -1.0])
    >>> g1, g2 = signal.correlate_backward(np.ones(3), x, w, mode="valid")
    >>> g1, g2
    (array([ 1.,  0.,  0., -1.]), array([6., 9.]))
    """
    m = _check_mode(mode, method)
    a, b = _pair(in1, in2)
    g = check_array(grad_output, "grad_output")
    _check_real({"grad_output": g, "in1": a, "in2": b})
    return _xcorr_backward(g, a, b, m, method)


def convolve_backward(
    grad_output: ArrayLike, in1: ArrayLike, in2: ArrayLike, /, mode: str = "full", method: str = "auto"
) -> SignalGrads:
    """Gradients of :func:`convolve` with respect to both operands.

    ``convolve(in1, in2) = correlate(in1, flip(in2))``, so the gradient for
    ``in1`` is that of the correlation and the gradient for ``in2`` is the
    correlation's kernel gradient flipped back.

    Parameters
    ----------
    grad_output : array_like
        Shaped like ``convolve(in1, in2, mode)``.
    in1, in2 : array_like
        The forward operands; real (bool, integer or floating).
    mode : {"full", "same", "valid"}
    method : {"auto", "direct", "fft", "winograd"}
        As for :func:`correlate`.

    Returns
    -------
    SignalGrads
        ``(in1, in2)``: the two gradients, shaped like the operands.

    Raises
    ------
    ValueError, TypeError
        As for :func:`correlate_backward`.

    Examples
    --------
    The hand-written ``convolve2d_gradient`` example (3×3 image, 2×2 kernel),
    ``L = sum(d * convolve2d(x, w, "valid"))``:

    >>> import numpy as np
    >>> from convgrad import signal
    >>> x = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    >>> w = np.array([[1, 0], [0, 1]])
    >>> d = np.array([[1, 2], [3, 4]])
    >>> dx, dw = signal.convolve_backward(d, x, w, mode="valid")
    >>> dx
    array([[1., 2., 0.],
           [3., 5., 2.],
           [0., 3., 4.]])
    >>> dw
    array([[77., 67.],
           [47., 37.]])
    """
    m = _check_mode(mode, method)
    a, b = _pair(in1, in2)
    g = check_array(grad_output, "grad_output")
    _check_real({"grad_output": g, "in1": a, "in2": b})
    axes = tuple(range(b.ndim))
    ga, gb = _xcorr_backward(g, a, _flip(b, axes), m, method)
    return SignalGrads(ga, _flip(gb, axes).copy())


# ----------------------------------------------------------------------------- batched, multi-channel


def _batched_pair(x: ArrayLike, w: ArrayLike, mode: str) -> tuple[Array, Array, Pads]:
    xa, wa = check_array(x, "x"), check_array(w, "w")
    if wa.ndim < 3 or xa.ndim != wa.ndim:
        raise ValueError(
            f"x must be (N, C, *S) and w (O, C, *K) with the same number of dimensions (at least 3); "
            f"got x.shape {xa.shape} and w.shape {wa.shape}"
        )
    if xa.shape[1] != wa.shape[1]:
        raise ValueError(f"w.shape[1] ({wa.shape[1]}) must equal the channels of x, x.shape[1] ({xa.shape[1]})")
    if mode == "valid" and any(s < k for s, k in zip(xa.shape[2:], wa.shape[2:], strict=True)):
        raise ValueError(
            f"mode='valid' in the batched form needs x at least as large as w in every spatial dimension "
            f"(x is the signal, operands are never exchanged); got spatial sizes {xa.shape[2:]} and {wa.shape[2:]}"
        )
    return xa, wa, _mode_padding(mode, wa.shape[2:])


def correlate_batched(x: ArrayLike, w: ArrayLike, /, mode: str = "full", method: str = "auto") -> Array:
    """Multi-channel, batched :func:`correlate`: ``y[n, o] = Σ_c correlate(x[n, c], w[o, c], mode)``.

    A convolution layer (no bias, stride 1) whose padding is SciPy's
    ``mode``; the channel axis is summed, the batch axis is not.

    Parameters
    ----------
    x : array_like, shape=(N, C, *S)
        The signals.
    w : array_like, shape=(O, C, *K)
        The kernels; same number of dimensions as ``x``.
    mode : {"full", "same", "valid"}
        As for :func:`correlate`; ``"valid"`` needs ``S ≥ K`` in every spatial
        dimension (here the operands are never exchanged).
    method : {"auto", "direct", "fft", "winograd"}
        As for :func:`correlate`.

    Returns
    -------
    numpy.ndarray, shape=(N, O, *Q)
        ``Q`` is the size :func:`correlate` gives for ``S`` and ``K``.

    Raises
    ------
    ValueError
        For an unknown mode, mismatched shapes or channels, or ``"valid"``
        with a kernel larger than the signal.
    TypeError
        For non-numeric data.

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import signal
    >>> x = np.arange(8.0).reshape(1, 2, 4)   # one sample, two channels
    >>> w = np.array([[[1.0, 1.0], [0.0, -1.0]]])
    >>> signal.correlate_batched(x, w, mode="same")
    array([[[-4., -4., -3., -2.]]])
    """
    m = _check_mode(mode, method)
    xa, wa, pads = _batched_pair(x, w, m)
    return _conv(xa, conj(wa), padding=pads, method=method)


def convolve_batched(x: ArrayLike, w: ArrayLike, /, mode: str = "full", method: str = "auto") -> Array:
    """Multi-channel, batched :func:`convolve`: ``y[n, o] = Σ_c convolve(x[n, c], w[o, c], mode)``.

    Parameters
    ----------
    x : array_like, shape=(N, C, *S)
    w : array_like, shape=(O, C, *K)
    mode, method
        As for :func:`correlate_batched`.

    Returns
    -------
    numpy.ndarray, shape=(N, O, *Q)

    Raises
    ------
    ValueError, TypeError
        As for :func:`correlate_batched`.

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import signal
    >>> x = np.array([[[1.0, 2.0, 3.0]]])
    >>> signal.convolve_batched(x, np.array([[[0.0, 1.0, 0.5]]]))
    array([[[0. , 1. , 2.5, 4. , 1.5]]])
    """
    m = _check_mode(mode, method)
    xa, wa, pads = _batched_pair(x, w, m)
    return _conv(xa, _flip(wa, _spatial_axes(wa)), padding=pads, method=method)


def _batched_backward(g: ArrayLike, xa: Array, wa: Array, pads: Pads, method: str) -> SignalGrads:
    ga = check_array(g, "grad_output")
    _check_real({"grad_output": ga, "x": xa, "w": wa})
    gx = _input_grad(ga, wa, input_shape=xa.shape, padding=pads, method=method)
    gw = _weight_grad(ga, xa, weight_shape=wa.shape, padding=pads, method=method)
    return SignalGrads(gx, gw)


def correlate_batched_backward(
    grad_output: ArrayLike, x: ArrayLike, w: ArrayLike, /, mode: str = "full", method: str = "auto"
) -> SignalGrads:
    """Gradients of :func:`correlate_batched` with respect to ``x`` and ``w``.

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *Q)
        Shaped like ``correlate_batched(x, w, mode)``.
    x : array_like, shape=(N, C, *S)
    w : array_like, shape=(O, C, *K)
    mode, method
        As for :func:`correlate_batched`.

    Returns
    -------
    SignalGrads
        ``(in1, in2)`` = ``(∂L/∂x, ∂L/∂w)``.

    Raises
    ------
    ValueError
        As for :func:`correlate_batched`, or a ``grad_output`` of the wrong shape.
    TypeError
        For complex or non-numeric data.

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import signal
    >>> x, w = np.ones((1, 1, 3)), np.array([[[1.0, 2.0]]])
    >>> gx, gw = signal.correlate_batched_backward(np.ones((1, 1, 2)), x, w, mode="valid")
    >>> gx, gw
    (array([[[1., 3., 2.]]]), array([[[2., 2.]]]))
    """
    m = _check_mode(mode, method)
    xa, wa, pads = _batched_pair(x, w, m)
    return _batched_backward(grad_output, xa, wa, pads, method)


def convolve_batched_backward(
    grad_output: ArrayLike, x: ArrayLike, w: ArrayLike, /, mode: str = "full", method: str = "auto"
) -> SignalGrads:
    """Gradients of :func:`convolve_batched` with respect to ``x`` and ``w``.

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *Q)
        Shaped like ``convolve_batched(x, w, mode)``.
    x : array_like, shape=(N, C, *S)
    w : array_like, shape=(O, C, *K)
    mode, method
        As for :func:`correlate_batched`.

    Returns
    -------
    SignalGrads
        ``(in1, in2)`` = ``(∂L/∂x, ∂L/∂w)``.

    Raises
    ------
    ValueError, TypeError
        As for :func:`correlate_batched_backward`.

    Examples
    --------
    >>> import numpy as np
    >>> from convgrad import signal
    >>> x, w = np.ones((1, 1, 3)), np.array([[[1.0, 2.0]]])
    >>> gx, gw = signal.convolve_batched_backward(np.ones((1, 1, 2)), x, w, mode="valid")
    >>> gx, gw
    (array([[[2., 3., 1.]]]), array([[[2., 2.]]]))
    """
    m = _check_mode(mode, method)
    xa, wa, pads = _batched_pair(x, w, m)
    axes = _spatial_axes(wa)
    gx, gw = _batched_backward(grad_output, xa, _flip(wa, axes), pads, method)
    return SignalGrads(gx, _flip(gw, axes).copy())
