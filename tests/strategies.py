"""The configuration space convgrad's tests draw from: the package's public strategies.

``Config`` is :class:`convgrad.testing.ConvConfig` (positional fields ``d, n,
batched, groups, c_in, c_out, kernel, size, stride, dilation, padding, lo, hi,
mode``); ``conv_configs`` is the fine-grained strategy over every padding form
and mode.
"""

from __future__ import annotations

from convgrad.testing import MODES, conv_configs
from convgrad.testing import ConvConfig as Config

__all__ = ["MODES", "Config", "conv_configs"]
