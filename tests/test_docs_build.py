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
            _assert_internal_links_resolve(tmp_path / "html")
            _assert_code_fits_the_page(tmp_path / "html")


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


_LINK = re.compile(r"<(?:a|link|img|script)\b[^>]*?\s(?:href|src)=\"([^\"]*)\"", re.IGNORECASE)
_ID = re.compile(r"\sid=\"([^\"]+)\"")


def _assert_internal_links_resolve(html: Path) -> None:
    """Every relative link and image of every page reaches a file of the build, and every
    ``#anchor`` an element of its page: no link that points nowhere."""
    ids: dict[Path, set[str]] = {}
    broken = []
    pages = [page for page in html.rglob("*.html") if "_static" not in page.relative_to(html).parts]
    for page in pages:
        for url in _LINK.findall(page.read_text(encoding="utf-8")):
            url = url.replace("&amp;", "&")
            if re.match(r"([a-z][a-z0-9+.-]*:|//)", url, re.IGNORECASE):
                continue  # external (not reachable from an offline build) or mailto:
            path, _, anchor = url.partition("#")
            target = (page.parent / path.split("?")[0]).resolve() if path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(html)} -> {url} (no such file)")
            elif anchor and target.suffix == ".html":
                if target not in ids:
                    ids[target] = set(_ID.findall(target.read_text(encoding="utf-8")))
                if anchor not in ids[target]:
                    broken.append(f"{page.relative_to(html)} -> {url} (no such anchor)")
    assert pages and not broken, "links that point nowhere:\n" + "\n".join(broken)


# Furo's content column holds about 90 characters of code at a laptop's width (1366 px); longer
# lines scroll off the side. The API pages show the docstrings' examples and are not checked here.
_MAX_CODE_LINE = 90


def _assert_code_fits_the_page(html: Path) -> None:
    """The code blocks of the hand-written pages fit the content column."""
    import html as html_lib

    long = []
    for page in html.rglob("*.html"):
        relative = page.relative_to(html)
        if relative.parts[0] in ("api", "_static", "_sources"):
            continue
        for block in re.findall(r"<pre[^>]*>(.*?)</pre>", page.read_text(encoding="utf-8"), re.DOTALL):
            text = html_lib.unescape(re.sub(r"<[^>]+>", "", block))
            long += [f"{relative}: {line}" for line in text.splitlines() if len(line) > _MAX_CODE_LINE]
    assert not long, f"code lines over {_MAX_CODE_LINE} characters run off the page:\n" + "\n".join(long)
