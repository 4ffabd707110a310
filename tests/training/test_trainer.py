import json
import signal

import pytest
import torch

from ratlip_layers.training import CheckpointError, NonFiniteLossError, Trainer, load_checkpoint


def _states(trainer):
    out = {f"g.{k}": v for k, v in trainer.generator.trainable_state_dict().items()}
    out.update({f"d.{k}": v for k, v in trainer.discriminator.trainable_state_dict().items()})
    out.update({f"ema.{k}": v for k, v in trainer.ema.state_dict().items()})
    for name, optimizer in (("opt_g", trainer.step_fn.opt_g), ("opt_d", trainer.step_fn.opt_d)):
        for index, state in optimizer.state_dict()["state"].items():
            out.update({f"{name}.{index}.{k}": v for k, v in state.items()})
    return out


def _interrupt_at(trainer, step, signum=signal.SIGINT):
    original = trainer.step_fn

    def step_fn(images, tokens, *, step):
        logs = original(images, tokens, step=step)
        if step == stop_at:
            signal.raise_signal(signum)
        return logs

    stop_at = step
    trainer.step_fn = step_fn
    trainer.step_fn.state_dict = original.state_dict
    trainer.step_fn.load_state_dict = original.load_state_dict


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tiny_config, tmp_path):
    # Pictures and evaluations on the way must not disturb the random state either.
    every = {"steps": 6, "sample_every": 2, "eval_every": 2}
    whole = Trainer(tiny_config(out=str(tmp_path / "whole"), **every), progress=False)
    assert not whole.fit().interrupted

    first = Trainer(tiny_config(out=str(tmp_path / "split"), **every), progress=False)
    _interrupt_at(first, 3)
    # Compared with what they were, not with Python's default: a background job starts with SIGINT ignored.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    result = first.fit()
    assert result.interrupted and result.step == 3 and result.exit_status == 130
    assert [p.name for p in first.checkpoints.checkpoints()] == ["step-00000003"]
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers  # handlers restored

    second = Trainer(tiny_config(out=str(tmp_path / "split"), resume="auto", **every), progress=False)
    assert second.fit().step == 6
    expected, actual = _states(whole), _states(second)
    assert expected.keys() == actual.keys()
    different = [k for k in expected if not torch.equal(expected[k], actual[k])]
    assert different == []
    # Training did move the weights: the equality is not that of two untouched networks.
    start = Trainer(tiny_config(steps=6, out=str(tmp_path / "fresh")), progress=False)
    assert any(not torch.equal(v, actual[k]) for k, v in _states(start).items() if k.startswith("g."))


def test_run_directory_contents(tiny_config, tmp_path):
    trainer = Trainer(tiny_config(steps=4, sample_every=2, save_every=2, keep_checkpoints=1), progress=False)
    result = trainer.fit()
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["steps"] == 4
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "real.png", "step-00000002.png", "step-00000004.png",
    ]
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-00000004"]
    ckpt = load_checkpoint(run / "checkpoints" / "step-00000004")
    assert set(ckpt.weights) == {"generator", "discriminator", "ema", "clip"}
    assert set(ckpt.state) >= {"step", "epoch", "batch_in_epoch", "optim", "rng", "ema_updates"}
    assert set(ckpt.state["optim"]) == {"opt_g", "opt_d", "scaler_g", "scaler_d"}
    assert ckpt.config["steps"] == 4
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert line["step"] == 4 and {"clip_score", "fid_clip", "colour_acc"} <= set(line)
    assert result.metrics["colour_acc"] == line["colour_acc"]
    assert (run / "generator" / "model.safetensors").is_file()
    assert any((run / "tensorboard").iterdir())


def test_sigterm_saves_and_exits_cleanly(tiny_config):
    trainer = Trainer(tiny_config(steps=5), progress=False)
    _interrupt_at(trainer, 2, signal.SIGTERM)
    result = trainer.fit()
    assert result.interrupted and result.step == 2 and result.exit_status == 143
    assert trainer.checkpoints.latest().name == "step-00000002"
    assert not (result.run_dir / "metrics.jsonl").exists()


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_config):
    trainer = Trainer(tiny_config(steps=6, save_every=2), progress=False)
    original = trainer.discriminator.logits
    saved = {}

    def logits(features, sentence):
        if trainer.step == 2 and not saved:
            saved.update({p.name: p.read_bytes() for p in trainer.checkpoints.latest().iterdir()})
        out = original(features, sentence)
        return out * float("nan") if trainer.step >= 2 else out

    trainer.discriminator.logits = logits
    with pytest.raises(NonFiniteLossError, match="non-finite loss_d = nan at step 3"):
        trainer.fit()
    latest = trainer.checkpoints.latest()
    assert [p.name for p in trainer.checkpoints.checkpoints()] == ["step-00000002"]
    assert {p.name: p.read_bytes() for p in latest.iterdir()} == saved


def test_skip_policy_keeps_training(tiny_config):
    trainer = Trainer(tiny_config(steps=3, on_nonfinite="skip"), progress=False)
    original = trainer.discriminator.logits
    trainer.discriminator.logits = lambda f, s: original(f, s) * (float("nan") if trainer.step == 1 else 1.0)
    assert trainer.fit().step == 3


def test_a_finished_run_exits_zero(tiny_config):
    result = Trainer(tiny_config(steps=1), progress=False).fit()
    assert not result.interrupted and result.stop_signal is None and result.exit_status == 0


def test_resume_applies_the_new_learning_rates_and_says_so(tiny_config, capsys):
    Trainer(tiny_config(steps=2, lr_d=1e-3), progress=False).fit()
    capsys.readouterr()
    resumed = Trainer(tiny_config(steps=3, lr_d=2e-4, resume="auto"), progress=False)
    resumed.fit()
    assert [g["lr"] for g in resumed.step_fn.opt_d.param_groups] == [2e-4]
    assert json.loads((resumed.run_dir / "config.json").read_text())["lr_d"] == 2e-4
    assert "lr_d 0.001 -> 0.0002" in capsys.readouterr().err


def test_resume_refuses_options_that_cannot_change(tiny_config):
    Trainer(tiny_config(steps=1), progress=False).fit()
    resumed = Trainer(tiny_config(steps=2, d_channels=8, resume="auto"), progress=False)
    with pytest.raises(ValueError, match=r"d_channels=8: the run was started with d_channels=128"):
        resumed.fit()


def test_resume_skips_an_unreadable_newest_checkpoint_and_keeps_it(tiny_config, capsys):
    Trainer(tiny_config(steps=2, save_every=1), progress=False).fit()
    checkpoints = Trainer(tiny_config(steps=2), progress=False).checkpoints
    newest = checkpoints.latest()
    weights = newest / "generator.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    capsys.readouterr()
    resumed = Trainer(tiny_config(steps=3, resume="auto"), progress=False)
    resumed.fit()
    out = capsys.readouterr().err
    assert f"skipped checkpoint {newest}" in out and "resumed from" in out and "step-00000001" in out
    aside = newest.with_name("step-00000002.unreadable")
    assert (aside / "generator.safetensors").stat().st_size == 100  # kept, never deleted
    assert resumed.step == 3


def test_resume_stops_when_no_checkpoint_reads_back(tiny_config):
    Trainer(tiny_config(steps=1), progress=False).fit()
    checkpoints = Trainer(tiny_config(steps=1), progress=False).checkpoints
    (checkpoints.latest() / "state.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match=r"unreadable: .*step-00000001\.unreadable"):
        Trainer(tiny_config(steps=2, resume="auto"), progress=False).fit()


def test_a_run_with_clip_pretrained_none_keeps_its_random_clip_in_the_checkpoint(tiny_config):
    trainer = Trainer(tiny_config(steps=1, clip_pretrained="none"), progress=False)
    assert trainer.config.clip_pretrained == "none"  # not replaced by the preset's value
    trainer.fit()
    assert "clip" in load_checkpoint(trainer.checkpoints.latest()).weights


def test_resuming_a_run_without_ema_starts_the_average_from_the_restored_generator(tiny_config):
    Trainer(tiny_config(steps=1, ema=0.0), progress=False).fit()
    resumed = Trainer(tiny_config(steps=2, resume="auto"), progress=False)
    resumed.resume(resumed.checkpoints.latest())
    assert resumed.ema.num_updates == 0 and resumed.sampling_generator() is resumed.ema.module
    restored = resumed.generator.trainable_state_dict()
    assert all(torch.equal(v, restored[k]) for k, v in resumed.ema.state_dict().items())
