"""The PyTorch bridge: functional API (custom operators) and drop-in modules against ``torch.nn``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import convgrad.engine
import convgrad.torch as cgt
from bridge_cases import Case, cases, reference

TIGHT: dict[str, float] = {"atol": 1e-8, "rtol": 1e-6}


def test_import_convgrad_does_not_import_torch() -> None:
    code = "import sys, convgrad; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_import_without_torch_names_the_extra() -> None:
    """One clear line, without the chained ModuleNotFoundError."""
    code = "import sys; sys.modules['torch'] = None; import convgrad.torch"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == "ImportError: convgrad.torch needs PyTorch: pip install 'convgrad[torch]'"
    assert "ModuleNotFoundError" not in out.stderr


# ----------------------------------------------------------------------------- functional API vs torch


def _ours(case: Case) -> Callable[..., torch.Tensor]:
    function = cgt.conv_transpose if case.transposed else cgt.conv

    def f(*args: torch.Tensor) -> torch.Tensor:
        return function(*args, **case.kwargs())

    return f


def _outputs_and_grads(f: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    y = f(*inputs)
    g = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(5))
    return [y.detach(), *torch.autograd.grad(y, inputs, g)]


@given(case=st.one_of(cases(), cases(transposed=True)), complex_=st.booleans())
def test_matches_torch_functional(case: Case, complex_: bool) -> None:
    inputs = case.tensors(torch.complex128 if complex_ else torch.float64)
    ours = _outputs_and_grads(_ours(case), inputs)
    theirs = _outputs_and_grads(reference(case), inputs)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@given(case=st.one_of(cases(), cases(transposed=True)))
def test_gradcheck(case: Case) -> None:
    assert torch.autograd.gradcheck(_ours(case), case.tensors(), **TIGHT)


def test_gradcheck_complex() -> None:
    inputs = Case(
        transposed=False, d=2, batched=True, n=2, groups=2, c_in=4, c_out=2, kernel=(2, 3), size=(4, 5),
        stride=(2, 1), dilation=(1, 2), padding=((1, 0), (0, 2)), lo=(1, 0), hi=(0, 2), mode="circular",
        output_padding=(0, 0), bias=True,
    ).tensors(torch.complex128)

    def f(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return cgt.conv(x, w, b, stride=(2, 1), padding=((1, 0), (0, 2)), dilation=(1, 2), groups=2,
                        padding_mode="circular")

    assert torch.autograd.gradcheck(f, inputs, **TIGHT)


# ----------------------------------------------------------------------------- dtypes, devices, needs_input_grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_dtype_is_preserved(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 6, 5, generator=gen).to(dtype).requires_grad_()
    w = torch.randn(4, 3, 3, 2, generator=gen).to(dtype).requires_grad_()
    b = torch.randn(4, generator=gen).to(dtype).requires_grad_()
    y = cgt.conv(x, w, b, stride=2, padding=1)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == w.grad.dtype == b.grad.dtype == dtype  # type: ignore[union-attr]
    # against torch in float32 (the compute dtype for 16-bit floats), rounded to dtype
    xr, wr, br = (t.detach().float().requires_grad_() for t in (x, w, b))
    yr = torch.nn.functional.conv2d(xr, wr, br, stride=2, padding=1)
    yr.sum().backward()
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-2, "atol": 2e-2}
    for ours, theirs in [(y, yr), (x.grad, xr.grad), (w.grad, wr.grad), (b.grad, br.grad)]:
        torch.testing.assert_close(ours.float(), theirs.to(dtype).float(), **tol)  # type: ignore[union-attr]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_is_preserved() -> None:
    x = torch.randn(1, 2, 5, device="cuda", requires_grad=True)
    w = torch.randn(3, 2, 2, device="cuda", requires_grad=True)
    y = cgt.conv(x, w)
    y.sum().backward()
    assert y.device == x.grad.device == w.grad.device == x.device  # type: ignore[union-attr]
    torch.testing.assert_close(y, torch.nn.functional.conv1d(x, w))


class _Spy:
    """Counts calls to one core function while forwarding them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.calls = 0
        original = getattr(convgrad.engine, name)

        def spy(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(convgrad.engine, name, spy)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False), (False, False, True), (True, True, True)])
def test_needs_input_grad_is_honoured(monkeypatch: pytest.MonkeyPatch, transposed: bool, needs: tuple[bool, ...]) -> None:
    """Only the gradients asked for are computed."""
    x = torch.randn(2, 2, 5, dtype=torch.float64, requires_grad=needs[0])
    w = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=needs[1])
    b = torch.randn(3 if transposed else 2, dtype=torch.float64, requires_grad=needs[2])
    y = cgt.conv_transpose(x, w, b, stride=2) if transposed else cgt.conv(x, w[:, :2], b)
    # the input gradient of a conv is a transposed conv (input_grad_batched) and vice versa
    input_kernel = "forward" if transposed else "input_grad"
    spies = {name: _Spy(monkeypatch, name) for name in (input_kernel, "weight_grad", "bias_grad")}
    y.backward(torch.ones_like(y))
    assert [spy.calls for spy in spies.values()] == [int(n) for n in needs]
    assert [t.grad is not None for t in (x, w, b)] == list(needs)


# ----------------------------------------------------------------------------- modules against torch.nn


MODULE_CASES: list[tuple[str, tuple[Any, ...], dict[str, Any], tuple[int, ...]]] = [
    ("Conv1d", (2, 4, 3), {"stride": 2, "padding": 1, "padding_mode": "reflect"}, (3, 2, 9)),
    ("Conv1d", (2, 2, 4), {"padding": "same", "dilation": 2, "groups": 2, "bias": False}, (2, 11)),
    ("Conv2d", (4, 6, (3, 2)), {"stride": (1, 2), "padding": (1, 0), "groups": 2, "padding_mode": "circular"},
     (2, 4, 7, 6)),
    ("Conv2d", (3, 2, 3), {"padding": "valid", "dilation": (2, 1), "padding_mode": "replicate"}, (1, 3, 8, 5)),
    ("Conv3d", (2, 3, 2), {"stride": 2, "padding": 1, "padding_mode": "zeros"}, (1, 2, 4, 5, 3)),
    ("Conv3d", (2, 2, (1, 2, 3)), {"padding": "same", "padding_mode": "reflect"}, (2, 3, 4, 5)),
    ("ConvTranspose1d", (4, 2, 3), {"stride": 3, "padding": 1, "output_padding": 2, "groups": 2}, (2, 4, 5)),
    ("ConvTranspose2d", (3, 4, (2, 3)), {"stride": (2, 1), "padding": (0, 1), "dilation": (1, 2)}, (1, 3, 4, 3)),
    ("ConvTranspose2d", (2, 2, 4), {"stride": 2, "padding": 1, "bias": False}, (2, 5, 5)),
    ("ConvTranspose3d", (2, 3, 2), {"stride": 2, "output_padding": 1}, (1, 2, 2, 3, 2)),
]


def _pair(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A torch.nn module and the convgrad one holding the same parameters (loaded from its state_dict)."""
    theirs = getattr(torch.nn, name)(*args, **kwargs, dtype=torch.float64)
    ours = getattr(cgt, name)(*args, **kwargs, dtype=torch.float64)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), MODULE_CASES)
def test_module_matches_torch_nn(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], shape: tuple[int, ...]) -> None:
    ours, theirs = _pair(name, args, kwargs)
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    results = []
    for module in (ours, theirs):
        xi = x.clone().requires_grad_()
        y = module(xi)
        y.backward(torch.cos(torch.arange(y.numel(), dtype=torch.float64)).reshape(y.shape))
        results.append([y.detach(), xi.grad] + [p.grad for p in module.parameters()])
    assert len(results[0]) == len(results[1])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), MODULE_CASES)
def test_module_is_a_drop_in(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], shape: tuple[int, ...]) -> None:
    """Same initialisation, repr, state_dict keys, and checkpoints load both ways."""
    torch.manual_seed(11)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    torch.manual_seed(11)
    ours = getattr(cgt, name)(*args, **kwargs)
    assert isinstance(ours, getattr(torch.nn, name))
    assert repr(ours) == repr(theirs)
    assert ours.extra_repr() == theirs.extra_repr()
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key in theirs_state:
        torch.testing.assert_close(ours_state[key], theirs_state[key], rtol=0, atol=0)
    # a checkpoint written by either loads into the other
    fresh_theirs = getattr(torch.nn, name)(*args, **kwargs)
    fresh_ours = getattr(cgt, name)(*args, **kwargs)
    fresh_theirs.load_state_dict(ours.state_dict())
    fresh_ours.load_state_dict(theirs.state_dict())
    for key in theirs_state:
        torch.testing.assert_close(fresh_theirs.state_dict()[key], theirs_state[key], rtol=0, atol=0)
        torch.testing.assert_close(fresh_ours.state_dict()[key], theirs_state[key], rtol=0, atol=0)


def test_model_swap_loads_the_same_checkpoint() -> None:
    def model(conv: Any, up: Any) -> torch.nn.Sequential:
        return torch.nn.Sequential(conv(1, 4, 3, padding=1), torch.nn.ReLU(), up(4, 1, 2, stride=2))

    torch.manual_seed(0)
    theirs = model(torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    ours = model(cgt.Conv2d, cgt.ConvTranspose2d)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 1, 6, 6)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-6)


def test_conv_transpose_module_output_size() -> None:
    ours, theirs = _pair("ConvTranspose2d", (2, 3, 3), {"stride": 2, "padding": 1})
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    for size in ([7, 9], [8, 10], [1, 3, 8, 9], torch.Size([8, 9])):
        torch.testing.assert_close(ours(x, output_size=size), theirs(x, output_size=size), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"valid sizes range from 7 to 8; got 9"):
        ours(x, output_size=[9, 9])


def test_module_gradgradcheck() -> None:
    layer = cgt.Conv2d(2, 2, 2, stride=2, padding=1, padding_mode="replicate", dtype=torch.float64)
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)

    def f(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return layer._conv_forward(x, w, b)

    assert torch.autograd.gradgradcheck(f, (x, layer.weight, layer.bias), **TIGHT)


def test_unbatched_input() -> None:
    x = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    ours = _outputs_and_grads(lambda x, w: cgt.conv(x, w, padding=1), (x, w))
    theirs = _outputs_and_grads(lambda x, w: torch.nn.functional.conv1d(x, w, padding=1), (x, w))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- errors


_X, _W = torch.ones(1, 2, 5), torch.ones(3, 2, 2)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: cgt.conv(np.ones((1, 2, 5)), _W), TypeError, "x must be a torch.Tensor; got ndarray"),
        (lambda: cgt.conv(_X, [[[1.0]]]), TypeError, "w must be a torch.Tensor; got list"),
        (lambda: cgt.conv(_X, _W, 1.0), TypeError, "b must be a torch.Tensor; got float"),
        (lambda: cgt.conv(_X.long(), _W.long()), TypeError, "x must have a floating or complex dtype; got torch.int64"),
        (lambda: cgt.conv(_X, _W.double()), TypeError, r"w.dtype \(torch.float64\) must equal x.dtype \(torch.float32\)"),
        (lambda: cgt.conv(_X, _W, torch.ones(3, device="meta")), ValueError, "b is on device meta but x is on device cpu"),
        (lambda: cgt.conv(_X, _W, torch.ones(2)), ValueError, r"b must have shape \(out_channels,\) = \(3,\); got shape \(2,\)"),
        (lambda: cgt.conv(_X, torch.ones(4, 2, 2), groups=2), ValueError, r"w.shape\[1\] \(2\) must equal in_channels / groups"),
        (lambda: cgt.conv(_X, _W, padding_mode="mirror"), ValueError, "padding_mode must be one of"),
        (lambda: cgt.conv_transpose(_X, _W), ValueError, r"w.shape\[0\] \(3\) must equal in_channels"),
        (lambda: cgt.conv_transpose(_X, _W[:2], torch.ones(3)), ValueError, r"b must have shape \(out_channels,\) = \(2,\)"),
        (lambda: cgt.conv_transpose(_X, _W[:2], stride=2, output_padding=-1), ValueError,
         "output_padding must be >= 0; got -1"),
        (lambda: cgt.conv_transpose(_X.int(), _W[:2]), TypeError, "x must have a floating or complex dtype"),
    ],
)
def test_errors(call: Callable[[], Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()
