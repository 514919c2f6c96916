"""Largest relative errors of convgrad against PyTorch autograd over random configurations.

Run: ``python scripts/accuracy.py [--trials 2000] [--seed 0]`` (needs torch==2.13.0).
Relative error = max |ours − torch| / max(1, max |torch|), per result, over all trials.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import convgrad as cg
from strategies import Config
from torch_ref import torch_conv, torch_conv_transpose

MODES = ("zeros", "reflect", "replicate", "circular")


def random_config(rng: np.random.Generator) -> Config:
    d = int(rng.integers(1, 4))
    groups = int(rng.integers(1, 4))
    kernel = tuple(int(v) for v in rng.integers(1, 5, d))
    stride = tuple(int(v) for v in rng.integers(1, 4, d))
    dilation = tuple(int(v) for v in rng.integers(1, 4, d))
    mode = MODES[int(rng.integers(0, 4))]
    lo = tuple(int(v) for v in rng.integers(0, 4, d))
    hi = tuple(int(v) for v in rng.integers(0, 4, d))
    size = []
    for k, dl, a, b in zip(kernel, dilation, lo, hi):
        minimum = max(1, dl * (k - 1) + 1 - a - b, a + 1, b + 1)
        size.append(minimum + int(rng.integers(0, 8)))
    return Config(
        d, int(rng.integers(1, 4)), True, groups, groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4)),
        kernel, tuple(size), stride, dilation, tuple(zip(lo, hi)), lo, hi, mode,
    )


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b))))) if b.size else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    worst = {key: 0.0 for key in ("conv64", "conv32", "transpose64")}
    for _ in range(args.trials):
        cfg = random_config(rng)
        x, w, b = cfg.arrays(rng)
        y_ref = torch_conv(cfg, x, w, b)[0]
        g = rng.standard_normal(y_ref.shape)
        refs = torch_conv(cfg, x, w, b, g)
        for dtype, key in ((np.float64, "conv64"), (np.float32, "conv32")):
            xd, wd, bd, gd = (a.astype(dtype) for a in (x, w, b, g))
            ours = (cg.conv(xd, wd, bd, **cfg.kwargs()), *cg.conv_backward(gd, xd, wd, **cfg.kwargs()))
            worst[key] = max(worst[key], *(rel(o.astype(np.float64), r) for o, r in zip(ours, refs)))
        out_pad = tuple(int(rng.integers(0, max(s, dl))) for s, dl in zip(cfg.stride_t, cfg.dilation_t))
        kw = {
            "stride": cfg.stride, "padding": cfg.lo, "output_padding": out_pad,
            "dilation": cfg.dilation, "groups": cfg.groups,
        }
        wt = rng.standard_normal((cfg.c_out, cfg.c_in // cfg.groups) + cfg.kernel)
        xt = rng.standard_normal(y_ref.shape)
        try:
            yt = torch_conv_transpose(xt, wt, b[: cfg.c_in] if cfg.c_in <= cfg.c_out else None, None, **kw)[0]
        except RuntimeError:
            continue  # torch refuses (output size < 1): convgrad refuses too, tested elsewhere
        gt = rng.standard_normal(yt.shape)
        bt = b[: cfg.c_in] if cfg.c_in <= cfg.c_out else None
        refs_t = torch_conv_transpose(xt, wt, bt, gt, **kw)
        ours_t = (cg.conv_transpose(xt, wt, bt, **kw), *cg.conv_transpose_backward(gt, xt, wt, **kw))
        worst["transpose64"] = max(worst["transpose64"], *(rel(o, r) for o, r in zip(ours_t, refs_t)))
    print(f"{args.trials} random configurations (d = 1..3, every padding mode, asymmetric padding):")
    for key, value in worst.items():
        print(f"  {key:12s} largest relative error {value:.2e}")


if __name__ == "__main__":
    main()
