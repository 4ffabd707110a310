"""examples/drop_in.py runs, and its two generators behave as the example says."""

from __future__ import annotations

import runpy
from pathlib import Path

import torch

from .layers.cases import perturb_

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "drop_in.py"


def test_example_runs_as_a_script(capsys):
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "df_gan: 83,139 parameters, images of shape (4, 3, 32, 32)" in out
    assert "identical at initialisation (identity affine heads): True" in out


def test_generators_match_at_init_and_rat_stays_per_sample():
    example = runpy.run_path(str(EXAMPLE))
    outputs = example["main"]()
    torch.testing.assert_close(outputs["rat_gan"], outputs["df_gan"], rtol=0, atol=1e-6)
    rat = perturb_(example["RATGANGenerator"]()).eval()
    noise, sentence = torch.randn(3, 32), torch.randn(3, 64)
    batch = rat(noise, sentence)
    other = sentence.clone()
    other[1:] = torch.randn(2, 64)
    torch.testing.assert_close(rat(noise, other)[0], batch[0], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(rat(noise, other)[1:], batch[1:])
