"""convgrad.dask: Dask arrays, block by block, against whole-array convgrad.

Hypothesis draws the geometry (1-d to 3-d, every padding form and mode,
groups, stride and dilation up to 3) and, independently, the chunking of
every chunked axis (uneven, misaligned with the stride, tiny last chunks);
the lazily built results, computed on the threaded scheduler, must equal the
whole-array results to a relative tolerance. A ``distributed.LocalCluster``
with two worker processes is started and closed by its own test.
"""

from __future__ import annotations

import doctest
import itertools
import pathlib
import subprocess
import sys
import textwrap
import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad.testing import configs
from strategies import Config, conv_configs

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
cgd = pytest.importorskip("convgrad.dask")

RTOL = 1e-10


def _close(ours: Any, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape and ours.dtype == ref.dtype, (ours.shape, ref.shape, ours.dtype, ref.dtype)
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=RTOL * scale)


@st.composite
def _chunks(draw: st.DrawFn, shape: tuple[int, ...], whole: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Random chunks along every axis except those in ``whole`` (one chunk there)."""
    out = []
    for axis, size in enumerate(shape):
        if axis in whole or size <= 1:
            out.append((size,))
            continue
        cuts = draw(st.lists(st.integers(1, size - 1), max_size=4, unique=True))
        edges = [0, *sorted(cuts), size]
        out.append(tuple(b - a for a, b in itertools.pairwise(edges)))
    return tuple(out)


def _chunked(a: np.ndarray, chunks: tuple[tuple[int, ...], ...]) -> Any:
    return da.from_array(a, chunks=chunks)


# ----------------------------------------------------------------------------- geometry × chunking


@settings(max_examples=30)
@given(cfg=conv_configs(max_extra=9, max_batch=3), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_conv_and_gradients_match_whole_array(cfg: Config, seed: int, data: st.DataObject) -> None:
    _against_whole_array(cfg, seed, data)


@settings(max_examples=20)
@given(cfg=conv_configs(dims=(1, 2), max_extra=30, max_batch=2), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_long_axes_split_into_many_blocks_match_whole_array(cfg: Config, seed: int, data: st.DataObject) -> None:
    _against_whole_array(cfg, seed, data)


def _against_whole_array(cfg: Config, seed: int, data: st.DataObject) -> None:
    rng = np.random.default_rng(seed)
    x, w, b = cfg.arrays(rng)
    kw = cfg.kwargs()
    y = cg.conv(x, w, b, **kw)
    g = rng.standard_normal(y.shape)
    ref = [y, *cg.conv_backward(g, x, w, **kw)]
    channel = 1 if cfg.batched else 0
    xd = _chunked(x, data.draw(_chunks(x.shape, (channel,)), label="x chunks"))
    gd = _chunked(g, data.draw(_chunks(g.shape, (channel,)), label="g chunks"))
    yd = cgd.conv(xd, w, b, **kw)
    grads = cgd.conv_backward(gd, xd, w, split_every=2, **kw)
    results = dask.compute(yd, *grads, scheduler="threads")
    for ours, theirs in zip(results, ref):
        _close(ours, theirs)
    # the single-gradient functions build the same blocks
    gx = cgd.conv_input_grad(gd, w, input_shape=x.shape, **kw).compute(scheduler="threads")
    gw = cgd.conv_weight_grad(gd, xd, weight_shape=w.shape, **kw).compute(scheduler="threads")
    _close(gx, ref[1])
    _close(gw, ref[2])


@settings(max_examples=15)
@given(cfg=configs(transposed=True, padding=("int", "asymmetric"), max_size=12, unbatched=True),
       seed=st.integers(0, 2**32 - 1), data=st.data())
def test_conv_transpose_and_gradients_match_whole_array(cfg: Config, seed: int, data: st.DataObject) -> None:
    rng = np.random.default_rng(seed)
    x, w, b = cfg.arrays(rng)
    kw = cfg.kwargs()
    y = cg.conv_transpose(x, w, b, **kw)
    g = rng.standard_normal(y.shape)
    ref = [y, *cg.conv_transpose_backward(g, x, w, **kw)]
    channel = 1 if cfg.batched else 0
    xd = _chunked(x, data.draw(_chunks(x.shape, (channel,)), label="x chunks"))
    gd = _chunked(g, data.draw(_chunks(g.shape, (channel,)), label="g chunks"))
    results = dask.compute(cgd.conv_transpose(xd, w, b, **kw), *cgd.conv_transpose_backward(gd, xd, w, **kw))
    for ours, theirs in zip(results, ref):
        _close(ours, theirs)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "chunks", "kw"),
    [
        ((2, 3, 40), (4, 3, 3), (1, 3, 7), {"padding": ((-3, 2),)}),  # a crop
        ((1, 2, 17, 13), (2, 2, 3, 2), (1, 2, 5, 4), {"input_dilation": (2, 3), "padding": 1, "stride": 2}),
        ((2, 4, 30, 30), (4, 1, 3, 3), (1, 4, 7, 11), {"groups": 4, "padding": 3, "dilation": 3,
                                                       "padding_mode": "reflect"}),
        ((1, 2, 12, 12, 12), (2, 2, 2, 3, 2), (1, 2, 5, 4, 7), {"stride": (3, 2, 1), "padding": 2,
                                                                "padding_mode": "circular"}),
        ((3, 2, 50), (2, 2, 15), (2, 2, 9), {"padding": 7, "padding_mode": "replicate"}),  # FFT-sized blocks
    ],
)
def test_edge_geometries_match_whole_array(x_shape: Any, w_shape: Any, chunks: Any, kw: dict[str, Any]) -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    y = cg.conv(x, w, **kw)
    g = rng.standard_normal(y.shape)
    xd, gd = da.from_array(x, chunks=chunks), da.from_array(g, chunks=(chunks[0], -1, *chunks[2:]))
    results = dask.compute(cgd.conv(xd, w, **kw), *cgd.conv_backward(gd, xd, w, **kw))
    for ours, theirs in zip(results, [y, *cg.conv_backward(g, x, w, **kw)]):
        _close(ours, theirs)


def test_core_functions_take_dask_arrays_too(rng: np.random.Generator) -> None:
    x, w, b = rng.standard_normal((4, 4, 20)), rng.standard_normal((6, 2, 3)), rng.standard_normal(6)
    kw = {"stride": 2, "padding": 2, "groups": 2, "padding_mode": "reflect"}
    y = cg.conv(x, w, b, **kw)
    g = rng.standard_normal(y.shape)
    ggx, ggw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    xd, gd = da.from_array(x, chunks=(3, 4, 7)), da.from_array(g, chunks=(2, 6, 4))
    yd = cg.conv(xd, da.from_array(w, chunks=(3, 1, 2)), b, **kw)  # a chunked weight is used whole
    assert isinstance(yd, da.Array)
    _close(yd.compute(), y)
    for ours, theirs in zip(cg.conv_double_backward(da.from_array(ggx, chunks=(3, 4, 7)), ggw, b, gd, xd, w, **kw),
                            cg.conv_double_backward(ggx, ggw, b, g, x, w, **kw)):
        assert isinstance(ours, da.Array)
        _close(ours.compute(), theirs)
    _close(cg.conv_bias_grad(gd).compute(), cg.conv_bias_grad(g))
    xb, wb = rng.standard_normal((4, 3, 16)), rng.standard_normal((4, 3, 2))
    xbd = da.from_array(xb, chunks=(1, 3, 5))
    _close(cg.conv_batch_grouped(xbd, wb, batch_groups=2).compute(), cg.conv_batch_grouped(xb, wb, batch_groups=2))
    gb = rng.standard_normal((2, 4, 15))
    for ours, theirs in zip(cg.conv_batch_grouped_backward(da.from_array(gb, chunks=(1, 4, 6)), xbd, wb, batch_groups=2),
                            cg.conv_batch_grouped_backward(gb, xb, wb, batch_groups=2)):
        _close(ours.compute(), theirs)


def test_dtypes_and_unbatched(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 25)).astype(np.float32)
    w = rng.standard_normal((2, 3, 4)).astype(np.float32)
    y = cgd.conv(da.from_array(x, chunks=(3, 6)), w, padding=2)
    assert y.dtype == np.float32 and y.shape == (2, 26) and y._meta.dtype == np.float32
    np.testing.assert_allclose(y.compute(), cg.conv(x, w, padding=2), rtol=1e-5, atol=1e-5)
    xi = np.arange(40).reshape(1, 2, 20) % 7
    wi = np.arange(6).reshape(1, 2, 3) - 2
    yi = cgd.conv(da.from_array(xi, chunks=(1, 2, 6)), wi)
    assert yi.dtype == np.float64
    np.testing.assert_array_equal(yi.compute(), cg.conv(xi, wi))  # integers come out exact


# ----------------------------------------------------------------------------- laziness, layout, errors


def test_nothing_is_computed_until_asked() -> None:
    calls = []

    def block(b: np.ndarray) -> np.ndarray:
        calls.append(b.shape)
        return b

    x = da.ones((2, 3, 30, 30), chunks=(1, 3, 10, 10)).map_blocks(block, dtype=float, meta=np.empty((0, 0, 0, 0)))
    w = np.ones((4, 3, 3, 3))
    y = cgd.conv(x, w, padding=1, stride=2)
    grads = cgd.conv_backward(da.ones(y.shape, chunks=(1, 4, 5, 5)), x, w, padding=1, stride=2)
    assert calls == []
    assert isinstance(y, da.Array) and all(isinstance(a, da.Array) for a in grads)
    y.compute()
    assert calls


def test_blocks_are_aligned_to_the_stride_and_wide_enough() -> None:
    # κ = 2·(4 − 1) + 1 = 7, s = 3: chunks of at least 7 + 3·2 = 13; Q = 32 windows read the first 100 positions.
    # Boundaries 10, 43, 73, 100 move down to 9, 42, 72, 99; 9 and 99 would leave chunks narrower than 13.
    assert cgd.min_chunk(7, 3) == 13
    assert cgd.aligned_chunks((10, 33, 30, 27, 1), 100, 3, 13) == (42, 30, 28)
    x = da.zeros((1, 1, 101), chunks=(1, 1, (10, 33, 30, 27, 1)))
    y = cgd.conv(x, np.ones((1, 1, 4)), stride=3, dilation=2)
    assert y.chunks[2] == (14, 10, 8)  # the windows starting in each padded chunk
    assert sum(y.chunks[2]) == cg.conv_output_shape(x.shape, (1, 1, 4), stride=3, dilation=2)[2]


def test_split_channels_are_a_clear_error() -> None:
    x = da.zeros((2, 4, 20), chunks=(1, 2, 10))
    with pytest.raises(ValueError, match=r"x is split over its channel axis \(axis 1\) into chunks \(2, 2\); "
                                         r"convgrad\.dask needs all channels in one chunk.*x\.rechunk\(\{1: -1\}\)"):
        cgd.conv(x, np.ones((3, 4, 3)))
    g = da.zeros((2, 3, 18), chunks=(1, 1, 9))
    with pytest.raises(ValueError, match=r"grad_output is split over its channel axis"):
        cgd.conv_input_grad(g, np.ones((3, 4, 3)), input_shape=(2, 4, 20))
    with pytest.raises(ValueError, match=r"x is split over its channel axis \(axis 0\)"):
        cgd.conv(da.zeros((4, 20), chunks=(2, 10)), np.ones((3, 4, 3)))


def test_other_arguments_are_clear_errors() -> None:
    with pytest.raises(TypeError, match=r"convgrad\.dask\.conv takes Dask arrays; x is a numpy\.ndarray"):
        cgd.conv(np.zeros((1, 1, 5)), np.ones((1, 1, 3)))
    with pytest.raises(TypeError, match=r"w is a list but x is a Dask array of numpy\.ndarray blocks"):
        cgd.conv(da.zeros((1, 1, 5)), [[[1.0, 1.0]]])
    unknown = da.zeros((1, 1, 10), chunks=(1, 1, 5))
    unknown = unknown[unknown[0, 0] > -1][None, None]  # NaN chunk sizes
    with pytest.raises(ValueError, match=r"x has unknown sizes.*compute_chunk_sizes"):
        cgd.conv(unknown, np.ones((1, 1, 3)))
    with pytest.raises(ValueError, match=r"groups=2 does not divide out_channels=3"):  # the core's checks
        cgd.conv(da.zeros((1, 4, 5)), np.ones((3, 2, 3)), groups=2)


def test_an_input_whose_whole_array_im2col_exceeds_the_budget() -> None:
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 8, 96, 96)), rng.standard_normal((8, 8, 3, 3))
    whole_im2col = 2 * 8 * 9 * 94 * 94 * 8  # N·C·K·Q float64 entries: ~10 MiB
    budget = 2 * 1024 * 1024
    assert whole_im2col > 4 * budget
    with cg.workspace_budget(budget):
        y_ref = cg.conv(x, w)
        yd = cgd.conv(da.from_array(x, chunks=(1, 8, 32, 32)), w)  # each block's im2col ~0.6 MiB
    tracemalloc.start()
    try:
        y = yd.compute(scheduler="sync")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _close(y, y_ref)
    assert peak < whole_im2col, (peak, whole_im2col)


# ----------------------------------------------------------------------------- the real engine


def test_local_cluster_with_two_worker_processes() -> None:
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((4, 3, 40, 40)), rng.standard_normal((5, 3, 3, 3))
    kw = {"stride": 2, "padding": 1, "padding_mode": "reflect"}
    y = cg.conv(x, w, **kw)
    g = rng.standard_normal(y.shape)
    ref = [y, *cg.conv_backward(g, x, w, **kw)]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        xd, gd = da.from_array(x, chunks=(2, 3, 15, 20)), da.from_array(g, chunks=(2, 5, 10, 10))
        results = client.compute([cgd.conv(xd, w, **kw), *cgd.conv_backward(gd, xd, w, **kw)], sync=True)
    for ours, theirs in zip(results, ref):
        _close(ours, theirs)


# ----------------------------------------------------------------------------- the module's text and imports


def test_docstring_examples_run_with_dask_installed() -> None:
    """The examples carry ``+SKIP`` (they need Dask); with Dask installed they run here."""
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(cgd):
        for example in test.examples:
            example.options.pop(doctest.SKIP, None)
        runner.run(test)
    assert runner.failures == 0


def test_readme_dask_examples_run_with_dask_installed() -> None:
    """The README section's examples (``+SKIP`` where they need Dask) run here, Dask installed."""
    root = pathlib.Path(__file__).resolve().parent.parent
    heading = "## Beyond one machine"
    sections = []
    for path in (root / "README.md", root / "docs" / "beyond_one_machine.md"):
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if heading in text:
            section = text[text.index(heading):]
            end = section.find("\n## ", len(heading))
            sections.append((path.name, section if end < 0 else section[:end]))
    if not sections:
        pytest.skip("no 'Beyond one machine' section found")
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    for name, section in sections:
        test = doctest.DocTestParser().get_doctest(section, {}, name, name, 0)
        for example in test.examples:
            example.options.pop(doctest.SKIP, None)
        runner.run(test)
    assert runner.failures == 0


def test_missing_dask_is_one_line_naming_the_extra() -> None:
    code = """
        import sys
        sys.modules["dask"] = None  # as if Dask were not installed
        import numpy as np
        import convgrad.dask as cgd
        try:
            cgd.conv(np.zeros((1, 1, 4)), np.ones((1, 1, 2)))
        except ImportError as err:
            print(err)
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "convgrad.dask needs Dask: pip install 'convgrad[dask]'"
