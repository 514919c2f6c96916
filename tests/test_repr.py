"""Jupyter-native results: short text reprs, Markdown, styled HTML (structure, escaping, colours, the picture)."""

from __future__ import annotations

import base64
import html.parser
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import convgrad as cg
from convgrad import _render

VOID = {"meta", "img", "br", "hr", "input", "link"}


class _Tags(html.parser.HTMLParser):
    """Checks that tags nest and close, and collects what the tests look at."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, {k: v or "" for k, v in attrs}))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Tags:
    tags = _Tags()
    tags.feed(page)
    tags.close()
    assert tags.errors == [] and tags.stack == [], (tags.errors, tags.stack)
    return tags


def _styles(tags: _Tags, tag: str) -> list[str]:
    return [attrs.get("style", "") for name, attrs in tags.seen if name == tag]


# ----------------------------------------------------------------------------- Explanation


@pytest.fixture(scope="module")
def explanation() -> cg.Explanation:
    return cg.explain((2, 3, 6, 6), (4, 3, 3, 3), stride=2, padding=1)


def test_explanation_repr_is_short(explanation: cg.Explanation) -> None:
    text = repr(explanation)
    lines = text.splitlines()
    assert 2 <= len(lines) <= 5 and len(text) < 600
    assert lines[0].startswith("<Explanation of conv (2-d): x (2, 3, 6, 6) * w (4, 3, 3, 3) -> y (2, 4, 3, 3)")
    assert "recipes verified: 9 verified, 6 not run of 15" in lines[1]
    assert len(str(explanation)) > 10 * len(text)  # the whole text is elsewhere


def test_explanation_markdown(explanation: cg.Explanation) -> None:
    md = explanation.to_markdown()
    assert md == explanation._repr_markdown_()
    assert md.startswith("### conv (2-d)") and "*recipes verified: 9 verified, 6 not run of 15*" in md
    assert "| output y | `(2, 4, 3, 3)` | (N, O, *Q) |" in md
    assert md.count("```python") == 15 and md.count("```text") == 1
    assert "#### Input gradient gx = ∂L/∂x, shape (2, 3, 6, 6)" in md


def test_explanation_html_fragment(explanation: cg.Explanation) -> None:
    page = explanation.to_html()
    assert page == explanation._repr_html_()
    assert page.startswith("<div class='convgrad-explain'") and page.endswith("</div>")
    tags = _parse(page)
    pres = _styles(tags, "pre")
    assert len(pres) == 16 and all("overflow-x: auto" in s and "max-width: 100%" in s for s in pres)
    images = [attrs for name, attrs in tags.seen if name == "img"]
    assert len(images) == 1 and images[0]["src"].startswith("data:image/png;base64,")
    png = base64.b64decode(images[0]["src"].split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "max-width: 100%" in images[0]["style"]
    # verdicts coloured: verified green, not run grey
    spans = [attrs["style"] for name, attrs in tags.seen if name == "span"]
    assert sum(_render.COLORS["ok"] in s for s in spans) == 10  # the summary and the 9 verified recipes
    assert sum(_render.COLORS["neutral"] in s for s in spans) == 6
    assert "-&gt; y (2, 4, 3, 3)" in page  # escaped
    assert explanation.__dict__["_cache"]["uri"].startswith("data:image/png")


def test_explanation_standalone_page(explanation: cg.Explanation) -> None:
    page = explanation.to_html(standalone=True)
    assert page.startswith("<!DOCTYPE html>\n<html lang='en'>")
    tags = _parse(page)
    names = [name for name, _ in tags.seen]
    assert names[:4] == ["html", "head", "meta", "meta"] and "style" in names and "body" in names
    assert "<meta charset='utf-8'>" in page and "width=device-width" in page
    assert not re.search(r"(src|href)=['\"]https?:", page)  # no external resources
    assert "<title>conv (2-d): x (2, 3, 6, 6)" in page


def test_failed_recipe_is_red_and_withheld(monkeypatch: pytest.MonkeyPatch) -> None:
    from convgrad import _recipes

    monkeypatch.setattr(_recipes, "bias_call", lambda d: "gb = g.sum()  # forgot the axes\n")
    e = cg.explain((1, 1, 5), (1, 1, 3))
    page = e.to_html(picture=False)
    assert "forgot the axes" not in page and "forgot the axes" not in e.to_markdown()
    tags = _parse(page)
    red = [a["style"] for n, a in tags.seen if n == "span" and _render.COLORS["fail"] in a.get("style", "")]
    assert len(red) == 2  # the summary and the failed recipe
    assert "a recipe FAILED verification" in repr(e)


def test_html_without_matplotlib_says_so(explanation: cg.Explanation, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    e = cg.explain((1, 1, 5), (1, 1, 3))
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    page = e.to_html()
    assert "<img" not in page and "no picture: Explanation.plot needs matplotlib" in page


def test_plot_without_path_returns_a_figure(explanation: cg.Explanation) -> None:
    from matplotlib.figure import Figure

    fig = explanation.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert "not values" in titles  # the labels are named as labels, not magnitudes


def test_worked_numbers_in_every_format() -> None:
    x = 10 * np.arange(25.0).reshape(1, 1, 5, 5)
    w = np.arange(9.0).reshape(1, 1, 3, 3)
    e = cg.explain(x, w)
    text, md, page, data = str(e), e.to_markdown(), e.to_html(picture=False), e.to_dict()
    assert "Your numbers" in text and "#### Your numbers" in md and ">Your numbers<" in page
    assert "= 5280  (convgrad: 5280)" in text and "= 5280  (convgrad: 5280)" in md
    assert data["worked"]["indices"]["output"] == [0, 0, 1, 1]
    assert data["worked"]["loop"]["status"] == "verified"
    assert "with your numbers at y[0, 0, 1, 1] and x[0, 0, 2, 2]" in repr(e)


# ----------------------------------------------------------------------------- GradcheckResult


@pytest.fixture(scope="module")
def results() -> tuple[cg.GradcheckResult, cg.GradcheckResult]:
    x = 10.0 * np.arange(25.0).reshape(1, 1, 5, 5)
    w = np.arange(9.0).reshape(1, 1, 3, 3)

    def forgot_flip(g: Any, x: Any, w: Any) -> Any:
        return cg.conv_input_grad(g, w[..., ::-1, ::-1], input_shape=x.shape), cg.conv_backward(g, x, w).weight

    good = cg.gradcheck(cg.conv, (x, w), lambda g, x, w: cg.conv_backward(g, x, w)[:2])
    bad = cg.gradcheck(cg.conv, (x, w), forgot_flip)
    return good, bad


def test_gradcheck_repr_is_one_line(results: tuple[cg.GradcheckResult, cg.GradcheckResult]) -> None:
    good, bad = results
    assert repr(good).startswith("<GradcheckResult PASSED, full mode: input 0 ok (") and "\n" not in repr(good)
    assert "input 0 FAIL (14)" in repr(bad) and "input 1 ok" in repr(bad)
    assert len(repr(bad)) < 120


def test_gradcheck_markdown_and_html(results: tuple[cg.GradcheckResult, cg.GradcheckResult]) -> None:
    good, bad = results
    md = bad.to_markdown()
    assert md.startswith("**gradcheck FAILED** (full mode: every entry") and md == bad._repr_markdown_()
    rows = [line for line in md.splitlines() if line.startswith("| 0 ") or line.startswith("| 1 ")]
    assert len(rows) == 2 and rows[0].endswith("| **FAIL** |") and rows[1].endswith("| **ok** |")
    page = bad.to_html()
    tags = _parse(page)
    spans = [a.get("style", "") for n, a in tags.seen if n == "span"]
    assert sum(_render.COLORS["fail"] in s for s in spans) == 2  # the verdict and input 0
    assert sum(_render.COLORS["ok"] in s for s in spans) == 1  # input 1
    assert good.to_html(standalone=True).startswith("<!DOCTYPE html>")
    _parse(good.to_html(standalone=True))


def test_gradcheck_plot(results: tuple[cg.GradcheckResult, cg.GradcheckResult], tmp_path: Any) -> None:
    from matplotlib.figure import Figure

    _, bad = results
    fig = bad.plot(str(tmp_path / "g.png"))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert bad.numeric[0].shape == (1, 1, 5, 5) and bad.analytic[1].shape == (1, 1, 3, 3)
    fast = cg.gradcheck(cg.conv, (np.ones((1, 1, 4)), np.ones((1, 1, 2))),
                        lambda g, x, w: cg.conv_backward(g, x, w)[:2], mode="fast")
    assert isinstance(fast.plot(), Figure)


# ----------------------------------------------------------------------------- the shared mixin


@dataclass(frozen=True, repr=False)
class _Report(_render.TextReportRepr):
    passed: bool

    def __str__(self) -> str:
        return "convgrad conformance check: FAILED (1 of 2 functions)\n  torch convention\n  a\n  b <&>"


def test_text_report_mixin() -> None:
    r = _Report(False)
    assert repr(r) == ("convgrad conformance check: FAILED (1 of 2 functions)\n  torch convention\n"
                       "  ... 2 more lines: print() it for the whole report")
    assert r._repr_markdown_().startswith("**convgrad conformance check: FAILED (1 of 2 functions)**\n\n```text\n")
    page = r._repr_html_()
    tags = _parse(page)
    assert "b &lt;&amp;&gt;" in page and _render.COLORS["fail"] in page
    assert any("overflow-x: auto" in s for s in _styles(tags, "pre"))
    assert r.to_html(standalone=True).startswith("<!DOCTYPE html>")


def test_fence_is_longer_than_any_backticks_inside() -> None:
    assert _render.fence("a ``` b", "text") == "````text\na ``` b\n````"
