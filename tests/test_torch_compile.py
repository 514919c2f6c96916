"""convgrad.torch under PyTorch's tracers: torch.compile, torch.export, torch.jit.trace, and opcheck of each operator.

Compiling with inductor takes tens of seconds on a small machine, so one model
pair (convgrad and ``torch.nn``, same parameters) is built per module and each
backend compiles it once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import convgrad.torch as cgt

# torch.jit's deprecation notices, from torch.jit.trace and from inside inductor
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")

TOL = 1e-10
SHAPES = [(2, 2, 8, 8), (3, 2, 11, 7)]


class _Model(torch.nn.Module):
    """A convolution with bias, tanh, and a transposed convolution with bias and output padding."""

    def __init__(self, conv: type[torch.nn.Conv2d], up: type[torch.nn.ConvTranspose2d]) -> None:
        super().__init__()
        self.conv = conv(2, 3, 3, stride=2, padding=1, dtype=torch.float64)
        self.up = up(3, 2, 3, stride=2, padding=1, output_padding=1, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.up(torch.tanh(self.conv(x)))
        return y


@pytest.fixture(scope="module")
def models() -> tuple[_Model, _Model]:
    """``(ours, reference)``: the same parameters, computed by convgrad and by ``torch.nn.functional``."""
    torch.manual_seed(0)
    reference = _Model(torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    ours = _Model(cgt.Conv2d, cgt.ConvTranspose2d)
    ours.load_state_dict(reference.state_dict())
    return ours, reference


@pytest.fixture(scope="module")
def compiled(models: tuple[_Model, _Model]) -> dict[str, Callable[..., torch.Tensor]]:
    """Our model compiled with each backend (compiled lazily, on first call, once per backend)."""
    ours, _ = models
    return {backend: torch.compile(ours, backend=backend, fullgraph=True) for backend in ("inductor", "eager")}


def _input(shape: tuple[int, ...], seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _outputs_and_grads(model: Callable[..., torch.Tensor], params: list[torch.Tensor],
                       x: torch.Tensor) -> list[torch.Tensor]:
    """The output and the gradients of a fixed weighted sum of it with respect to ``x`` and the parameters."""
    x = x.clone().requires_grad_()
    y = model(x)
    weights = torch.cos(torch.arange(y.numel(), dtype=y.dtype)).reshape(y.shape)
    return [y.detach(), *torch.autograd.grad((y * weights).sum(), [x, *params])]


def _assert_all_close(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=TOL, atol=TOL)


# ----------------------------------------------------------------------------- torch.compile


@pytest.mark.parametrize("backend", ["inductor", "eager"])
def test_compile_matches_torch_nn(models: tuple[_Model, _Model], compiled: dict[str, Any], backend: str) -> None:
    """Two input shapes (the second one recompiles, with dynamic shapes): outputs and gradients agree."""
    ours, reference = models
    for shape in SHAPES:
        x = _input(shape)
        got = _outputs_and_grads(compiled[backend], list(ours.parameters()), x)
        _assert_all_close(got, _outputs_and_grads(reference, list(reference.parameters()), x))


def test_compiled_graph_holds_the_operators(models: tuple[_Model, _Model]) -> None:
    """Dynamo records the custom operators themselves: one graph, no break, no NumPy traced."""
    ours, _ = models
    graphs: list[torch.fx.GraphModule] = []

    def recording_backend(gm: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> Callable[..., Any]:
        graphs.append(gm)
        return gm.forward

    torch.compile(ours, backend=recording_backend, fullgraph=True)(_input(SHAPES[0]))
    assert len(graphs) == 1
    targets = {node.target for node in graphs[0].graph.nodes}
    assert torch.ops.convgrad.conv_forward.default in targets
    assert torch.ops.convgrad.conv_transpose.default in targets


def test_double_backward_matches_torch_nn(models: tuple[_Model, _Model], compiled: dict[str, Any]) -> None:
    """``create_graph=True`` then the gradient of a gradient norm, eagerly and compiled with ``backend="eager"``."""
    ours, reference = models
    x = _input(SHAPES[1], seed=2)

    def second(model: Callable[..., torch.Tensor], params: list[torch.Tensor]) -> list[torch.Tensor]:
        xr = x.clone().requires_grad_()
        y = model(xr)
        grads = torch.autograd.grad(y.square().sum(), [xr, *params], create_graph=True)
        penalty = torch.stack([g.square().sum() for g in grads]).sum()
        return list(torch.autograd.grad(penalty, [xr, *params]))

    theirs = second(reference, list(reference.parameters()))
    _assert_all_close(second(ours, list(ours.parameters())), theirs)
    _assert_all_close(second(compiled["eager"], list(ours.parameters())), theirs)


def test_inductor_double_backward_is_refused_by_torch(models: tuple[_Model, _Model], compiled: dict[str, Any]) -> None:
    """AOT autograd (inductor's front end) has no double backward; PyTorch says so, for any operator."""
    x = _input(SHAPES[0]).requires_grad_()
    with pytest.raises(RuntimeError, match=r"create_graph=False|does not currently support double backward"):
        (gx,) = torch.autograd.grad(compiled["inductor"](x).square().sum(), x, create_graph=True)
        torch.autograd.grad(gx.sum(), x)


# ----------------------------------------------------------------------------- torch.export and torch.jit.trace


def test_export_runs_and_matches(models: tuple[_Model, _Model]) -> None:
    ours, reference = models
    batch = torch.export.Dim("batch")
    program = torch.export.export(ours, (_input(SHAPES[0]),), dynamic_shapes={"x": {0: batch}})
    targets = [str(node.target) for node in program.graph.nodes if node.op == "call_function"]
    assert targets == ["convgrad.conv_forward.default", "aten.tanh.default", "convgrad.conv_transpose.default"]
    exported = program.module()
    for n in (2, 5):
        x = _input((n,) + SHAPES[0][1:], seed=n)
        got = _outputs_and_grads(exported, list(exported.parameters()), x)
        _assert_all_close(got, _outputs_and_grads(reference, list(reference.parameters()), x))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_jit_trace_runs_and_matches(models: tuple[_Model, _Model]) -> None:
    ours, reference = models
    x = _input(SHAPES[0])
    traced = torch.jit.trace(ours, (x,))  # type: ignore[no-untyped-call]
    assert "convgrad::conv_forward" in str(traced.inlined_graph)
    assert "convgrad::conv_transpose" in str(traced.inlined_graph)
    got = _outputs_and_grads(traced, list(traced.parameters()), x)
    _assert_all_close(got, _outputs_and_grads(reference, list(reference.parameters()), x))


# ----------------------------------------------------------------------------- the operators one by one


def _t(*shape: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(sum(shape))).requires_grad_()


# stride, padding before, padding after, dilation, groups of a strided, asymmetric, dilated convolution;
# x (N, 2, 7, 6) and w (4, 1, 3, 2) with 2 groups give y (N, 4, 3, 5)
_GEOMETRY = ([2, 1], [1, 0], [0, 1], [1, 2], 2)

OPCHECK_CASES: list[tuple[str, tuple[Any, ...]]] = [
    ("conv_forward", (_t(2, 2, 7, 6), _t(4, 1, 3, 2), _t(4), *_GEOMETRY, "reflect")),
    ("conv_forward", (_t(2, 7, 6, dtype=torch.complex128), _t(4, 1, 3, 2, dtype=torch.complex128), None, *_GEOMETRY,
                      "zeros")),
    ("conv_transpose", (_t(2, 4, 3, 5), _t(4, 1, 3, 2), _t(2), *_GEOMETRY, [1, 0])),
    # unbatched, and an output padding (1) at least the stride (1): the transposed output outgrows the input
    ("conv_transpose", (_t(3, 4, 4), _t(3, 2, 1, 2), None, [1, 1], [0, 0], [0, 0], [2, 2], 1, [1, 1])),
    ("conv_input_grad", (_t(2, 4, 3, 5), _t(4, 1, 3, 2), [2, 2, 7, 6], *_GEOMETRY, "circular")),
    ("conv_weight_grad", (_t(2, 4, 3, 5), _t(2, 2, 7, 6), [4, 1, 3, 2], *_GEOMETRY, "replicate")),
    ("conv_bias_grad", (_t(2, 4, 3, 5), False)),
    ("conv_bias_grad", (_t(4, 3, 5), True)),
]


@pytest.mark.parametrize(("name", "args"), OPCHECK_CASES, ids=[f"{name}-{i}" for i, (name, _) in enumerate(OPCHECK_CASES)])
def test_opcheck(name: str, args: tuple[Any, ...]) -> None:
    """Schema, fake (meta) implementation, autograd registration and AOT dispatch with dynamic shapes."""
    result = torch.library.opcheck(getattr(torch.ops.convgrad, name), args)
    assert set(result.values()) == {"SUCCESS"}, result


def test_meta_tensors_get_shapes_from_the_fake_implementation() -> None:
    x, w = torch.empty(2, 3, 9, 9, device="meta"), torch.empty(3, 4, 4, 4, device="meta")
    assert cgt.conv(x, w[:, :3], stride=2, padding=1).shape == torch.nn.functional.conv2d(x, w[:, :3], stride=2,
                                                                                          padding=1).shape
    y = cgt.conv_transpose(x, w, stride=2, padding=1, output_padding=1)
    assert y.shape == (2, 4, 19, 19)
    assert y.device.type == "meta"
