"""CLIP pre-training (pretrain_clip) and a run's CLIP weights file: recorded, verified, rebuilt."""

import json

import pytest
import torch
from safetensors.torch import load_file

from ratlip_layers.clip import clip_spec, file_sha256, tiny_clip
from ratlip_layers.training import CLIPPretrainConfig, Trainer, load_generator, pretrain_clip

FEW = {"steps": 4, "warmup": 1, "batch_size": 16, "device": "cpu", "save_every": 2}


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("clip")
    return pretrain_clip(CLIPPretrainConfig(out=str(out), **FEW), progress=False)


def test_pretraining_writes_weights_config_and_report(pretrained):
    folder = pretrained.weights.parent
    assert not pretrained.cached
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoints", "clip.safetensors", "config.json", "report.json"]
    assert list((folder / "checkpoints").iterdir()) == []  # the weights file replaces them
    report = json.loads((folder / "report.json").read_text())
    assert report == pretrained.report and report["num_items"] == 1024
    for key in ("image_to_text_r1", "text_to_image_r1", "zero_shot_acc", "zero_shot_shape"):
        assert 0.0 <= report[key] <= 1.0
    assert -1.0 <= report["swapped_colour_cosine"] <= 1.0


def test_the_weights_load_into_the_tiny_clip_and_differ_from_its_initialisation(pretrained):
    model, _ = tiny_clip(str(pretrained.weights))
    saved = load_file(str(pretrained.weights))
    assert _same_weights(model.state_dict(), saved)
    torch.manual_seed(0)
    assert not _same_weights(tiny_clip()[0].state_dict(), saved)
    assert clip_spec(model)["weights_sha256"] == file_sha256(pretrained.weights)


def test_a_finished_run_is_reused_and_other_options_are_refused(pretrained):
    folder = pretrained.weights.parent
    again = pretrain_clip(CLIPPretrainConfig(out=str(folder), **FEW), progress=False)
    assert again.cached and again.report == pretrained.report
    with pytest.raises(ValueError, match="other options"):
        pretrain_clip(CLIPPretrainConfig(out=str(folder), **{**FEW, "lr": 1e-3}), progress=False)


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, pretrained, monkeypatch):
    from open_clip.loss import ClipLoss

    calls = {"n": 0}
    forward = ClipLoss.forward

    def stop_at_third_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(ClipLoss, "forward", stop_at_third_step)
    config = CLIPPretrainConfig(out=str(tmp_path / "clip"), **FEW)
    with pytest.raises(KeyboardInterrupt):
        pretrain_clip(config, progress=False)
    assert [p.name for p in (tmp_path / "clip" / "checkpoints").iterdir()] == ["step-00000002"]
    monkeypatch.setattr(ClipLoss, "forward", forward)
    resumed = pretrain_clip(config, progress=False)
    assert _same_weights(load_file(str(resumed.weights)), load_file(str(pretrained.weights)))


def test_the_default_folder_depends_on_the_options_that_decide_the_weights():
    base = CLIPPretrainConfig()
    assert base.run_dir() == CLIPPretrainConfig(device="cuda", save_every=7).run_dir()
    assert base.run_dir() != CLIPPretrainConfig(steps=600).run_dir()
    assert base.run_dir().name.startswith("shapes-tiny-32px-")


@pytest.mark.parametrize(
    ("options", "match"),
    [({"steps": 0}, "steps must be a positive int, got 0"), ({"warmup": 4, "steps": 4}, "warmup must be smaller"),
     ({"lr": float("nan")}, "lr must be a finite number > 0"), ({"dataset": "mnist"}, "dataset must be one of")],
)
def test_bad_options_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        CLIPPretrainConfig(**options).validate()


def test_a_run_records_its_clip_file_and_sampling_rebuilds_the_same_clip(pretrained, tiny_config, tmp_path):
    file = tmp_path / "clip.safetensors"
    file.write_bytes(pretrained.weights.read_bytes())
    config = tiny_config(steps=1, clip_pretrained=str(file))
    trainer = Trainer(config, progress=False)
    trainer.fit()
    saved = json.loads((trainer.run_dir / "config.json").read_text())
    assert saved["clip_pretrained"] == str(file) and saved["clip_sha256"] == file_sha256(file)
    generator, info = load_generator(trainer.run_dir)
    assert _same_weights(generator.clip_model.state_dict(), load_file(str(file)))
    # The file changed after the run: rebuilding from it would give another CLIP, so it is refused.
    weights = load_file(str(file))
    weights["logit_scale"] = weights["logit_scale"] + 1
    from safetensors.torch import save_file

    save_file(weights, str(file))
    with pytest.raises(ValueError, match=rf"{file}.*SHA-256"):
        load_generator(trainer.run_dir)
    with pytest.raises(ValueError, match=rf"{file}.*SHA-256"):  # the saved generator folder too
        load_generator(trainer.run_dir / "generator")
    with pytest.raises(ValueError, match="cannot resume .* clip_sha256"):
        Trainer(tiny_config(steps=2, clip_pretrained=str(file), resume="auto"), progress=False).fit()


def test_a_clip_file_is_checked_against_the_hash_it_was_given(pretrained):
    with pytest.raises(ValueError, match="is not the weights file"):
        tiny_clip(str(pretrained.weights), weights_sha256="0" * 64)
    with pytest.raises(ValueError, match="not a weights file"):
        tiny_clip(None, weights_sha256="0" * 64)
