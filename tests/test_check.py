"""gradcheck and dot_test: they pass on correct gradients, fail (and say where) on planted bugs."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given

import convgrad as cg
from convgrad._gradcheck import GradcheckError
from strategies import Config, conv_configs


def _conv_fns(cfg: Config) -> tuple[Any, Any]:
    kw = cfg.kwargs()

    def f(x: Any, w: Any, b: Any) -> Any:
        return cg.conv(x, w, b, **kw)

    def backward(g: Any, x: Any, w: Any, b: Any) -> Any:
        return tuple(cg.conv_backward(g, x, w, **kw))

    return f, backward


SEED_X = 10.0 * np.arange(25.0).reshape(1, 1, 5, 5)
SEED_W = np.arange(9.0).reshape(1, 1, 3, 3)


# ----------------------------------------------------------------------------- correct gradients pass


@given(conv_configs(dims=(1, 2), max_extra=2, max_batch=2, max_groups=2, max_kernel=2))
def test_gradcheck_passes_on_conv_backward(cfg: Config) -> None:
    x, w, b = cfg.arrays(np.random.default_rng(0))
    f, backward = _conv_fns(cfg)
    result = cg.gradcheck(f, (x, w, b), backward, mode="full" if x.size <= 150 else "fast")
    assert result.passed, str(result)
    assert len(result.inputs) == 3
    assert all(item.max_abs_error < 1e-5 for item in result.inputs)


@given(conv_configs(dims=(1, 2, 3), max_extra=3))
def test_gradcheck_fast_mode_passes(cfg: Config) -> None:
    x, w, b = cfg.arrays(np.random.default_rng(1))
    f, backward = _conv_fns(cfg)
    result = cg.gradcheck(f, (x, w, b), backward, mode="fast", seed=3)
    assert result.passed, str(result)
    assert all(item.worst_index is None for item in result.inputs)


def test_5x5_example_with_sum_loss() -> None:
    result = cg.gradcheck(cg.conv, (SEED_X, SEED_W), lambda g, x, w: tuple(cg.conv_backward(g, x, w))[:2],
                          grad_output=np.ones((1, 1, 3, 3)))
    assert result.passed
    assert result.inputs[1].max_rel_error < 1e-6  # gw = window sums of x, hundreds


def test_complex_inputs_use_pytorch_convention() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 5)) + 1j * rng.standard_normal((1, 2, 5))
    w = rng.standard_normal((3, 2, 2)) + 1j * rng.standard_normal((3, 2, 2))
    result = cg.gradcheck(cg.conv, (x, w), lambda g, x, w: tuple(cg.conv_backward(g, x, w))[:2])
    assert result.passed, str(result)
    # a backward without the conjugation is caught
    wrong = cg.gradcheck(cg.conv, (x, w),
                         lambda g, x, w: (cg.conv_input_grad(g, np.conj(w), input_shape=x.shape),
                                          cg.conv_backward(g, x, w).weight))
    assert not wrong.passed and not wrong.inputs[0].passed and wrong.inputs[1].passed


def test_real_input_compares_real_part_of_promoted_gradient() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 1, 5)) + 1j * rng.standard_normal((1, 1, 5))
    w = rng.standard_normal((1, 1, 3))  # real weight, complex gradient from conv_backward
    result = cg.gradcheck(cg.conv, (x, w), lambda g, x, w: tuple(cg.conv_backward(g, x, w))[:2])
    assert result.passed, str(result)


def test_integer_inputs_are_checked_in_float64() -> None:
    x = np.arange(12).reshape(1, 2, 6)
    w = np.ones((1, 2, 3), dtype=np.int64)
    result = cg.gradcheck(cg.conv, (x, w), lambda g, x, w: tuple(cg.conv_backward(g, x, w))[:2])
    assert result.passed


# ----------------------------------------------------------------------------- planted bugs fail


def _forgot_flip(g: Any, x: Any, w: Any) -> tuple[Any, Any]:
    """The classic wrong input gradient: the kernel flipped once too often."""
    return cg.conv_input_grad(g, w[..., ::-1, ::-1], input_shape=x.shape), cg.conv_backward(g, x, w).weight


def test_planted_flip_bug_fails_and_names_the_worst_index() -> None:
    g = np.random.default_rng(4).standard_normal((1, 1, 3, 3))
    result = cg.gradcheck(cg.conv, (SEED_X, SEED_W), _forgot_flip, grad_output=g)
    assert not result.passed
    bad, good = result.inputs
    assert not bad.passed and good.passed
    # the reported worst entry is the one with the largest violation, and its values are right
    right = cg.conv_input_grad(g, SEED_W, input_shape=SEED_X.shape)
    wrong = _forgot_flip(g, SEED_X, SEED_W)[0]
    violation = np.abs(wrong - right) / (1e-5 + 1e-3 * np.abs(right))
    expected = tuple(int(i) for i in np.unravel_index(np.argmax(violation), violation.shape))
    assert bad.worst_index == expected
    assert bad.analytic == pytest.approx(wrong[expected])
    assert bad.numeric == pytest.approx(right[expected], abs=1e-6)
    assert bad.max_abs_error == pytest.approx(np.max(np.abs(wrong - right)), rel=1e-6)
    report = str(result)
    assert report.startswith("gradcheck FAILED")
    assert "FAIL input 0 (1, 1, 5, 5)" in report and f"worst at {expected}" in report
    assert "ok   input 1" in report


def test_planted_bug_found_in_fast_mode() -> None:
    result = cg.gradcheck(cg.conv, (SEED_X, SEED_W), _forgot_flip, mode="fast")
    assert not result.passed and not result.inputs[0].passed and result.inputs[1].passed
    assert "direction u" in str(result)


def test_planted_missing_group_offset_fails() -> None:
    """A grouped weight gradient that reads the first group's channels for every group."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 4, 6)), rng.standard_normal((4, 2, 3))

    def wrong(g: Any, x: Any, w: Any) -> tuple[Any, Any]:
        gw0 = cg.conv_weight_grad(g[:, :2], x[:, :2], weight_shape=(2, 2, 3))
        gw1 = cg.conv_weight_grad(g[:, 2:], x[:, :2], weight_shape=(2, 2, 3))
        return cg.conv_backward(g, x, w, groups=2).input, np.concatenate([gw0, gw1])

    result = cg.gradcheck(lambda x, w: cg.conv(x, w, groups=2), (x, w), wrong)
    assert result.inputs[0].passed and not result.inputs[1].passed
    assert result.inputs[1].worst_index is not None and result.inputs[1].worst_index[0] >= 2


def test_raise_exception_carries_the_report() -> None:
    with pytest.raises(GradcheckError, match=r"gradcheck FAILED[\s\S]*worst at"):
        cg.gradcheck(cg.conv, (SEED_X, SEED_W), _forgot_flip, raise_exception=True)
    assert isinstance(GradcheckError("x"), AssertionError)


def test_float32_inputs_warn_with_the_cancellation_story() -> None:
    x32, w32 = SEED_X.astype(np.float32), SEED_W.astype(np.float32)
    with pytest.warns(UserWarning, match=r"checked in float64[\s\S]*7\.8125 instead of 8"):
        result = cg.gradcheck(cg.conv, (x32, w32), lambda g, x, w: tuple(cg.conv_backward(g, x, w))[:2])
    assert result.passed
    assert len(result.notes) == 1 and "0 (float32), 1 (float32)" in result.notes[0]
    assert "note:" in str(result)


def test_float32_finite_differences_really_cancel() -> None:
    """The effect the warning describes: the 5×5 image's float32 difference quotient is off by percents."""
    delta = np.zeros_like(SEED_X)
    delta[0, 0, 2, 2] = 1.0
    x32, d32, w32 = SEED_X.astype(np.float32), delta.astype(np.float32), SEED_W.astype(np.float32)
    eps = np.float32(1e-3)
    fd32 = (cg.conv(x32 + eps * d32, w32) - cg.conv(x32 - eps * d32, w32)) / np.float32(2) / eps
    exact = SEED_W[0, 0, ::-1, ::-1]
    assert np.max(np.abs(fd32[0, 0] - exact)) > 0.05
    fd64 = (cg.conv(SEED_X + 1e-6 * delta, SEED_W) - cg.conv(SEED_X - 1e-6 * delta, SEED_W)) / 2e-6
    np.testing.assert_allclose(fd64[0, 0], exact, atol=1e-6)


# ----------------------------------------------------------------------------- bad arguments


def _ok_backward(g: Any, x: Any, w: Any) -> tuple[Any, Any]:
    return tuple(cg.conv_backward(g, x, w))[:2]  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        ({"f": 3}, TypeError, r"f must be callable; got 3"),
        ({"backward": None}, TypeError, r"backward must be callable; got None"),
        ({"inputs": np.ones(3)}, TypeError, r"inputs must be a tuple or list of arrays .* got ndarray"),
        ({"inputs": ()}, ValueError, r"inputs must hold at least one array"),
        ({"eps": 0.0}, ValueError, r"eps must be a finite number > 0; got 0.0"),
        ({"eps": "1e-6"}, TypeError, r"eps must be a real number; got '1e-6'"),
        ({"atol": -1.0}, ValueError, r"atol must be a finite number >= 0; got -1.0"),
        ({"rtol": float("nan")}, ValueError, r"rtol must be a finite number >= 0; got nan"),
        ({"mode": "quick"}, ValueError, r"mode must be one of \('full', 'fast'\); got 'quick'"),
        ({"seed": -1}, ValueError, r"^seed must be >= 0; got -1$"),
        ({"seed": 2**32}, ValueError, r"^seed must be <= 4294967295; got 4294967296$"),
        ({"seed": 0.5}, TypeError, r"^seed must be an integer; got 0.5"),
        ({"grad_output": np.ones((2, 2))}, ValueError, r"grad_output.shape \(2, 2\) must equal the shape of f"),
        ({"inputs": (SEED_X, "w")}, TypeError, r"inputs\[1\] must have a numeric dtype"),
        ({"backward": lambda g, x, w: np.ones(3)}, TypeError, r"backward must return a tuple or list"),
        ({"backward": lambda g, x, w: tuple(cg.conv_backward(g, x, w))}, ValueError,
         r"backward returned 3 gradients for 2 inputs"),
        ({"backward": lambda g, x, w: (x, np.ones(3))}, ValueError,
         r"backward's gradient 1 has shape \(3,\), but inputs\[1\] has shape \(1, 1, 3, 3\)"),
    ],
)
def test_gradcheck_errors(kwargs: dict[str, Any], exc: type, pattern: str) -> None:
    args: dict[str, Any] = {"f": cg.conv, "inputs": (SEED_X, SEED_W), "backward": _ok_backward}
    args.update(kwargs)
    f, inputs, backward = args.pop("f"), args.pop("inputs"), args.pop("backward")
    with pytest.raises(exc, match=pattern):
        cg.gradcheck(f, inputs, backward, **args)


# ----------------------------------------------------------------------------- dot_test


@given(conv_configs(dims=(1, 2, 3), max_extra=3))
def test_dot_test_conv_and_input_grad_are_adjoint(cfg: Config) -> None:
    w = cfg.arrays(np.random.default_rng(6))[1]
    kw = cfg.kwargs()
    y_shape = cg.conv(np.zeros(cfg.x_shape), w, **kw).shape
    result = cg.dot_test(lambda x: cg.conv(x, w, **kw),
                         lambda g: cg.conv_input_grad(g, w, input_shape=cfg.x_shape, **kw), cfg.x_shape, y_shape)
    assert result.passed, str(result)
    assert result.relative_error < 1e-12


def test_dot_test_complex_checks_the_conjugation() -> None:
    rng = np.random.default_rng(7)
    w = rng.standard_normal((2, 3, 3)) + 1j * rng.standard_normal((2, 3, 3))
    good = cg.dot_test(lambda x: cg.conv(x, w, stride=2),
                       lambda g: cg.conv_input_grad(g, w, input_shape=(2, 3, 9), stride=2),
                       (2, 3, 9), (2, 2, 4), complex=True)
    assert good.passed and isinstance(good.lhs, complex)
    # the plain transpose is not the adjoint of a complex map
    bad = cg.dot_test(lambda x: cg.conv(x, w, stride=2),
                      lambda g: cg.conv_transpose(g, w, stride=2, output_shape=(9,)),
                      (2, 3, 9), (2, 2, 4), complex=True)
    assert not bad.passed and "FAILED" in str(bad)


def test_dot_test_catches_a_wrong_adjoint() -> None:
    w = np.arange(1.0, 4.0).reshape(1, 1, 3)
    result = cg.dot_test(lambda x: cg.conv(x, w, padding=1), lambda g: cg.conv(g, w, padding=1), (1, 1, 6), (1, 1, 6))
    assert not result.passed
    assert re.match(r"dot test FAILED: <forward\(x\), y> = .* relative error", str(result))
    with pytest.raises(GradcheckError, match="dot test FAILED"):
        cg.dot_test(lambda x: cg.conv(x, w, padding=1), lambda g: cg.conv(g, w, padding=1), (1, 1, 6), (1, 1, 6),
                    raise_exception=True)
    flipped = w[..., ::-1]
    assert cg.dot_test(lambda x: cg.conv(x, w, padding=1), lambda g: cg.conv(g, flipped, padding=1),
                       (1, 1, 6), (1, 1, 6)).passed


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "pattern"),
    [
        ((None, abs, (2,), (2,)), {}, TypeError, r"forward must be callable; got None"),
        ((abs, abs, "22", (2,)), {}, TypeError, r"x_shape must be a tuple of ints; got '22'"),
        ((abs, abs, (2,), (-1,)), {}, ValueError, r"y_shape\[0\] must be >= 0; got -1"),
        ((abs, abs, (2,), (2,)), {"rtol": -1}, ValueError, r"rtol must be a finite number >= 0; got -1"),
        ((abs, abs, (2,), (2,)), {"complex": 1}, TypeError, r"complex must be True or False; got 1"),
        ((abs, abs, (2,), (2,)), {"seed": -1}, ValueError, r"^seed must be >= 0; got -1$"),
        ((abs, abs, (2,), (2,)), {"seed": True}, TypeError, r"^seed must be an integer; got True"),
        ((abs, abs, (2,), (3,)), {}, ValueError, r"forward\(x\) has shape \(2,\), but y_shape is \(3,\)"),
        ((lambda x: x[:2], abs, (3,), (2,)), {}, ValueError, r"adjoint\(y\) has shape \(2,\), but x_shape is \(3,\)"),
    ],
)
def test_dot_test_errors(args: tuple[Any, ...], kwargs: dict[str, Any], exc: type, pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        cg.dot_test(*args, **kwargs)


def test_largest_seed_is_accepted() -> None:
    result = cg.gradcheck(cg.conv, (SEED_X, SEED_W), _ok_backward, mode="fast", seed=2**32 - 1)
    assert result.passed
    assert cg.dot_test(lambda x: x, lambda y: y, (3,), (3,), seed=2**32 - 1).passed


# ----------------------------------------------------------------------------- progress bars


def test_progress_bar_only_when_asked_or_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    from convgrad._gradcheck import Progress

    x, w = np.ones((1, 1, 4)), np.ones((1, 1, 2))

    def backward(g: Any, x: Any, w: Any) -> Any:
        return cg.conv_backward(g, x, w)[:2]

    cg.gradcheck(cg.conv, (x, w), backward)
    assert capsys.readouterr().err == ""  # the default: no bar
    cg.gradcheck(cg.conv, (x, w), backward, progress=None)
    assert capsys.readouterr().err == ""  # stderr is not a terminal here
    cg.gradcheck(cg.conv, (x, w), backward, progress=True)
    err = capsys.readouterr().err
    assert "gradcheck" in err and "/6 " in err  # 4 + 2 entries
    with Progress(2, "quiet", enabled=False) as bar:
        bar.update("step")
    assert capsys.readouterr().err == ""
