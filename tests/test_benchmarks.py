"""Smoke test of the benchmark suite: one tiny case, one round; checks the report's shape, never a timing."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import suite
from benchmarks.cases import CASES, NETWORKS, Case

ISSUE_CASES = {
    "conv2d_128_28", "conv2d_64_128_56_s2", "conv3d_16_32", "depthwise_128_56", "conv2d_64_56", "first_layer_224",
    "pointwise_256_64_28", "dilated_64_64", "conv1d_16000", "conv1d_k63", "conv2d_k15", "transpose2d_128_64",
    "tiny_5x5", "conv2d_64_56_f64",
}


def test_every_case_is_listed_once() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)) and ISSUE_CASES <= set(names)


def test_flop_counts() -> None:
    tiny = next(c for c in CASES if c.name == "tiny_5x5")
    assert tiny.forward_flops() == 2 * 9 * 9  # 3×3 outputs, 9 taps
    # the transposed case costs what the convolution it is the adjoint of costs
    t = Case("t", "", (2, 4, 5), (4, 3, 2), stride=2, transposed=True)
    adjoint = Case("a", "", (2, 3, 10), (4, 3, 2), stride=2)
    assert t.forward_flops() == adjoint.forward_flops() == 2 * 2 * 4 * 5 * 3 * 2


def test_one_tiny_case_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    out = tmp_path / "bench.json"
    args = ["--cases", "tiny_5x5", "--repeats", "1", "--pause", "0", "--min-sample", "0", "--no-startup",
            "--threads", str(torch.get_num_threads()), "--json", str(out)]
    assert suite.main(args) == 0
    text = capsys.readouterr().out
    assert "the 5×5 image, 3×3 kernel (conv2d 1×1×5×5 k3)" in text and "fwd+bwd ratio: median" in text
    results = json.loads(out.read_text())
    assert set(results) == {"machine", "settings", "gemm_gflops", "import_first_call_ms", "cases", "summary",
                            "networks"}
    assert results["networks"] == {} and "available" in results["machine"]["jit"]
    assert {"cpu", "threads", "blas_kernel", "threadpools", "numpy", "torch"} <= set(results["machine"])
    assert math.isnan(results["import_first_call_ms"])
    (case,) = results["cases"]
    assert case["name"] == "tiny_5x5" and case["check"]["ok"] and case["check"]["max_rel_err"] < 1e-5
    assert set(case["ops"]) == {"forward", "backward", "fwd+bwd"}
    for timing in case["ops"].values():
        assert {"convgrad_s", "torch_s", "ratio", "gflops", "gemm_fraction"} <= set(timing)
    assert case["backward_output_bytes"] == 4 * (25 + 9 + 1)
    for key in ("backward_rss_peak_bytes", "torch_backward_rss_peak_bytes"):
        assert case[key] is None or case[key] >= 0
    assert set(results["summary"]) == {"median_fwd_bwd_ratio", "worst_fwd_bwd_ratio", "worst_case", "wrong_cases"}

    # the saved result renders as Markdown without running anything
    assert suite.main(["--from-json", str(out), "--markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| case | fwd × |" in markdown and "| the 5×5 image, 3×3 kernel (conv2d 1×1×5×5 k3) |" in markdown


def test_wrong_answers_are_reported_not_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suite.Prepared, "check", lambda self: 1.0)
    result = suite.run_case(CASES[-2], repeats=1, pause=0, min_sample=0, gemm={"float32": 1.0, "float64": 1.0})
    assert not result["check"]["ok"] and "ops" not in result
    assert "WRONG" in suite.format_text({"machine": {"cpu": "c", "cores": 1, "threads": 1, "load_average": None,
                                                     "numpy": "", "blas_kernel": "", "torch": "", "convgrad": ""},
                                         "gemm_gflops": {"float32": 1.0, "float64": 1.0},
                                         "import_first_call_ms": 1.0, "settings": {"repeats": 1, "pause_s": 0},
                                         "cases": [result]})


def test_unknown_case_is_refused() -> None:
    with pytest.raises(SystemExit, match="unknown case"):
        suite.main(["--cases", "no_such_case"])


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert suite.main(["--list"]) == 0
    assert "conv1d_k63" in capsys.readouterr().out


def test_networks_name_real_cases_and_total_them() -> None:
    by_name = {c.name: c for c in CASES}
    assert {"ResNet-50", "MobileNet", "3-D U-Net stage", "WaveNet stack"} <= set(NETWORKS)
    for layers in NETWORKS.values():
        assert all(name in by_name and count >= 1 for name, count in layers)
    assert {c.name for c in suite.select_cases(None, networks=True)} == {n for v in NETWORKS.values() for n, _ in v}
    fake = {"cases": [{"name": n, "ops": {"fwd+bwd": {"convgrad_s": 0.002, "torch_s": 0.001}},
                       "backward_rss_peak_bytes": 2**20, "torch_backward_rss_peak_bytes": None}
                      for n, _ in NETWORKS["3-D U-Net stage"]]}
    totals = suite.network_totals(fake)
    assert set(totals) == {"3-D U-Net stage"}
    t = totals["3-D U-Net stage"]
    assert t["layers"] == 2 and abs(t["ratio"] - 2.0) < 1e-12 and t["rss_peak_bytes"] == 2**20
    assert t["torch_rss_peak_bytes"] is None
    assert any("3-D U-Net stage" in line for line in suite.network_lines(fake, markdown=True))


def test_rss_peak_is_measured_or_unavailable() -> None:
    import numpy as np

    # memory the allocator already holds resident is not seen, so only the type and sign are certain here
    peak = suite.rss_peak_bytes(lambda: np.ones(8 * 2**20, dtype=np.uint8))
    assert peak is None or (isinstance(peak, int) and peak >= 0)


def test_install_routes_is_undone() -> None:
    from convgrad.engine import dispatch

    before_route, before_forward = dispatch.route, dict(dispatch.ROUTES["forward"])
    restore = suite.install_routes()
    try:
        assert "winograd" in dispatch.ROUTES["forward"]
    finally:
        restore()
    assert dispatch.route is before_route and dispatch.ROUTES["forward"] == before_forward
