"""The whole documentation builds with warnings as errors, and every example in it runs."""

from __future__ import annotations

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
