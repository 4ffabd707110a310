"""The whole documentation builds with warnings as errors, and every example in it runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="the docs extra (pip install -e '.[docs]') is not installed")

DOCS = Path(__file__).resolve().parents[1] / "docs"

pytestmark = pytest.mark.slow


def test_html_and_doctest_builds_pass_with_warnings_as_errors(tmp_path):
    doctrees = tmp_path / "doctrees"
    for builder in ("html", "doctest"):
        result = subprocess.run(
            [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder,
             "-d", str(doctrees), str(DOCS), str(tmp_path / builder)],
            capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 0, f"sphinx -b {builder} failed:\n{result.stdout}\n{result.stderr}"
        if builder == "html":
            _assert_maths_is_local(tmp_path / "html")


def _assert_maths_is_local(html: Path) -> None:
    """Pages with maths load MathJax from the build output, never from http(s): offline readers
    would otherwise see raw TeX."""
    script = re.compile(r"<script[^>]*\bsrc=\"([^\"]+)\"", re.IGNORECASE)
    with_maths = 0
    for page in html.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if 'class="math' not in text:
            continue
        with_maths += 1
        sources = script.findall(text)
        mathjax = [src for src in sources if "mathjax" in src.lower()]
        assert mathjax, f"{page.relative_to(html)} has maths but loads no MathJax"
        for src in mathjax:
            assert not re.match(r"(https?:)?//", src), f"{page.relative_to(html)} loads maths from {src}"
            local = (page.parent / src.split("?")[0].split("#")[0]).resolve()
            assert local.is_file(), f"{page.relative_to(html)} references {src}, missing from the build"
    assert with_maths, "no page has maths: the check above checked nothing"
