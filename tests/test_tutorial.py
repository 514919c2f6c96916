"""The tutorial notebook runs from top to bottom (nbclient), with the outputs it promises.

Skipped, with the reason, when nbclient, nbformat or ipykernel is not installed (the ``test`` extra has them).
"""

from __future__ import annotations

import pathlib
import re

import pytest

nbformat = pytest.importorskip("nbformat", reason="the tutorial test needs nbformat (the test extra)")
nbclient = pytest.importorskip("nbclient", reason="the tutorial test needs nbclient (the test extra)")
pytest.importorskip("ipykernel", reason="the tutorial test needs ipykernel (the test extra)")
pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"


def _text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        for kind in ("text/plain", "text/html", "text/markdown"):
            if kind in out.get("data", {}):
                parts.append(out["data"][kind])
    return "\n".join(parts)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=False,
                                     resources={"metadata": {"path": str(tmp_path_factory.mktemp("tutorial"))}})
    client.execute()
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_the_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_it_runs_and_shows_what_it_says(executed: list[dict]) -> None:
    everything = "\n".join(_text(cell) for cell in executed)
    assert "array([[[ 9., 20., 22., 24., 41.]]])" in everything  # the 1-D example
    assert "= 22  (convgrad: 22)" in everything  # the worked sum with the user's numbers
    assert "gx = cg.conv_transpose(g, w, stride=2, padding=1, output_padding=1)" in everything
    assert "reflect   [2. 4. 3. 3. 4. 2.]" in everything
    assert "8.056641" in everything  # the float32 central difference that is not 8
    assert "<GradcheckResult FAILED, full mode: input 0 FAIL" in everything
    assert "True for convolve2d" in everything and "False for correlate2d" in everything
    pictures = sum("image/png" in out.get("data", {}) for cell in executed for out in cell.get("outputs", []))
    assert pictures >= 3  # explain's pictures and gradcheck's
    players = [cell for cell in executed if "animate(" in cell.source]
    assert len(players) == 3
    for cell in players:  # the animations inline: matplotlib's player with its frames
        html = _text(cell)
        assert "<script" in html and len(re.findall(r"data:image/png;base64,", html)) >= 5


def test_no_example_is_called_a_seed() -> None:
    text = NOTEBOOK.read_text()
    assert not re.search(r"seed\s*0\d\d|seed notebook|seeds/", text, flags=re.IGNORECASE)
