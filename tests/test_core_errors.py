"""Every error path of the core: the type, and a message that names the argument and shows the values."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import convgrad as cg

X = np.zeros((2, 4, 6, 6))
W = np.zeros((6, 2, 3, 3))
G = np.zeros((2, 6, 4, 4))


def _raises(exc: type[Exception], match: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


@pytest.mark.parametrize(
    ("exc", "match", "args", "kwargs"),
    [
        # ranks
        (ValueError, r"x must have 4 dimensions \(batch, channels, 2 spatial\) or 3 \(unbatched\).*got x with 5 dimensions", (np.zeros((1, 2, 4, 6, 6)), W), {"groups": 2}),
        (ValueError, r"w must have at least 3 dimensions .*got shape \(6, 2\)", (X, np.zeros((6, 2))), {}),
        # channels and groups
        (ValueError, r"groups=3 does not divide in_channels=4 \(x.shape\[1\]\)", (X, np.zeros((6, 1, 3, 3))), {"groups": 3}),
        (ValueError, r"groups=4 does not divide out_channels=6 \(w.shape\[0\]\)", (X, np.zeros((6, 1, 3, 3))), {"groups": 4}),
        (ValueError, r"w.shape\[1\] \(3\) must equal in_channels / groups \(x.shape\[1\] = 4, groups = 2: 2\)", (X, np.zeros((6, 3, 3, 3))), {"groups": 2}),
        (ValueError, r"w.shape\[1\] \(2\) must equal in_channels / groups \(x.shape\[0\] = 4, groups = 1: 4\)", (X[0], W), {}),
        (TypeError, r"groups must be an integer; got 2.0 of type float", (X, W), {"groups": 2.0}),
        (ValueError, r"groups must be >= 1; got 0", (X, W), {"groups": 0}),
        # stride / dilation
        (ValueError, r"stride must be >= 1; got 0", (X, W), {"groups": 2, "stride": 0}),
        (ValueError, r"stride\[1\] must be >= 1; got -1", (X, W), {"groups": 2, "stride": (1, -1)}),
        (TypeError, r"stride must be an integer; got True of type bool", (X, W), {"groups": 2, "stride": True}),
        (TypeError, r"dilation\[0\] must be an integer; got 1.5 of type float", (X, W), {"groups": 2, "dilation": (1.5, 1)}),
        (ValueError, r"dilation must be an int or a tuple of 2 ints \(one per spatial dimension\); got \(1, 1, 1\) with 3 entries", (X, W), {"groups": 2, "dilation": (1, 1, 1)}),
        (TypeError, r"stride must be an int or a tuple of 2 ints .*got 'two'", (X, W), {"groups": 2, "stride": "two"}),
        # padding
        (ValueError, r"padding must be >= 0; got -1", (X, W), {"groups": 2, "padding": -1}),
        (ValueError, r"negative padding \(a crop\) needs padding_mode='zeros'; got padding_mode='reflect'", (X, W), {"groups": 2, "padding": ((0, 0), (-2, 1)), "padding_mode": "reflect"}),
        (ValueError, r"padding\[1\]\[0\] must be >= -2147483647; got -4294967296", (X, W), {"groups": 2, "padding": ((0, 0), (-2**32, 1))}),
        (ValueError, r"input_dilation needs padding_mode='zeros'; got padding_mode='circular'", (X, W), {"groups": 2, "input_dilation": 2, "padding": 1, "padding_mode": "circular"}),
        (ValueError, r"input_dilation must be >= 1; got 0", (X, W), {"groups": 2, "input_dilation": 0}),
        (ValueError, r"padding must have one entry per spatial dimension \(2\); got \(1, 2, 3\) with 3 entries", (X, W), {"groups": 2, "padding": (1, 2, 3)}),
        (ValueError, r"padding must be 'valid', 'same', an int or a tuple; got the unknown string 'full'", (X, W), {"groups": 2, "padding": "full"}),
        (ValueError, r"padding='same' is not supported for strided convolutions \(as in PyTorch\); got stride=\(2, 1\)", (X, W), {"groups": 2, "padding": "same", "stride": (2, 1)}),
        (ValueError, r"padding\[0\] must be an int or a \(before, after\) pair of ints; got \(1, 2, 3\)", (X, W), {"groups": 2, "padding": ((1, 2, 3), 0)}),
        (TypeError, r"padding must be an int, 'valid', 'same', a tuple of 2 ints or of 2 \(before, after\) pairs; got 1.5", (X, W), {"groups": 2, "padding": 1.5}),
        # padding modes
        (ValueError, r"padding_mode must be one of \('zeros', 'reflect', 'replicate', 'circular'\); got 'mirror'", (X, W), {"groups": 2, "padding_mode": "mirror"}),
        (ValueError, r"padding_mode='reflect' needs padding smaller than the input size: spatial dimension 0 has size 6 and padding \(6, 6\)", (X, W), {"groups": 2, "padding": 6, "padding_mode": "reflect"}),
        (ValueError, r"padding_mode='circular' needs padding at most the input size: spatial dimension 1 has size 6 and padding \(0, 7\)", (X, W), {"groups": 2, "padding": ((0, 0), (0, 7)), "padding_mode": "circular"}),
        # output size
        (ValueError, r"output size would be < 1 in spatial dimension 1: the padded input size 6 \(input 6 \+ padding 0 \+ 0\) is smaller than the dilated kernel size 7 \(dilation 3 \* \(kernel 3 - 1\) \+ 1\)", (X, W), {"groups": 2, "dilation": (1, 3)}),
        # empty dimensions
        (ValueError, r"the channel and spatial sizes of x must all be >= 1; got x shape \(2, 4, 0, 6\)", (np.zeros((2, 4, 0, 6)), W), {"groups": 2}),
        (ValueError, r"the dimensions of w must all be >= 1; got w shape \(6, 2, 0, 3\)", (X, np.zeros((6, 2, 0, 3))), {"groups": 2}),
        # dtypes
        (TypeError, r"x must have a numeric dtype \(bool, integer, floating or complex\); got dtype <U1", (np.full((1, 1, 3), "a"), W[:1, :1, 0]), {}),
        (TypeError, r"w must have a numeric dtype .*got dtype object", (X, np.empty((6, 2, 3, 3), dtype=object)), {"groups": 2}),
    ],
)
def test_conv_errors(exc: type[Exception], match: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    _raises(exc, match, cg.conv, *args, **kwargs)


def test_bias_shape() -> None:
    _raises(ValueError, r"b must have shape \(out_channels,\) = \(6,\); got shape \(6, 1\)", cg.conv, X, W, np.zeros((6, 1)), groups=2)
    _raises(TypeError, r"b must have a numeric dtype", cg.conv, X, W, np.array(["a"] * 6), groups=2)


def test_grad_output_shape_must_equal_forward_output_shape() -> None:
    msg = r"grad_output.shape \(2, 6, 3, 4\) must equal the forward output shape \(2, 6, 4, 4\) \(x.shape \(2, 4, 6, 6\), w.shape \(6, 2, 3, 3\)\)"
    _raises(ValueError, msg, cg.conv_backward, np.zeros((2, 6, 3, 4)), X, W, groups=2)
    _raises(ValueError, r"grad_output.shape \(6, 4, 4\) must equal", cg.conv_input_grad, G[0], W, input_shape=X.shape, groups=2)
    _raises(ValueError, r"grad_output.shape \(2, 6, 4, 5\) must equal .*weight_shape \(6, 2, 3, 3\)", cg.conv_weight_grad, np.zeros((2, 6, 4, 5)), X, weight_shape=W.shape, groups=2)
    _raises(TypeError, r"grad_output must have a numeric dtype", cg.conv_backward, G.astype(str), X, W, groups=2)


def test_input_shape_and_weight_shape_must_be_consistent() -> None:
    _raises(ValueError, r"groups=2 does not divide in_channels=5 \(input_shape\[1\]\)", cg.conv_input_grad, G, W, input_shape=(2, 5, 6, 6), groups=2)
    _raises(ValueError, r"input_shape must have 4 dimensions .*got input_shape with 2 dimensions", cg.conv_input_grad, G, W, input_shape=(6, 6), groups=2)
    _raises(TypeError, r"input_shape must be a tuple of ints; got 6", cg.conv_input_grad, G, W, input_shape=6, groups=2)
    _raises(ValueError, r"input_shape\[2\] must be >= 0; got -6", cg.conv_input_grad, G, W, input_shape=(2, 4, -6, 6), groups=2)
    _raises(ValueError, r"weight_shape\[1\] \(3\) must equal in_channels / groups", cg.conv_weight_grad, G, X, weight_shape=(6, 3, 3, 3), groups=2)
    _raises(ValueError, r"grad_output.shape \(2, 6, 4, 4\) must equal the forward output shape \(2, 6, 2, 2\)", cg.conv_weight_grad, G, X, weight_shape=(6, 2, 5, 5), groups=2)


def test_bias_grad_needs_a_channel_axis() -> None:
    _raises(ValueError, r"grad_output must have at least 3 dimensions \(\(N, O, \*Q\)\); got shape \(6, 4\)", cg.conv_bias_grad, np.zeros((6, 4)))
    _raises(ValueError, r"grad_output must have at least 2 dimensions \(\(O, \*Q\)\); got shape \(6,\)", cg.conv_bias_grad, np.zeros(6), unbatched=True)


def test_conv_output_shape_errors() -> None:
    _raises(ValueError, r"output size would be < 1 in spatial dimension 0", cg.conv_output_shape, (1, 1, 2), (1, 1, 3))
    _raises(ValueError, r"input_shape must have 3 dimensions", cg.conv_output_shape, (1, 1, 2, 2, 2), (1, 1, 3))
    _raises(ValueError, r"weight_shape\[1\] \(3\) must equal in_channels / groups \(input_shape\[1\] = 4", cg.conv_output_shape, (1, 4, 5), (2, 3, 3))


def test_errors_are_raised_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation happens first: no contraction runs for a bad call."""
    import convgrad.engine.dispatch as dispatch

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("work started before validation finished")

    monkeypatch.setattr(dispatch, "run", forbidden)
    with pytest.raises(ValueError, match="b must have shape"):
        cg.conv(X, W, np.zeros(5), groups=2)
    with pytest.raises(ValueError, match=r"grad_output\.shape"):
        cg.conv_backward(np.zeros((2, 6, 3, 3)), X, W, groups=2)


def test_a_remembered_call_does_not_excuse_a_wrong_one() -> None:
    """The checks' conclusions are remembered only for valid calls of NumPy arrays and plain arguments, keyed by
    the arrays' names, shapes and dtypes and the arguments' exact types: a call that differs in any of these (a
    bool for an int, a float for an int, another dtype, an object array, a list) is checked in full, and one that
    was invalid raises every time."""
    x, w = np.ones((1, 4, 6, 6)), np.ones((6, 2, 3, 3))
    for _ in range(2):
        assert cg.conv(x, w, groups=2, stride=1).shape == (1, 6, 4, 4)
        _raises(TypeError, "stride must be an integer; got True of type bool", cg.conv, x, w, groups=2, stride=True)
        _raises(TypeError, "groups must be an integer; got 2.0 of type float", cg.conv, x, w, groups=2.0)
        _raises(ValueError, "groups=3 does not divide in_channels=4", cg.conv, x, w, groups=3)
        _raises(TypeError, "x must have a numeric dtype", cg.conv, x.astype(object), w, groups=2)
        _raises(ValueError, r"b must have shape \(out_channels,\) = \(6,\); got shape \(5,\)", cg.conv, x, w,
                np.ones(5), groups=2)
        _raises(ValueError, "grad_output.shape", cg.conv_backward, np.ones((1, 6, 3, 3)), x, w, groups=2)
    assert cg.conv(x.astype(np.int64), w.astype(np.int64), groups=2).dtype == np.float64  # integers: float64
    assert cg.conv(x.astype(np.float32), w.astype(np.float32), groups=2).dtype == np.float32
    assert cg.conv(x.astype(np.float16), w.astype(np.float16), groups=2).dtype == np.float16
    assert cg.conv(x.tolist(), w, groups=2).shape == (1, 6, 4, 4)  # a list: read as an array, same answer
    assert cg.conv(x, w, groups=np.int64(2), stride=[1, 1]).shape == (1, 6, 4, 4)
    assert cg.conv(x[0], w, groups=2).shape == (6, 4, 4)  # unbatched: its own key
