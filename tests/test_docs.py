"""The documentation site builds in strict mode (MkDocs Material, mkdocstrings, the executed tutorial).

Skipped, with the reason, when MkDocs and its plugins are not installed (``pip install -e ".[docs]"``).
Also: the examples of the pages written for the site run as doctests, and no page calls a worked example
a "seed".
"""

from __future__ import annotations

import doctest
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOCTESTED = ("index.md", "explain.md")


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not all(_have(m) for m in ("mkdocs", "material", "mkdocstrings", "mkdocs_jupyter")),
                    reason="the docs build needs mkdocs, mkdocs-material, mkdocstrings[python] and mkdocs-jupyter "
                    "(pip install -e '.[docs]')")
def test_site_builds_strictly(tmp_path: pathlib.Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(site)], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
                          check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert not re.search(r"^WARNING", log, flags=re.MULTILINE), log[-4000:]
    assert not (ROOT / ".cache").exists()  # the notebook cache is off: nothing written into the checkout
    api = (site / "api" / "index.html").read_text()
    for name in ("convgrad.conv", "convgrad._explain.explain", "convgrad._animate.animate",
                 "convgrad._gradcheck.GradcheckResult"):
        assert f'id="{name}"' in api, name
    tutorial = (site / "tutorial" / "index.html").read_text()
    assert tutorial.count("data:image/png;base64,") > 20  # executed: pictures and animation frames
    for page in ("index.html", "mathematics/index.html", "conventions/index.html", "cli/index.html",
                 "performance/index.html", "explain/index.html"):
        assert (site / page).exists(), page


@pytest.mark.parametrize("page", DOCTESTED)
def test_page_examples_run(page: str) -> None:
    pytest.importorskip("matplotlib")
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testfile(str(DOCS / page), module_relative=False, optionflags=flags, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_no_worked_example_is_called_a_seed() -> None:
    """'seed' means a random seed only: no 'seed 000', 'seed notebook' or path into the notebooks' folder."""
    bad = re.compile(r"seed\s*0\d\d|seed notebook|seeds/|seed's", flags=re.IGNORECASE)
    files = [*DOCS.glob("*.md"), DOCS / "tutorial.ipynb", ROOT / "mkdocs.yml",
             *(ROOT / "src" / "convgrad").glob("*.py"), ROOT / "examples" / "digits.py"]
    found = [f"{path.name}: {m.group(0)}" for path in files for m in bad.finditer(path.read_text())]
    assert found == []
