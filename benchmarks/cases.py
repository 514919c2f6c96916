"""The benchmark cases: layer shapes people train, plus the edges of the fast-path rules.

A case is one convolution (or transposed convolution) geometry in PyTorch's
terms. Its cost is counted as a GEMM would count it: the forward pass is
``2·N·O·Q·(C/G)·K`` flops (one multiply and one add per weight use), the
backward pass twice that (input gradient and weight gradient), forward plus
backward three times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    """One benchmark geometry.

    For ``transposed=True`` the shapes are those of ``conv_transpose``:
    ``x (N, C_in, *S)``, ``w (C_in, C_out / groups, *K)``.
    """

    name: str
    description: str
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    transposed: bool = False
    dtype: str = "float32"
    output_padding: int = 0
    tags: tuple[str, ...] = field(default=())

    @property
    def d(self) -> int:
        """Number of spatial dimensions."""
        return len(self.w_shape) - 2

    def conv_kwargs(self) -> dict[str, int]:
        """Keyword arguments shared by convgrad and ``torch.nn.functional``."""
        kw = {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}
        if self.transposed:
            kw["output_padding"] = self.output_padding
        return kw

    def forward_flops(self) -> int:
        """``2·N·O·Q·(C/G)·K`` for the forward convolution (of the adjoint pair, if transposed)."""
        n, spatial = self.x_shape[0], self.x_shape[2:]
        kernel = self.w_shape[2:]
        if self.transposed:
            # The transposed conv is the adjoint of a conv whose output is x: Q = S, O = C_in.
            macs = n * self.x_shape[1] * math.prod(spatial) * self.w_shape[1] * math.prod(kernel)
            return 2 * macs
        out = [
            (s + 2 * self.padding - self.dilation * (k - 1) - 1) // self.stride + 1 for s, k in zip(spatial, kernel)
        ]
        macs = n * self.w_shape[0] * math.prod(out) * self.w_shape[1] * math.prod(kernel)
        return 2 * macs


CASES: tuple[Case, ...] = (
    Case("conv2d_128_28", "conv2d N=8 128→128 28² k3 p1", (8, 128, 28, 28), (128, 128, 3, 3), padding=1,
         tags=("gemm3x3",)),
    Case("conv2d_64_128_56_s2", "conv2d N=8 64→128 56² k3 s2 p1", (8, 64, 56, 56), (128, 64, 3, 3), stride=2,
         padding=1, tags=("gemm3x3",)),
    Case("conv3d_16_32", "conv3d N=2 16→32 16×32×32 k3 p1", (2, 16, 16, 32, 32), (32, 16, 3, 3, 3), padding=1),
    Case("depthwise_128_56", "depthwise N=8 128ch 56² k3 p1", (8, 128, 56, 56), (128, 1, 3, 3), padding=1,
         groups=128),
    Case("conv2d_64_56", "conv2d N=8 64→64 56² k3 p1", (8, 64, 56, 56), (64, 64, 3, 3), padding=1,
         tags=("gemm3x3",)),
    Case("first_layer_224", "conv2d N=8 3→64 224² k7 s2 p3", (8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3),
    Case("pointwise_256_64_28", "1×1 N=8 256→64 28²", (8, 256, 28, 28), (64, 256, 1, 1)),
    Case("dilated_64_64", "conv2d N=4 64→64 64² k3 d2 p2", (4, 64, 64, 64), (64, 64, 3, 3), padding=2, dilation=2,
         tags=("gemm3x3",)),
    Case("conv1d_16000", "conv1d N=8 64→64 L=16000 k9 p4", (8, 64, 16000), (64, 64, 9), padding=4),
    Case("conv1d_k63", "conv1d N=8 64→64 L=4096 k63 p31", (8, 64, 4096), (64, 64, 63), padding=31,
         tags=("large_kernel",)),
    Case("conv2d_k15", "conv2d N=8 32→32 64² k15 p7", (8, 32, 64, 64), (32, 32, 15, 15), padding=7,
         tags=("large_kernel",)),
    Case("transpose2d_128_64", "conv_transpose2d N=8 128→64 28² k4 s2 p1", (8, 128, 28, 28), (128, 64, 4, 4),
         stride=2, padding=1, transposed=True),
    Case("tiny_5x5", "seed: conv2d 1×1×5×5 k3", (1, 1, 5, 5), (1, 1, 3, 3), tags=("tiny",)),
    Case("conv2d_64_56_f64", "conv2d N=8 64→64 56² k3 p1, float64", (8, 64, 56, 56), (64, 64, 3, 3), padding=1,
         dtype="float64"),
)
"""Every case of the suite, in the order they run."""
