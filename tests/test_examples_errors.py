"""A user's mistake ends a script with a line naming the problem and exit status 1, never a
traceback; usage errors exit 2, as argparse does."""

import importlib.util
from pathlib import Path

import pytest
import torch

from ratlip_layers import GeneratorConfig, RATLIPGenerator, tiny_clip

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _main(script):
    spec = importlib.util.spec_from_file_location(script.removesuffix(".py"), EXAMPLES / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pretrained")
    clip_model, tokenizer = tiny_clip()
    torch.manual_seed(0)
    RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def _broken_copy(pretrained, tmp_path, name, content):
    folder = tmp_path / "broken"
    folder.mkdir()
    for file in pretrained.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    (folder / name).write_bytes(content)
    return folder


def _fails_with_one_line(capsys, main, argv, *expected):
    assert main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err.strip()
    # One line naming the problem (a data-layout error adds the expected layout below it).
    assert err.startswith("error: ") and "Traceback" not in err, err
    for text in expected:
        assert text in err, err
    return err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--device", "gpu"], ["device must be", "got 'gpu'"]),
        (["--resume", "no/such/run"], ["resume must be 'auto' or an existing checkpoint or run directory, got 'no/such/run'"]),
        (["--inception-weights", "no/such.pth"], ["inception_weights must be an existing file, got 'no/such.pth'"]),
        (["--lr-g", "nan"], ["lr_g must be a finite number > 0, got nan"]),
        (["--eval-images", "0"], ["eval_images must be a positive int, got 0"]),
        (["--clip-model", "ViT-B-23"], ["got 'ViT-B-23'", "ViT-B-32"]),
        (["--fid-features", "torchvision"], ["needs inception_weights"]),
        (["--dataset", "cub", "--data-dir", "no/such/birds"], ["no/such/birds"]),
    ],
)
def test_train(capsys, tmp_path, argv, expected):
    argv = [*argv, "--clip-pretrained", "none", "--steps", 1, "--out", tmp_path / "run"]
    _fails_with_one_line(capsys, _main("train_cub.py"), argv, *expected)


def test_train_out_onto_a_file(capsys, tmp_path):
    (tmp_path / "a-file").write_text("keep me")
    argv = ["--clip-pretrained", "none", "--steps", 1, "--batch-size", 2, "--device", "cpu", "--no-progress", "--out", tmp_path / "a-file"]
    _fails_with_one_line(capsys, _main("train_cub.py"), argv, "File exists", str(tmp_path / "a-file"))
    assert (tmp_path / "a-file").read_text() == "keep me"


def test_train_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _main("train_cub.py")(["--steps", "many"])
    assert exit_info.value.code == 2 and "invalid int value: 'many'" in capsys.readouterr().err


def _places(tmp_path):
    """A directory, a file, and a folder holding weights but no config.json, for the bad paths below."""
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "a-file").write_text("keep me")
    (tmp_path / "no-config").mkdir()
    (tmp_path / "no-config" / "model.safetensors").write_bytes(b"")
    return {"dir": tmp_path / "a-dir", "file": tmp_path / "a-file", "no_config": tmp_path / "no-config"}


SAMPLE = [
    # (argv: {dir}, {file}, {no_config} and {pretrained} are filled in; what the error line says)
    (["--n", "0"], ["n must be a positive int, got 0"]),
    (["--n", "-1"], ["n must be a positive int, got -1"]),
    (["--out", "{dir}"], ["path must be a PNG file to write, got {dir}, an existing directory"]),
    (["--out", "{file}/grid.png"], ["cannot write {file}/grid.png", "{file} should be"]),
    (["--out-dir", "{file}"], ["cannot write {file}/caption00-0000.png"]),
    (["--checkpoint", "{no_config}"], ["{no_config}/config.json is missing"]),
]


@pytest.mark.parametrize(("argv", "expected"), SAMPLE, ids=[" ".join(argv) for argv, _ in SAMPLE])
def test_sample_table(capsys, tmp_path, pretrained, argv, expected):
    places = {**_places(tmp_path), "pretrained": pretrained}
    base = ["--checkpoint", pretrained, "--caption", "a red circle on a blue background", "--device", "cpu"]
    argv = [*base, "--n", 2, *(a.format(**places) for a in argv)]  # a later flag wins over base's
    if "--out" not in argv and "--out-dir" not in argv:
        argv += ["--out", tmp_path / "grid.png"]
    _fails_with_one_line(capsys, _main("sample.py"), argv, *(e.format(**places) for e in expected))
    assert (tmp_path / "a-file").read_text() == "keep me" and not list((tmp_path / "a-dir").iterdir())


@pytest.mark.parametrize(
    ("script", "argv", "expected"),
    [
        ("sample.py", ["--checkpoint", "x", "--caption", ""], "argument --caption: must hold some text, got ''"),
        ("sample.py", ["--checkpoint", "x", "--caption", "  "], "argument --caption: must hold some text, got '  '"),
        ("sample.py", ["--checkpoint", "x", "--caption", "a", "--out-dir", ""], "argument --out-dir: must hold some text, got ''"),
        ("evaluate.py", ["--checkpoint", "x", "--score-clip-pretrained", "w.pt"], "needs --score-clip-model"),
    ],
)
def test_usage_errors_exit_2(capsys, script, argv, expected):
    with pytest.raises(SystemExit) as exit_info:
        _main(script)(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and expected in err and "Traceback" not in err, err


def test_sample(capsys, tmp_path, pretrained):
    sample = _main("sample.py")
    caption = ["--caption", "a red circle on a blue background", "--out", tmp_path / "grid.png"]
    _fails_with_one_line(capsys, sample, ["--checkpoint", tmp_path / "none", *caption], "no checkpoint at")
    truncated = _broken_copy(pretrained, tmp_path, "model.safetensors", b"\x00" * 7)
    _fails_with_one_line(capsys, sample, ["--checkpoint", truncated, *caption], f"{truncated}/model.safetensors is unreadable")


def test_sample_reports_a_corrupt_config(capsys, tmp_path, pretrained):
    folder = _broken_copy(pretrained, tmp_path, "config.json", b"{not json")
    caption = ["--caption", "a red circle on a blue background", "--out", tmp_path / "grid.png"]
    _fails_with_one_line(capsys, _main("sample.py"), ["--checkpoint", folder, *caption], f"{folder}/config.json is unreadable: Expecting property name")
    assert (folder / "config.json").read_bytes() == b"{not json"  # reported, never deleted or rewritten


def test_evaluate(capsys, tmp_path, pretrained):
    evaluate = _main("evaluate.py")
    argv = ["--checkpoint", pretrained, "--dataset", "shapes", "--device", "cpu"]
    _fails_with_one_line(capsys, evaluate, [*argv, "--num-images", 0], "num_images must be a positive int, got 0")
    _fails_with_one_line(capsys, evaluate, [*argv, "--num-images", 4, "--fid-features", "inception"], "--inception-weights")
    _fails_with_one_line(capsys, evaluate, [*argv[:4], "--device", "gpu"], "got 'gpu'")
    _fails_with_one_line(capsys, evaluate, ["--checkpoint", tmp_path, "--dataset", "shapes"], f"no checkpoint at {tmp_path}")
    _fails_with_one_line(capsys, evaluate, [*argv, "--out", tmp_path], f"--out must be a JSON file to write, got {tmp_path}")


def test_evaluate_prints_the_results_it_cannot_save(capsys, tmp_path, pretrained):
    (tmp_path / "a-file").write_text("keep me")
    argv = ["--checkpoint", pretrained, "--dataset", "shapes", "--device", "cpu", "--num-images", 4]
    argv += ["--metrics", "shapes_accuracy", "--out", tmp_path / "a-file" / "eval.json"]
    assert _main("evaluate.py")([str(a) for a in argv]) == 1
    out, err = capsys.readouterr()
    assert '"colour_acc"' in out and (tmp_path / "a-file").read_text() == "keep me"
    assert err.strip().splitlines()[-1].startswith("error: the results are above but could not be saved")
    assert "Traceback" not in err and str(tmp_path / "a-file") in err, err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--steps", "0"], ["steps must be a positive int, got 0"]),
        (["--steps", "3", "--warmup", "5"], ["warmup must be smaller than steps (3), got 5"]),
        (["--device", "gpu"], ["got 'gpu'"]),
        (["--dataset", "cub", "--data-dir", "no/such/birds"], ["no/such/birds"]),
        (["--out", "{file}"], ["File exists", "{file}"]),
        (["--cache", "{file}"], ["Not a directory", "{file}/shapes-tiny-32px-"]),
    ],
)
def test_pretrain_clip(capsys, tmp_path, argv, expected):
    places = _places(tmp_path)
    argv = ["--out", tmp_path / "clip", *(a.format(**places) for a in argv), "--no-progress"]
    if "--cache" in argv:
        argv = argv[2:]  # the default --out lies in the cache
    _fails_with_one_line(capsys, _main("pretrain_clip.py"), argv, *(e.format(**places) for e in expected))
