"""Markdown and HTML renderings of results: Jupyter reprs and standalone pages.

Everything here is plain string building (no template engine, no JavaScript).
The HTML fragments carry their styles inline, on each element, so that they
look the same in Jupyter, in VS Code, in an e-mail and on a page; code blocks
scroll inside their own box instead of widening the page. A standalone page
(:func:`standalone_page`) adds a ``<head>`` with the character set, a viewport
and a small inline style sheet for the page body.

:class:`TextReportRepr` gives any result object with a ``passed`` attribute
and a readable ``str()`` the short ``repr``, ``to_markdown()``, ``to_html()``
and the Jupyter reprs.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

__all__ = [
    "TextReportRepr",
    "badge",
    "code_html",
    "figure_data_uri",
    "fragment",
    "md_cell",
    "standalone_page",
    "table_html",
]

FONT = ("-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Noto Sans', "
        "sans-serif")
MONO = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', 'Liberation Mono', monospace"

COLORS = {"ok": "#1a7f37", "fail": "#cf222e", "neutral": "#57606a"}
"""Text colour of a verdict: passed or verified, failed, not run."""
BACKGROUNDS = {"ok": "#dafbe1", "fail": "#ffebe9", "neutral": "#eaeef2"}

ROOT_STYLE = (f"font-family: {FONT}; font-size: 14px; line-height: 1.45; color: #1f2328; max-width: 100%; "
              "box-sizing: border-box; overflow-wrap: anywhere;")
H_STYLE = "margin: 0.9em 0 0.4em 0; line-height: 1.25; overflow-wrap: anywhere;"
PRE_STYLE = (f"font-family: {MONO}; font-size: 12.5px; line-height: 1.4; background: #f6f8fa; color: #1f2328; "
             "border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 10px; margin: 0.3em 0 0.8em 0; "
             "max-width: 100%; box-sizing: border-box; overflow-x: auto; white-space: pre; text-align: left;")
TABLE_STYLE = "border-collapse: collapse; margin: 0.4em 0 0.8em 0; max-width: 100%; font-size: 13px;"
CELL_STYLE = "border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top;"
HEAD_STYLE = CELL_STYLE + " background: #f6f8fa; font-weight: 600;"
IMG_STYLE = "max-width: 100%; height: auto; display: block; margin: 0.5em 0; border: 1px solid #d0d7de;"

PAGE_CSS = f"""
html {{ -webkit-text-size-adjust: 100%; }}
body {{ margin: 0; padding: 16px 20px 32px 20px; background: #ffffff; font-family: {FONT}; }}
main {{ max-width: 1100px; margin: 0 auto; }}
code {{ font-family: {MONO}; }}
details > summary {{ cursor: pointer; }}
""".strip()


def esc(text: object) -> str:
    """``text`` as HTML text (quotes escaped too)."""
    return html.escape(str(text), quote=True)


def badge(text: str, kind: str) -> str:
    """A coloured verdict: ``kind`` is ``"ok"``, ``"fail"`` or ``"neutral"``."""
    return (f"<span style='color: {COLORS[kind]}; background: {BACKGROUNDS[kind]}; border-radius: 4px; "
            f"padding: 0 5px; font-weight: 600;'>{esc(text)}</span>")


def code_html(code: str) -> str:
    """A code block that scrolls inside its own box."""
    return f"<pre style=\"{PRE_STYLE}\"><code>{esc(code.rstrip(chr(10)))}</code></pre>"


def heading(level: int, text: str) -> str:
    return f"<h{level} style='{H_STYLE}'>{esc(text)}</h{level}>"


def table_html(header: Sequence[str], rows: Sequence[Sequence[str]], *, code_columns: Sequence[int] = ()) -> str:
    """A table of escaped text; the cells of ``code_columns`` in a monospace font."""
    head = "".join(f"<th style='{HEAD_STYLE}'>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = f"<code>{esc(cell)}</code>" if i in code_columns else esc(cell)
            cells.append(f"<td style='{CELL_STYLE}'>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div style='max-width: 100%; overflow-x: auto;'><table style='{TABLE_STYLE}'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def fragment(body: str, css_class: str) -> str:
    """The root ``<div>`` of a Jupyter repr."""
    return f"<div class='{css_class}' style=\"{ROOT_STYLE}\">{body}</div>"


def standalone_page(title: str, body: str) -> str:
    """A complete HTML5 page around an HTML fragment: character set, viewport, inline CSS, no external resources."""
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{esc(title)}</title>\n<style>\n{PAGE_CSS}\n</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def figure_data_uri(fig: Any, *, dpi: int = 80) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_html(uri: str, alt: str) -> str:
    return f"<img src='{uri}' alt='{esc(alt)}' style='{IMG_STYLE}'>"


def md_cell(text: object) -> str:
    """``text`` for a Markdown table cell (pipes escaped, one line)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def fence(code: str, language: str = "") -> str:
    """A fenced Markdown code block long enough for any backticks inside ``code``."""
    ticks = "```"
    while ticks in code:
        ticks += "`"
    return f"{ticks}{language}\n{code.rstrip(chr(10))}\n{ticks}"


class TextReportRepr:
    """Jupyter reprs for a result with a ``passed`` attribute and a readable ``str()``.

    The first line of ``str(self)`` is the heading, coloured by the verdict;
    the rest is shown as preformatted text. ``repr()`` is the first two lines
    of ``str(self)``, so that a notebook cell that ends with the result shows
    a short summary in a terminal and the whole report as HTML. A frozen
    dataclass that uses this mixin needs ``repr=False`` so that its generated
    ``__repr__`` does not replace this one.
    """

    passed: bool

    def _report_lines(self) -> list[str]:
        return str(self).splitlines() or [type(self).__name__]

    def __repr__(self) -> str:
        lines = self._report_lines()
        more = len(lines) - 2
        tail = [f"  ... {more} more lines: print() it for the whole report"] if more > 0 else []
        return "\n".join(lines[:2] + tail)

    def to_markdown(self) -> str:
        """The report as Markdown: the verdict line in bold, the rest as a text block."""
        lines = self._report_lines()
        out = [f"**{md_cell(lines[0])}**"]
        if len(lines) > 1:
            out += ["", fence("\n".join(lines[1:]), "text")]
        return "\n".join(out) + "\n"

    def to_html(self, standalone: bool = False) -> str:
        """The report as HTML: a fragment (Jupyter) or, with ``standalone=True``, a whole page."""
        lines = self._report_lines()
        kind = "ok" if self.passed else "fail"
        body = f"<p style='margin: 0.3em 0;'>{badge(lines[0], kind)}</p>"
        if len(lines) > 1:
            body += code_html("\n".join(lines[1:]))
        frag = fragment(body, "convgrad-report")
        return standalone_page(lines[0], frag) if standalone else frag

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        return self.to_html()
