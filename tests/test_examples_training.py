"""The training, sampling and evaluation commands, run end to end as a user runs them."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _run(script, *args, cwd=None):
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *map(str, args)], capture_output=True, text=True,
        cwd=cwd or ROOT, timeout=600, check=False,
    )


def _load(script):
    spec = importlib.util.spec_from_file_location(script.removesuffix(".py"), EXAMPLES / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_arguments_means_the_tiny_shapes_run_on_cpu():
    from ratlip_layers.training import TrainConfig

    args = vars(_load("train_cub.py").parse_args([]))
    args.pop("no_progress")
    config = TrainConfig.resolve(**args)
    assert (config.preset, config.dataset, config.clip_model, config.clip_pretrained) == (
        "tiny", "shapes", "tiny", "pretrain",
    )
    assert config.sim_weight == 4.0 and config.clip_cache == "runs/clip"
    assert config.out == "runs/shapes-tiny" and config.device == "auto" and config.steps == 2500


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    result = _run(
        "train_cub.py", "--clip-pretrained", "none", "--steps", 4, "--batch-size", 4, "--device", "cpu",
        "--out", root / "run", "--sample-every", 2, "--save-every", 2, "--eval-images", 32, "--fid-cache",
        root / "fid", "--log-every", 2, "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    assert "metrics step=4" in result.stderr and "colour_acc=" in result.stderr
    # Without a progress bar (batch jobs) the losses still reach the log, every --log-every steps.
    assert "step=2 loss_d=" in result.stderr and "step=4 loss_d=" in result.stderr
    return root / "run"


@pytest.mark.slow
def test_train_writes_a_complete_run_directory(run_dir):
    assert (run_dir / "config.json").is_file()
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-00000002", "step-00000004"]
    assert {"real.png", "step-00000002.png", "step-00000004.png"} <= {
        p.name for p in (run_dir / "samples").iterdir()
    }
    assert json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 4


@pytest.mark.slow
def test_sample_grid_is_reproducible_and_individual_pngs(run_dir, tmp_path):
    captions = [
        "--caption", "a red circle on a blue background", "--caption", "a green square on a white background",
    ]
    for name in ("a.png", "b.png"):
        result = _run(
            "sample.py", "--checkpoint", run_dir, *captions, "--n", 3, "--seed", 5, "--out", tmp_path / name
        )
        assert result.returncode == 0, result.stderr
        assert "ema weights" in result.stdout
    a, b = Image.open(tmp_path / "a.png"), Image.open(tmp_path / "b.png")
    assert a.size == (240 + 3 * 68 + 4, 2 * 68 + 4)  # 32 px images shown at 64 px, captions beside
    assert a.tobytes() == b.tobytes()
    other = _run(
        "sample.py", "--checkpoint", run_dir, *captions, "--n", 3, "--seed", 6, "--out", tmp_path / "c.png"
    )
    assert other.returncode == 0 and Image.open(tmp_path / "c.png").tobytes() != a.tobytes()
    result = _run(
        "sample.py", "--checkpoint", run_dir / "checkpoints" / "step-00000002", *captions, "--n", 2,
        "--out-dir", tmp_path / "pngs",
    )
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "pngs").iterdir())
    assert names == ["caption00-0000.png", "caption00-0001.png", "caption01-0000.png", "caption01-0001.png"]
    assert Image.open(tmp_path / "pngs" / names[0]).size == (32, 32)


@pytest.mark.slow
def test_evaluate_prints_and_saves_both_metrics(run_dir, tmp_path):
    out = tmp_path / "eval.json"
    result = _run(
        "evaluate.py", "--checkpoint", run_dir, "--dataset", "shapes", "--num-images", 32, "--fid-cache",
        tmp_path / "fid", "--out", out, "--device", "cpu",
    )
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    assert json.loads(result.stdout) == saved
    assert {"clip_score", "fid_clip", "colour_acc"} <= set(saved["metrics"])
    assert saved["step"] == 4 and saved["weights"] == "ema" and "image embedding" in saved["fid_features"]


def test_missing_cub_data_is_explained(tmp_path):
    result = _run(
        "train_cub.py",
        "--dataset",
        "cub",
        "--data-dir",
        tmp_path / "birds",
        "--clip-cache",  # the default --clip-pretrained pretrain reads the data first, and fails there
        tmp_path / "clip",
        "--steps",
        1,
        "--device",
        "cpu",
        "--out",
        tmp_path / "run",
    )
    assert result.returncode == 1
    assert "error: CUB data dir" in result.stderr and "Expected layout" in result.stderr
    assert "docs/training.rst" in result.stderr and "Traceback" not in result.stderr


def test_sample_reports_a_missing_checkpoint(tmp_path):
    result = _run("sample.py", "--checkpoint", tmp_path, "--caption", "x")
    assert result.returncode == 1 and "no checkpoint at" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_sigterm_saves_and_exits_143_so_schedulers_see_an_unfinished_run(tmp_path):
    import signal
    import time

    run = tmp_path / "run"
    args = ["--clip-pretrained", "none", "--steps", 100000, "--batch-size", 2, "--eval-images", 4, "--device", "cpu", "--out", run]
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "train_cub.py"), "--no-progress", *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    deadline = time.monotonic() + 300
    while not (run / "samples" / "real.png").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # the loop starts right after the real-image grid is written
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 143, stderr
    assert "received SIGTERM" in stderr and "Traceback" not in stderr
    assert any(p.name.startswith("step-") for p in (run / "checkpoints").iterdir())
