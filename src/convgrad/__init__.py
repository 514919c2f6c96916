"""convgrad: convolutions and their exact gradients, explicitly, in NumPy.

Forward, input gradient, weight gradient and bias gradient for N-dimensional
convolution and transposed convolution with PyTorch's semantics (stride,
padding in every form, dilation, groups, padding modes), without autograd.

The core (``conv``, its gradients, ``conv_transpose``) is imported with the
package; the tools around it (``gradcheck``, ``explain``, ``conv_matrix``,
the ``signal`` and ``tensorflow`` conventions, double backward) are imported
on first use, so that ``import convgrad`` costs little more than NumPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._conv import (
    Grads,
    conv,
    conv_backward,
    conv_bias_grad,
    conv_input_grad,
    conv_output_shape,
    conv_weight_grad,
)
from ._transpose import conv_transpose, conv_transpose_backward, conv_transpose_output_shape
from .engine.state import (
    get_num_threads,
    get_workspace_budget,
    release_workspace,
    set_num_threads,
    set_workspace_budget,
    workspace_budget,
)

if TYPE_CHECKING:
    from . import lax, onnx, reference, signal, tensorflow, testing
    from ._animate import Animation, animate
    from ._batch_groups import conv_batch_grouped, conv_batch_grouped_backward
    from ._double import DoubleGrads, conv_double_backward, conv_transpose_double_backward
    from ._explain import Explanation, explain
    from ._gradcheck import GradcheckResult, dot_test, gradcheck
    from ._matrix import conv_matrix

__version__ = "0.1.0"

_LAZY = {
    "signal": (".signal", None),
    "lax": (".lax", None),
    "onnx": (".onnx", None),
    "testing": (".testing", None),
    "reference": (".reference", None),
    "tensorflow": (".tensorflow", None),
    "GradcheckResult": ("._gradcheck", "GradcheckResult"),
    "dot_test": ("._gradcheck", "dot_test"),
    "gradcheck": ("._gradcheck", "gradcheck"),
    "animate": ("._animate", "animate"),
    "Animation": ("._animate", "Animation"),
    "conv_batch_grouped": ("._batch_groups", "conv_batch_grouped"),
    "conv_batch_grouped_backward": ("._batch_groups", "conv_batch_grouped_backward"),
    "DoubleGrads": ("._double", "DoubleGrads"),
    "conv_double_backward": ("._double", "conv_double_backward"),
    "conv_transpose_double_backward": ("._double", "conv_transpose_double_backward"),
    "Explanation": ("._explain", "Explanation"),
    "explain": ("._explain", "explain"),
    "conv_matrix": ("._matrix", "conv_matrix"),
}


def __getattr__(name: str) -> Any:
    """Import the tools around the core on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'convgrad' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name, __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Animation",
    "DoubleGrads",
    "Explanation",
    "GradcheckResult",
    "Grads",
    "__version__",
    "animate",
    "conv",
    "conv_backward",
    "conv_batch_grouped",
    "conv_batch_grouped_backward",
    "conv_bias_grad",
    "conv_double_backward",
    "conv_input_grad",
    "conv_matrix",
    "conv_output_shape",
    "conv_transpose",
    "conv_transpose_backward",
    "conv_transpose_double_backward",
    "conv_transpose_output_shape",
    "conv_weight_grad",
    "dot_test",
    "explain",
    "get_num_threads",
    "get_workspace_budget",
    "gradcheck",
    "lax",
    "onnx",
    "reference",
    "release_workspace",
    "set_num_threads",
    "set_workspace_budget",
    "signal",
    "tensorflow",
    "testing",
    "workspace_budget",
]
