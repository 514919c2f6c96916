"""Time convgrad against PyTorch CPU, side by side in one process.

Method
------
* Both libraries run with the same number of threads (``--threads``, default
  every core): PyTorch through ``torch.set_num_threads``, NumPy's BLAS through
  ``threadpoolctl``.
* Every case is first checked against PyTorch in the case's dtype; a case that
  disagrees is reported and not timed.
* Each operation (forward, backward, forward + backward) is warmed up, then
  timed in interleaved rounds: convgrad, pause, PyTorch, pause (OpenBLAS and
  OpenMP worker threads keep spinning for ~0.1 s after a call and would
  otherwise steal the other library's cores). A sample is a loop of enough
  calls to last ``--min-sample`` seconds. The reported times are medians over
  rounds and the ratio is the median of the per-round ratios.
* Inputs are allocated once per case and reused by every call.
* The peak extra memory of ``conv_backward`` is the tracemalloc peak during
  one call (NumPy reports its allocations to tracemalloc), outputs included.
* The peak memory of a backward pass is also measured for both libraries the
  same way, as the growth of the resident-set high-water mark (``VmHWM``,
  reset through ``/proc/self/clear_refs`` before the call; Linux only) during
  the first ``conv_backward`` / ``aten.convolution_backward`` of a fresh
  interpreter per library and case, with glibc's default ``MALLOC_*``
  settings (memory an allocator already holds resident would not be seen).
  One-time costs (importing Numba, loading oneDNN's kernels) are paid on a
  tiny call first.
* Real networks (``--networks``, :data:`benchmarks.cases.NETWORKS`): the
  forward + backward time of each layer times its multiplicity, summed, for
  both libraries, and the largest backward peak among the layers.
* ``--no-jit`` hides Numba (``sys.modules["numba"] = None``) before convgrad
  is imported, so every call takes the NumPy routes.
* The GEMM rate is NumPy's ``matmul`` on 1024×1024 by 1024×2048 matrices, in
  the same process, with the same threads.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .cases import CASES, NETWORKS, Case

OPS = ("forward", "backward", "fwd+bwd")
FLOP_FACTOR = {"forward": 1, "backward": 2, "fwd+bwd": 3}


# ----------------------------------------------------------------------------- machine


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(threads: int) -> dict[str, Any]:
    """Machine, library versions and the BLAS / OpenMP pools (threadpoolctl)."""
    import threadpoolctl
    import torch

    import convgrad

    pools = [
        {key: info.get(key) for key in ("internal_api", "prefix", "version", "architecture", "num_threads")}
        for info in threadpoolctl.threadpool_info()
    ]
    blas = [p for p in pools if p["internal_api"] in ("openblas", "mkl", "blis")]
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "convgrad": convgrad.__version__,
        "blas_kernel": ", ".join(f"{p['prefix']} {p['version']} {p['architecture']}" for p in blas),
        "threadpools": pools,
        "openblas_env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def gemm_rate(dtype: str, repeats: int = 7) -> float:
    """NumPy's GEMM rate in GFLOP/s: (1024×1024) @ (1024×2048), median of ``repeats``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024)).astype(dtype)
    b = rng.standard_normal((1024, 2048)).astype(dtype)
    out = np.empty((1024, 2048), dtype=dtype)
    for _ in range(2):
        np.matmul(a, b, out=out)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2 * 1024 * 1024 * 2048 / statistics.median(times) / 1e9


def import_first_call_ms() -> float:
    """Wall time of ``import convgrad`` plus a first tiny call, in a fresh interpreter."""
    code = (
        "import time; t0 = time.perf_counter(); import numpy as np, convgrad; "
        "convgrad.conv_backward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))); "
        "print((time.perf_counter() - t0) * 1e3)"
    )
    runs = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        runs.append(float(out.stdout.strip()))
    return min(runs)


# ----------------------------------------------------------------------------- one case


class Prepared:
    """Inputs and the six callables of one case (convgrad and torch, three operations)."""

    def __init__(self, case: Case, seed: int = 0) -> None:
        import torch
        import torch.nn.functional as F

        import convgrad as cg

        self.case = case
        rng = np.random.default_rng(seed)
        dtype = np.dtype(case.dtype)
        self.x = rng.standard_normal(case.x_shape).astype(dtype)
        self.w = (rng.standard_normal(case.w_shape) / math.sqrt(math.prod(case.w_shape[1:]))).astype(dtype)
        out_channels = case.w_shape[1] * case.groups if case.transposed else case.w_shape[0]
        self.b = rng.standard_normal(out_channels).astype(dtype)
        kw = case.conv_kwargs()
        if case.transposed:
            y_shape = cg.conv_transpose_output_shape(case.x_shape, case.w_shape, **kw)
        else:
            y_shape = cg.conv_output_shape(case.x_shape, case.w_shape, stride=case.stride, padding=case.padding,
                                           dilation=case.dilation)
        self.g = rng.standard_normal(y_shape).astype(dtype)

        xt, wt, bt, gt = (torch.from_numpy(a) for a in (self.x, self.w, self.b, self.g))
        xr, wr, br = (t.clone().requires_grad_(True) for t in (xt, wt, bt))
        d = case.d
        if case.transposed:
            cg_fwd, cg_bwd = cg.conv_transpose, cg.conv_transpose_backward
            t_conv = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[d]
        else:
            cg_fwd, cg_bwd = cg.conv, cg.conv_backward
            t_conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[d]
        tuple_kw = {k: (v,) * d for k, v in kw.items() if k != "groups"}
        x, w, b, g = self.x, self.w, self.b, self.g

        def cg_forward() -> Any:
            return cg_fwd(x, w, b, **kw)  # type: ignore[operator]

        def cg_backward() -> Any:
            return cg_bwd(g, x, w, **kw)  # type: ignore[operator]

        def cg_both() -> Any:
            return cg_fwd(x, w, b, **kw), cg_bwd(g, x, w, **kw)  # type: ignore[operator]

        def t_forward() -> Any:
            with torch.no_grad():
                return t_conv(xt, wt, bt, **kw)

        def t_backward() -> Any:
            return torch.ops.aten.convolution_backward(
                gt, xt, wt, [out_channels], list(tuple_kw["stride"]), list(tuple_kw["padding"]),
                list(tuple_kw["dilation"]), case.transposed, list(tuple_kw.get("output_padding", (0,) * d)),
                case.groups, [True, True, True],
            )

        def t_both() -> Any:
            y = t_conv(xr, wr, br, **kw)
            return y, torch.autograd.grad(y, (xr, wr, br), gt)

        self.convgrad: dict[str, Callable[[], Any]] = {"forward": cg_forward, "backward": cg_backward,
                                                      "fwd+bwd": cg_both}
        self.torch: dict[str, Callable[[], Any]] = {"forward": t_forward, "backward": t_backward, "fwd+bwd": t_both}
        self.backward = cg_backward

    def check(self) -> float:
        """Worst error of convgrad against PyTorch over y, gx, gw, gb, relative to each reference's max."""
        y = self.convgrad["forward"]()
        y_t = self.torch["forward"]().numpy()
        grads = self.convgrad["backward"]()
        grads_t = [t.numpy() for t in self.torch["backward"]()]
        worst = 0.0
        for ours, ref in zip((y, *grads), (y_t, *grads_t)):
            if ours.shape != ref.shape or ours.dtype != ref.dtype:
                return math.inf
            scale = max(float(np.abs(ref).max()), np.finfo(ref.dtype).tiny)
            worst = max(worst, float(np.abs(ours - ref).max()) / scale)
        return worst

    def backward_memory(self) -> tuple[int, int]:
        """(tracemalloc peak during one ``conv_backward``, bytes of its outputs)."""
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            grads = self.backward()
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        return peak, sum(a.nbytes for a in grads)


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_peak_bytes(fn: Callable[[], Any]) -> int | None:
    """Growth of the resident-set high-water mark during ``fn()`` (``None`` where it cannot be reset or read)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        return None
    before = _status_kib("VmRSS")
    fn()
    peak = _status_kib("VmHWM")
    if before is None or peak is None:
        return None
    return max(0, peak - before) * 1024


def calibrate(fn: Callable[[], Any], min_sample: float) -> int:
    """Calls per sample so that one sample lasts at least ``min_sample`` seconds."""
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    return max(1, math.ceil(min_sample / once))


def sample(fn: Callable[[], Any], number: int) -> float:
    """Seconds per call over ``number`` back-to-back calls."""
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def time_pair(
    ours: Callable[[], Any], theirs: Callable[[], Any], *, repeats: int, pause: float, min_sample: float
) -> dict[str, float]:
    """Interleaved rounds; medians of the times and of the per-round ratios."""
    for fn in (ours, theirs):  # warm-up: caches, workspaces, thread pools
        fn()
    n_ours, n_theirs = calibrate(ours, min_sample), calibrate(theirs, min_sample)
    t_ours, t_theirs, ratios = [], [], []
    for r in range(repeats):
        first_ours = r % 2 == 0
        for which in ((0, 1) if first_ours else (1, 0)):
            if which == 0:
                t_ours.append(sample(ours, n_ours))
            else:
                t_theirs.append(sample(theirs, n_theirs))
            time.sleep(pause)
        ratios.append(t_ours[-1] / t_theirs[-1])
    return {
        "convgrad_s": statistics.median(t_ours),
        "torch_s": statistics.median(t_theirs),
        "ratio": statistics.median(ratios),
        "calls_per_sample": n_ours,
    }


def run_case(case: Case, *, repeats: int, pause: float, min_sample: float, gemm: dict[str, float]) -> dict[str, Any]:
    """Check, time and measure one case."""
    prepared = Prepared(case)
    err = prepared.check()
    tol = 1e-4 if case.dtype == "float32" else 1e-10
    result: dict[str, Any] = {
        "name": case.name,
        "description": case.description,
        "dtype": case.dtype,
        "tags": list(case.tags),
        "forward_flops": case.forward_flops(),
        "check": {"max_rel_err": err, "tolerance": tol, "ok": err <= tol},
    }
    if not err <= tol:
        return result
    ops = {}
    for op in OPS:
        timing = time_pair(prepared.convgrad[op], prepared.torch[op], repeats=repeats, pause=pause,
                           min_sample=min_sample)
        flops = FLOP_FACTOR[op] * case.forward_flops()
        timing["gflops"] = flops / timing["convgrad_s"] / 1e9
        timing["torch_gflops"] = flops / timing["torch_s"] / 1e9
        timing["gemm_fraction"] = timing["gflops"] / gemm[case.dtype]
        ops[op] = timing
    result["ops"] = ops
    peak, outputs = prepared.backward_memory()
    result["backward_peak_bytes"] = peak
    result["backward_output_bytes"] = outputs
    result["backward_rss_peak_bytes"] = peak_in_subprocess(case.name, "convgrad")
    result["torch_backward_rss_peak_bytes"] = peak_in_subprocess(case.name, "torch")
    return result


def peak_in_subprocess(name: str, library: str) -> int | None:
    """:func:`rss_peak_bytes` of one backward pass of case ``name`` by ``library``, in a fresh interpreter."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    code = f"import sys; sys.path.insert(0, {root!r}); from benchmarks.suite import _child_peak; " \
           f"_child_peak({name!r}, {library!r}, {'numba' in sys.modules and sys.modules['numba'] is None!r})"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
        value = int(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None
    return None if value < 0 else value


def _child_peak(name: str, library: str, no_jit: bool) -> None:
    """In the child of :func:`peak_in_subprocess`: warm up on a tiny call, then print the peak (``-1``: unknown)."""
    if no_jit:
        sys.modules["numba"] = None  # type: ignore[assignment]
    install_routes()
    case = next(c for c in CASES if c.name == name)
    tiny = Prepared(Case("warm", "", (1, 2, 5, 5), (2, 1, 3, 3), padding=1, groups=2, dtype=case.dtype))
    (tiny.convgrad if library == "convgrad" else tiny.torch)["backward"]()
    prepared = Prepared(case)
    peak = rss_peak_bytes((prepared.convgrad if library == "convgrad" else prepared.torch)["backward"])
    print(-1 if peak is None else peak)


# ----------------------------------------------------------------------------- reports

COLUMNS = ("case", "fwd ×", "bwd ×", "f+b ms", "torch f+b ms", "f+b ×", "GFLOP/s", "% GEMM", "bwd peak MiB",
           "outputs MiB")


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per case, as strings."""
    rows = []
    for case in results["cases"]:
        if "ops" not in case:
            rows.append([case["description"], f"WRONG (rel. err {case['check']['max_rel_err']:.1e})"]
                        + [""] * (len(COLUMNS) - 2))
            continue
        ops = case["ops"]
        both = ops["fwd+bwd"]
        rows.append([
            case["description"],
            f"{ops['forward']['ratio']:.2f}",
            f"{ops['backward']['ratio']:.2f}",
            f"{both['convgrad_s'] * 1e3:.3g}",
            f"{both['torch_s'] * 1e3:.3g}",
            f"{both['ratio']:.2f}",
            f"{both['gflops']:.3g}",
            f"{100 * both['gemm_fraction']:.0f}",
            f"{case['backward_peak_bytes'] / 2**20:.1f}",
            f"{case['backward_output_bytes'] / 2**20:.1f}",
        ])
    return rows


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """Median and worst forward+backward ratio, and the per-target verdicts."""
    timed = [c for c in results["cases"] if "ops" in c]
    ratios = [c["ops"]["fwd+bwd"]["ratio"] for c in timed]
    if not ratios:
        return {}
    worst = max(timed, key=lambda c: c["ops"]["fwd+bwd"]["ratio"])
    return {
        "median_fwd_bwd_ratio": statistics.median(ratios),
        "worst_fwd_bwd_ratio": worst["ops"]["fwd+bwd"]["ratio"],
        "worst_case": worst["name"],
        "wrong_cases": [c["name"] for c in results["cases"] if not c["check"]["ok"]],
    }


def network_totals(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per network with every layer timed: summed forward + backward times (× multiplicity) and peak memory."""
    by_name = {c["name"]: c for c in results["cases"] if "ops" in c}
    totals: dict[str, dict[str, Any]] = {}
    for network, layers in NETWORKS.items():
        if not all(name in by_name for name, _ in layers):
            continue
        ours = sum(k * by_name[n]["ops"]["fwd+bwd"]["convgrad_s"] for n, k in layers)
        theirs = sum(k * by_name[n]["ops"]["fwd+bwd"]["torch_s"] for n, k in layers)

        def peak(key: str, layers: tuple[tuple[str, int], ...] = layers) -> float | None:
            values = [by_name[n].get(key) for n, _ in layers]
            return None if any(v is None for v in values) else float(max(values))

        totals[network] = {"layers": sum(k for _, k in layers), "convgrad_s": ours, "torch_s": theirs,
                           "ratio": ours / theirs, "rss_peak_bytes": peak("backward_rss_peak_bytes"),
                           "torch_rss_peak_bytes": peak("torch_backward_rss_peak_bytes")}
    return totals


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f}"


def network_lines(results: dict[str, Any], markdown: bool) -> list[str]:
    """The per-network table (empty when no network was run whole)."""
    totals = results.get("networks") or network_totals(results)
    if not totals:
        return []
    head = ("network", "layers", "f+b ms", "torch f+b ms", "f+b ×", "bwd RSS peak MiB", "torch bwd RSS peak MiB")
    rows = [[name, str(t["layers"]), f"{t['convgrad_s'] * 1e3:.4g}", f"{t['torch_s'] * 1e3:.4g}",
             f"{t['ratio']:.2f}", _mib(t["rss_peak_bytes"]), _mib(t["torch_rss_peak_bytes"])]
            for name, t in totals.items()]
    if markdown:
        return (["", "| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
                + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    return [""] + ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                   for r in [list(head)] + rows]


def header_lines(results: dict[str, Any]) -> list[str]:
    """Machine, threads, BLAS kernel, GEMM rates, start-up time."""
    m = results["machine"]
    gemm = results["gemm_gflops"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores; {m['threads']} threads for both libraries; "
        f"load average at start {tuple(round(v, 2) for v in m['load_average'] or ())}",
        f"numpy {m['numpy']} (BLAS: {m['blas_kernel']}), torch {m['torch']}, convgrad {m['convgrad']}",
        f"numpy GEMM rate: float32 {gemm['float32']:.0f} GFLOP/s, float64 {gemm['float64']:.0f} GFLOP/s; "
        f"import convgrad + first call: {results['import_first_call_ms']:.0f} ms",
        f"settings: {results['settings']['repeats']} interleaved rounds, pause {results['settings']['pause_s']} s; "
        "times are medians, ratios convgrad/torch are medians of per-round ratios (< 1: convgrad faster)",
    ]
    return lines


def format_text(results: dict[str, Any]) -> str:
    """A plain-text table."""
    rows = [list(COLUMNS)] + table_rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    out = header_lines(results) + [""]
    for i, row in enumerate(rows):
        cells = (cell.ljust(w) if j == 0 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths)))
        out.append("  ".join(cells))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    s = summary(results)
    if s:
        out.append("")
        out.append(f"fwd+bwd ratio: median {s['median_fwd_bwd_ratio']:.2f}, worst {s['worst_fwd_bwd_ratio']:.2f} "
                   f"({s['worst_case']})")
    out += network_lines(results, markdown=False)
    return "\n".join(out)


def format_markdown(results: dict[str, Any]) -> str:
    """A Markdown table with the same content as :func:`format_text`."""
    out = [f"- {line}" for line in header_lines(results)] + [""]
    out.append("| " + " | ".join(COLUMNS) + " |")
    out.append("|" + "|".join(["---"] + ["---:"] * (len(COLUMNS) - 1)) + "|")
    for row in table_rows(results):
        out.append("| " + " | ".join(row) + " |")
    s = summary(results)
    if s:
        out.append("")
        out.append(f"Forward + backward ratio convgrad / torch: median **{s['median_fwd_bwd_ratio']:.2f}**, "
                   f"worst **{s['worst_fwd_bwd_ratio']:.2f}** ({s['worst_case']}).")
    out += network_lines(results, markdown=True)
    return "\n".join(out)


# ----------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time convgrad against PyTorch CPU (forward, backward, forward+backward). Run it as "
        "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks`.",
    )
    parser.add_argument("--quick", action="store_true", help="3 rounds, short pauses and samples (about a minute)")
    parser.add_argument("--cases", help="comma-separated case names (default: all; see --list)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--from-json", metavar="PATH", help="print the table of a saved JSON result, run nothing")
    parser.add_argument("--repeats", type=int, help="interleaved rounds per operation (default 7, quick 3)")
    parser.add_argument("--pause", type=float, help="seconds of pause after each sample (default 0.2, quick 0.1)")
    parser.add_argument("--min-sample", type=float, help="seconds per sample (default 0.05, quick 0.02)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for both libraries")
    parser.add_argument("--networks", action="store_true", help="only the layers of the real networks (with totals)")
    parser.add_argument("--no-jit", action="store_true", help="hide Numba: every call takes the NumPy routes")
    parser.add_argument("--no-startup", action="store_true", help="skip timing `import convgrad` in a subprocess")
    return parser.parse_args(argv)


def select_cases(names: str | None, networks: bool = False) -> list[Case]:
    """The cases named in ``names`` (comma-separated), or those of the networks, or all of them."""
    if networks and not names:
        wanted_set = {n for layers in NETWORKS.values() for n, _ in layers}
        return [c for c in CASES if c.name in wanted_set]
    if not names:
        return list(CASES)
    by_name = {c.name: c for c in CASES}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; known: {', '.join(by_name)}")
    return [by_name[n] for n in wanted]


def install_routes() -> Callable[[], None]:
    """Put the compiled and Winograd routes into the dispatcher if it does not consult them yet.

    Returns the function that puts the dispatcher back as it was (it does nothing when there was nothing to do).

    The same rule the engine applies once they are registered: after the FFT, each module's ``choose`` is
    asked first (Winograd, then the compiled routes), and a route for finite data only is re-chosen when
    the data are not finite.
    """
    from convgrad.engine import dispatch, jit, winograd

    if "jit_depthwise" in dispatch.ROUTES["forward"]:
        return lambda: None
    saved = {op: dict(table) for op, table in dispatch.ROUTES.items()}
    original_run = dispatch.run
    for op in ("forward", "input", "weight"):
        dispatch.ROUTES[op].update(jit.ROUTES[op])
        dispatch.ROUTES[op].update(winograd.ROUTES[op])
    original = dispatch.route

    def route(geom: Any, dtype: Any, method: str = "auto", op: str = "forward", *, exact: bool = False,
              finite: bool = True) -> str:
        dtype = np.dtype(dtype)
        name = winograd.choose(geom, dtype, method, op, exact=exact, finite=finite)
        if name is None:
            name = jit.choose(geom, dtype, method, op, exact=exact, finite=finite)
        first: str = original(geom, dtype, "auto" if method == "winograd" else method, op, exact=exact,
                              finite=finite)
        return first if first == "fft" or name is None else name

    def run_op(op: str, a: Any, b: Any, geom: Any, method: str = "auto", *, exact: bool = False) -> Any:
        dtype = np.result_type(a, b)
        name = route(geom, dtype, method, op, exact=exact)
        if name in ("fft", "winograd") and not (np.isfinite(a).all() and np.isfinite(b).all()):
            name = route(geom, dtype, method, op, exact=exact, finite=False)
        with np.errstate(invalid="ignore"):
            return dispatch.ROUTES[op][name](a, b, geom)

    def restore() -> None:
        dispatch.route = original  # type: ignore[assignment]
        dispatch.run = original_run  # type: ignore[assignment]
        for op, table in saved.items():
            dispatch.ROUTES[op] = table

    dispatch.route = route  # type: ignore[assignment]
    dispatch.run = run_op  # type: ignore[assignment]
    return restore


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the selected cases and return the results as a JSON-ready dict."""
    import threadpoolctl
    import torch

    repeats = args.repeats or (3 if args.quick else 7)
    pause = args.pause if args.pause is not None else (0.1 if args.quick else 0.2)
    min_sample = args.min_sample if args.min_sample is not None else (0.02 if args.quick else 0.05)
    torch.set_num_threads(args.threads)
    cases = select_cases(args.cases, args.networks)
    restore = install_routes()
    with contextlib.ExitStack() as stack:
        stack.callback(restore)
        stack.enter_context(threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas"))
        results: dict[str, Any] = {
            "machine": machine_info(args.threads),
            "settings": {"repeats": repeats, "pause_s": pause, "min_sample_s": min_sample, "quick": args.quick},
            "gemm_gflops": {"float32": gemm_rate("float32"), "float64": gemm_rate("float64")},
            "import_first_call_ms": math.nan if args.no_startup else import_first_call_ms(),
            "cases": [],
        }
        for case in cases:
            print(f"  {case.name} ...", file=sys.stderr, flush=True)
            results["cases"].append(run_case(case, repeats=repeats, pause=pause, min_sample=min_sample,
                                             gemm=results["gemm_gflops"]))
    results["summary"] = summary(results)
    results["networks"] = network_totals(results)
    results["machine"]["jit"] = _jit_state()
    return results


def _jit_state() -> dict[str, Any]:
    """Whether Numba was importable and what the compiled kernels' first calls cost in this process."""
    import importlib

    try:
        jit = importlib.import_module("convgrad.engine.jit")
    except ImportError:  # pragma: no cover - an older convgrad
        return {"available": False}
    return {"available": bool(jit.available()), "first_call_s": dict(jit.COMPILE_SECONDS)}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 if a case disagreed with PyTorch)."""
    args = parse_args(argv)
    if args.no_jit:
        sys.modules["numba"] = None  # type: ignore[assignment]
    if args.list:
        for case in CASES:
            print(f"{case.name:24s} {case.description}")
        return 0
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as f:
            results = json.load(f)
    else:
        results = run(args)
    if args.json and not args.from_json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    print(format_markdown(results) if args.markdown else format_text(results))
    return 1 if results.get("summary", {}).get("wrong_cases") else 0
