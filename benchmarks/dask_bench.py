"""convgrad beyond NumPy: the Dask module against whole-array convgrad, and torch tensors against PyTorch.

``python -m benchmarks.dask_bench`` (``--quick`` for smaller arrays, ``--json FILE`` to save the numbers).

1. ``convgrad.dask`` against whole-array convgrad, forward and backward (all
   three gradients), on the threaded scheduler and on a
   ``distributed.LocalCluster`` of worker processes started here (each
   worker one thread; the data are generated on the workers). On the
   cluster the results are timed twice: kept on the workers (``persist``)
   and gathered into this process. Every case is first checked against the
   whole-array result; times are medians of ``--repeat`` runs.
2. An input whose whole-array im2col is many times the workspace budget:
   the Dask module's time and each worker's peak resident memory during the
   run (``VmHWM`` of the worker process, reset before the run), checked on a
   corner of the output against whole-array convgrad.
3. Torch CPU tensors through the generic array-API route against PyTorch's
   own ``conv2d`` and ``torch.autograd.grad``, and against convgrad on the
   same data as NumPy arrays (the tuned routes). This section runs first:
   importing ``distributed`` sets ``OMP_NUM_THREADS=1`` in this process's
   environment for the workers it spawns, which would leave PyTorch one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _median_time(run: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(1.0, float(np.abs(b).max())))


def _reset_peak() -> bool:
    """Reset this process's resident-memory high-water mark (Linux: ``/proc/self/clear_refs``); False elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mib() -> float:
    """This process's resident-memory high-water mark, MiB (``VmHWM``; ``ru_maxrss`` elsewhere).

    ``ru_maxrss`` is not used on Linux: it survives ``fork`` and ``exec``, so a
    worker process would report its parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- 1. Dask against whole-array


def dask_against_whole(shape: tuple[int, ...], w_shape: tuple[int, ...], chunks: tuple[int, ...], repeat: int,
                       workers: int, kw: dict[str, Any]) -> dict[str, Any]:
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster, wait

    import convgrad as cg
    import convgrad.dask as cgd

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(shape), rng.standard_normal(w_shape)
    y = cg.conv(x, w, **kw)
    g = rng.standard_normal(y.shape)
    g_chunks = (chunks[0], -1) + tuple(max(1, c // max(1, kw.get("stride", 1))) for c in chunks[2:])
    out: dict[str, Any] = {"x": shape, "w": w_shape, "chunks": chunks, "geometry": kw}

    whole_fwd = _median_time(lambda: cg.conv(x, w, **kw), repeat)
    whole_bwd = _median_time(lambda: cg.conv_backward(g, x, w, **kw), repeat)
    ref = [y, *cg.conv_backward(g, x, w, **kw)]
    out["whole-array s"] = {"forward": whole_fwd, "backward": whole_bwd}

    xd, gd = da.from_array(x, chunks=chunks), da.from_array(g, chunks=g_chunks)
    got = dask.compute(cgd.conv(xd, w, **kw), *cgd.conv_backward(gd, xd, w, **kw), scheduler="threads")
    out["threaded max rel error"] = max(_rel(a, b) for a, b in zip(got, ref))
    with dask.config.set(scheduler="threads"):
        fwd = _median_time(lambda: cgd.conv(xd, w, **kw).compute(), repeat)
        bwd = _median_time(lambda: dask.compute(*cgd.conv_backward(gd, xd, w, **kw)), repeat)
    out["threaded s"] = {"forward": fwd, "backward": bwd, "forward ×": fwd / whole_fwd, "backward ×": bwd / whole_bwd}

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        # the data generated on the workers: only results travel to this process
        xr = da.random.default_rng(1).standard_normal(shape, chunks=chunks)
        gr = da.random.default_rng(2).standard_normal(y.shape, chunks=g_chunks)
        xr, gr = client.persist([xr, gr])
        x_local, g_local = dask.compute(xr, gr)
        got = client.compute([cgd.conv(xr, w, **kw), *cgd.conv_backward(gr, xr, w, **kw)], sync=True)
        local_ref = [cg.conv(x_local, w, **kw), *cg.conv_backward(g_local, x_local, w, **kw)]
        out["cluster max rel error"] = max(_rel(a, b) for a, b in zip(got, local_ref))

        def kept(*arrays: Any) -> None:
            done = client.persist(list(arrays))
            wait(done)
            del done

        client.run(_reset_peak)
        fwd_kept = _median_time(lambda: kept(cgd.conv(xr, w, **kw)), repeat)
        bwd_kept = _median_time(lambda: kept(*cgd.conv_backward(gr, xr, w, **kw)), repeat)
        peaks = client.run(_peak_rss_mib)
        fwd = _median_time(lambda: client.compute(cgd.conv(xr, w, **kw), sync=True), repeat)
        bwd = _median_time(lambda: client.compute(list(cgd.conv_backward(gr, xr, w, **kw)), sync=True), repeat)
    label = f"LocalCluster ({workers} processes × 1 thread)"
    out[f"{label}, results kept on the workers, s"] = {
        "forward": fwd_kept, "backward": bwd_kept,
        "forward ×": fwd_kept / whole_fwd, "backward ×": bwd_kept / whole_bwd,
    }
    out[f"{label}, results gathered here, s"] = {
        "forward": fwd, "backward": bwd, "forward ×": fwd / whole_fwd, "backward ×": bwd / whole_bwd,
    }
    out["worker peak RSS MiB (kept runs)"] = sorted(round(v, 1) for v in peaks.values())
    return out


# ----------------------------------------------------------------------------- 2. larger than the budget


def beyond_budget(shape: tuple[int, ...], w_shape: tuple[int, ...], chunks: tuple[int, ...],
                  workers: int) -> dict[str, Any]:
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    import convgrad as cg
    import convgrad.dask as cgd

    dtype = np.float32
    geom = cg.conv_output_shape(shape, w_shape, padding=1)
    whole_im2col = shape[1] * int(np.prod(w_shape[2:])) * int(np.prod(geom[0:1] + geom[2:])) * 4
    block_im2col = chunks[1] * int(np.prod(w_shape[2:])) * int(np.prod(chunks[0:1] + chunks[2:])) * 4
    out: dict[str, Any] = {
        "x": shape, "w": w_shape, "chunks": chunks, "dtype": "float32",
        "input MiB": int(np.prod(shape)) * 4 / 2**20,
        "whole-array im2col MiB": whole_im2col / 2**20,
        "one block's im2col MiB": block_im2col / 2**20,
        "workspace budget MiB": cg.get_workspace_budget() / 2**20,
    }
    w = np.random.default_rng(3).standard_normal(w_shape).astype(dtype)
    corner = (slice(None), slice(None), slice(0, 64), slice(0, 64))
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        xd = da.random.default_rng(4).standard_normal(shape, chunks=chunks, dtype=dtype)
        xd = client.persist(xd)
        dask.compute(xd.sum())  # generated and resident before the clock starts
        client.run(_reset_peak)
        base = client.run(_peak_rss_mib)
        y = cgd.conv(xd, w, padding=1)
        start = time.perf_counter()
        total, y_corner = client.compute([y.sum(), y[corner]], sync=True)
        out["LocalCluster s"] = time.perf_counter() - start
        peaks = client.run(_peak_rss_mib)
        x_corner = xd[:, :, :65, :65].compute()
    out["worker RSS MiB (at start → peak during the run)"] = [f"{base[k]:.0f} → {peaks[k]:.0f}" for k in sorted(peaks)]
    ref = cg.conv(x_corner, w, padding=((1, 0), (1, 0)))[:, :, :64, :64]
    out["corner max rel error"] = _rel(np.asarray(y_corner, dtype=np.float64), ref.astype(np.float64))
    out["checksum finite"] = bool(np.isfinite(total))
    start = time.perf_counter()
    cgd.conv(da.random.default_rng(4).standard_normal(shape, chunks=chunks, dtype=dtype), w,
             padding=1).sum().compute(scheduler="threads")
    out["threaded s (generation included)"] = time.perf_counter() - start
    return out


# ----------------------------------------------------------------------------- 3. torch tensors


def torch_tensors(repeat: int, quick: bool) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    import convgrad as cg

    torch.set_num_threads(os.cpu_count() or 1)
    n, c, size = (4, 32, 28) if quick else (8, 64, 56)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, size, size, generator=gen)
    w = torch.randn(c, c, 3, 3, generator=gen)
    g = torch.randn(n, c, size, size, generator=gen)
    xn, wn, gn = x.numpy(), w.numpy(), g.numpy()
    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()

    def torch_bwd() -> Any:
        y = F.conv2d(xr, wr, padding=1)
        return torch.autograd.grad(y, (xr, wr), g)

    ours = cg.conv_backward(g, x, w, padding=1)
    ref = torch_bwd()
    repeat = max(repeat, 9)  # milliseconds each: more runs for a stable median
    for _ in range(2):  # warm-up: first calls allocate, and OpenBLAS and OpenMP start their threads
        cg.conv_backward(gn, xn, wn, padding=1)
        torch_bwd()
    err = max(_rel(a.numpy(), b.numpy()) for a, b in zip(ours[:2], ref))
    err = max(err, _rel(cg.conv(x, w, padding=1).numpy(), F.conv2d(x, w, padding=1).numpy()))
    out: dict[str, Any] = {"case": f"conv2d N={n} {c}→{c} {size}² k3 p1 float32, {torch.get_num_threads()} threads",
                           "max rel error vs torch": err}
    times = {
        "torch tensors, generic route": (
            _median_time(lambda: cg.conv(x, w, padding=1), repeat),
            _median_time(lambda: cg.conv_backward(g, x, w, padding=1), repeat)),
        "NumPy arrays, tuned routes": (
            _median_time(lambda: cg.conv(xn, wn, padding=1), repeat),
            _median_time(lambda: cg.conv_backward(gn, xn, wn, padding=1), repeat)),
        "PyTorch conv2d / autograd.grad": (
            _median_time(lambda: F.conv2d(x, w, padding=1), repeat),
            _median_time(torch_bwd, repeat)),
    }
    torch_fwd, torch_bwd_t = times["PyTorch conv2d / autograd.grad"]
    out["ms (forward, backward; × PyTorch)"] = {
        name: f"{f * 1e3:.1f}, {b * 1e3:.1f}; {f / torch_fwd:.2f}×, {b / torch_bwd_t:.2f}×"
        for name, (f, b) in times.items()
    }
    return out


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dask_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller arrays (about a minute)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--json", help="save the numbers to this file")
    args = parser.parse_args(argv)

    import convgrad

    report: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}, numpy {np.__version__}, dask {_version('dask')}, "
                   f"convgrad {convgrad.__version__}",
        "load average at start": [round(v, 2) for v in os.getloadavg()],
    }
    if args.quick:
        whole = ((4, 16, 256, 256), (16, 16, 3, 3), (2, 16, 128, 128))
        big = ((1, 16, 1024, 1024), (16, 16, 3, 3), (1, 16, 256, 256))
    else:
        whole = ((4, 16, 512, 512), (16, 16, 3, 3), (2, 16, 256, 256))
        big = ((1, 32, 2048, 2048), (32, 32, 3, 3), (1, 32, 512, 512))
    sections = [
        ("3. torch CPU tensors (generic route) against PyTorch", lambda: torch_tensors(args.repeat, args.quick)),
        ("1. Dask against whole-array convgrad (float64, padding 1)",
         lambda: dask_against_whole(*whole, args.repeat, args.workers, {"padding": 1})),
        ("1b. the same with stride 2",
         lambda: dask_against_whole(*whole, args.repeat, args.workers, {"padding": 1, "stride": 2})),
        ("2. an input whose whole-array im2col exceeds the workspace budget",
         lambda: beyond_budget(*big, args.workers)),
    ]
    print(f"# {report['machine']}; load average {report['load average at start']}")
    for title, run in sections:
        print(f"\n## {title}", flush=True)
        result = run()
        report[title] = result
        for key, value in result.items():
            if isinstance(value, float):
                value = f"{value:.3g}"
            elif isinstance(value, dict):
                value = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k}: {v}" for k, v in value.items())
            print(f"- {key}: {value}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
