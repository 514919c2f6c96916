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
    Case("tiny_5x5", "the 5×5 image, 3×3 kernel (conv2d 1×1×5×5 k3)", (1, 1, 5, 5), (1, 1, 3, 3), tags=("tiny",)),
    Case("conv2d_64_56_f64", "conv2d N=8 64→64 56² k3 p1, float64", (8, 64, 56, 56), (64, 64, 3, 3), padding=1,
         dtype="float64"),
)
"""The original cases of the suite (their names are stable)."""

# Real networks. Shapes from oneDNN's benchdnn lists (uxlfoundation/oneDNN, tests/benchdnn/inputs/conv/):
# shapes_resnet_50, shapes_mobilenet (pointwise), shapes_mobilenet_dw (depthwise), shapes_3d_unet and
# shapes_1d_wavenet. Batch sizes are cut to fit a 2-core machine (ResNet-50 and MobileNet 8 instead of 50 and
# 32); the 3-D U-Net stage is conv_7 and conv_8 as listed (N=1); the WaveNet file lists its k2 dilated stack
# with the dilation folded into the batch (mb1 iw84350 ... mb512 iw164), which is here written as the dilated
# convolutions themselves on one 16384-sample sequence, every second dilation of the ten (1, 4, 16, 64, 256)
# counted twice. Two MobileNet-v2 depthwise layers (144 ch 56², 96 ch 112² stride 2) are added as well.
NETWORK_CASES: tuple[Case, ...] = (
    # ResNet-50 (conv1 is first_layer_224, res2a_branch2b is conv2d_64_56, res3a_branch2b is conv2d_128_28)
    Case("r50_res2a_branch1", "ResNet-50 res2a_branch1 1×1 N=8 64→256 56²", (8, 64, 56, 56), (256, 64, 1, 1),
         tags=("resnet50",)),
    Case("r50_res2b_branch2a", "ResNet-50 res2b_branch2a 1×1 N=8 256→64 56²", (8, 256, 56, 56), (64, 256, 1, 1),
         tags=("resnet50",)),
    Case("r50_res3a_branch2a", "ResNet-50 res3a_branch2a 1×1 s2 N=8 256→128 56²", (8, 256, 56, 56),
         (128, 256, 1, 1), stride=2, tags=("resnet50",)),
    Case("r50_res3a_branch2c", "ResNet-50 res3a_branch2c 1×1 N=8 128→512 28²", (8, 128, 28, 28), (512, 128, 1, 1),
         tags=("resnet50",)),
    Case("r50_res4a_branch2b", "ResNet-50 res4a_branch2b N=8 256→256 14² k3 p1", (8, 256, 14, 14),
         (256, 256, 3, 3), padding=1, tags=("resnet50", "gemm3x3")),
    Case("r50_res5a_branch2b", "ResNet-50 res5a_branch2b N=8 512→512 7² k3 p1", (8, 512, 7, 7), (512, 512, 3, 3),
         padding=1, tags=("resnet50", "gemm3x3")),
    Case("r50_res5a_branch2c", "ResNet-50 res5a_branch2c 1×1 N=8 512→2048 7²", (8, 512, 7, 7), (2048, 512, 1, 1),
         tags=("resnet50",)),
    # MobileNet: depthwise (shapes_mobilenet_dw; conv3_1/dw is depthwise_128_56) and pointwise (shapes_mobilenet)
    Case("mb_conv2_1_dw", "MobileNet conv2_1/dw N=8 32ch 112² k3 p1", (8, 32, 112, 112), (32, 1, 3, 3), padding=1,
         groups=32, tags=("mobilenet", "depthwise")),
    Case("mb_conv3_2_dw", "MobileNet conv3_2/dw N=8 128ch 56² k3 s2 p1", (8, 128, 56, 56), (128, 1, 3, 3),
         stride=2, padding=1, groups=128, tags=("mobilenet", "depthwise")),
    Case("mb_conv4_1_dw", "MobileNet conv4_1/dw N=8 256ch 28² k3 p1", (8, 256, 28, 28), (256, 1, 3, 3), padding=1,
         groups=256, tags=("mobilenet", "depthwise")),
    Case("mb_conv5_1_dw", "MobileNet conv5_1/dw N=8 512ch 14² k3 p1", (8, 512, 14, 14), (512, 1, 3, 3), padding=1,
         groups=512, tags=("mobilenet", "depthwise")),
    Case("mb_conv3_pw", "MobileNet conv3 1×1 N=8 64→128 56²", (8, 64, 56, 56), (128, 64, 1, 1),
         tags=("mobilenet",)),
    Case("mb_conv6_pw", "MobileNet conv6 1×1 N=8 256→256 28²", (8, 256, 28, 28), (256, 256, 1, 1),
         tags=("mobilenet",)),
    Case("mb_conv8_pw", "MobileNet conv8 1×1 N=8 512→512 14²", (8, 512, 14, 14), (512, 512, 1, 1),
         tags=("mobilenet",)),
    Case("mbv2_dw_144_56", "MobileNet-v2 depthwise N=8 144ch 56² k3 p1", (8, 144, 56, 56), (144, 1, 3, 3),
         padding=1, groups=144, tags=("mobilenet", "depthwise")),
    Case("mbv2_dw_96_112_s2", "MobileNet-v2 depthwise N=8 96ch 112² k3 s2 p1", (8, 96, 112, 112), (96, 1, 3, 3),
         stride=2, padding=1, groups=96, tags=("mobilenet", "depthwise")),
    # 3-D U-Net stage (shapes_3d_unet conv_7, conv_8): k3, no padding
    Case("unet3d_conv7", "3-D U-Net conv_7 N=1 256→256 12×13×13 k3", (1, 256, 12, 13, 13), (256, 256, 3, 3, 3),
         tags=("unet3d",)),
    Case("unet3d_conv8", "3-D U-Net conv_8 N=1 256→512 10×11×11 k3", (1, 256, 10, 11, 11), (512, 256, 3, 3, 3),
         tags=("unet3d",)),
    # WaveNet dilated stack (shapes_1d_wavenet): 32→32, k2, dilations 1 … 256, and the 1×1 512→256
    *(Case(f"wavenet_d{dl}", f"WaveNet conv1d N=1 32→32 L=16384 k2 d{dl}", (1, 32, 16384), (32, 32, 2),
           dilation=dl, tags=("wavenet",)) for dl in (1, 4, 16, 64, 256)),
    Case("wavenet_1x1", "WaveNet conv1d_1x1_2 N=1 512→256 L=812 k1", (1, 512, 812), (256, 512, 1),
         tags=("wavenet",)),
)
"""Layers of real networks (see the comment above for the sources)."""

NETWORKS: dict[str, tuple[tuple[str, int], ...]] = {
    "ResNet-50": (
        ("first_layer_224", 1), ("r50_res2a_branch1", 4), ("r50_res2b_branch2a", 2), ("conv2d_64_56", 3),
        ("r50_res3a_branch2a", 1), ("conv2d_128_28", 4), ("r50_res3a_branch2c", 4), ("r50_res4a_branch2b", 6),
        ("r50_res5a_branch2b", 3), ("r50_res5a_branch2c", 3),
    ),
    "MobileNet": (
        ("mb_conv2_1_dw", 1), ("depthwise_128_56", 1), ("mb_conv3_2_dw", 1), ("mb_conv4_1_dw", 1),
        ("mb_conv5_1_dw", 5), ("mb_conv3_pw", 4), ("mb_conv6_pw", 4), ("mb_conv8_pw", 20),
        ("mbv2_dw_144_56", 1), ("mbv2_dw_96_112_s2", 1),
    ),
    "3-D U-Net stage": (("unet3d_conv7", 1), ("unet3d_conv8", 1)),
    "WaveNet stack": tuple((f"wavenet_d{dl}", 2) for dl in (1, 4, 16, 64, 256)) + (("wavenet_1x1", 1),),
}
"""Per network, its layers in the suite and how many times each occurs (the ``*k`` of the benchdnn lists)."""

CASES = CASES + NETWORK_CASES
"""Every case of the suite, in the order they run."""
