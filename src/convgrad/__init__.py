"""convgrad: convolutions and their exact gradients, explicitly, in NumPy.

Forward, input gradient, weight gradient and bias gradient for N-dimensional
convolution and transposed convolution with PyTorch's semantics (stride,
padding in every form, dilation, groups, padding modes), without autograd.
"""

from . import signal, tensorflow
from ._check import GradcheckResult, dot_test, gradcheck
from ._config import get_workspace_budget, set_workspace_budget, workspace_budget
from ._conv import (
    Grads,
    conv,
    conv_backward,
    conv_bias_grad,
    conv_input_grad,
    conv_output_shape,
    conv_weight_grad,
)
from ._double import DoubleGrads, conv_double_backward, conv_transpose_double_backward
from ._explain import Explanation, explain
from ._matrix import conv_matrix
from ._transpose import conv_transpose, conv_transpose_backward, conv_transpose_output_shape

__version__ = "0.1.0"

__all__ = [
    "DoubleGrads",
    "Explanation",
    "GradcheckResult",
    "Grads",
    "__version__",
    "conv",
    "conv_backward",
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
    "get_workspace_budget",
    "gradcheck",
    "set_workspace_budget",
    "signal",
    "tensorflow",
    "workspace_budget",
]
