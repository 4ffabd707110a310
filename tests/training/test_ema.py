import pytest
import torch
from torch import nn

from ratlip_layers.clip import tiny_clip
from ratlip_layers.models import GeneratorConfig, RATLIPGenerator
from ratlip_layers.training import EMA


def test_update_formula_without_warmup():
    net = nn.Linear(3, 2)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    ema = EMA(net, decay=0.9, warmup=False)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema.update(net)
    for key, value in ema.state_dict().items():
        torch.testing.assert_close(value, 0.9 * start[key] + 0.1 * (start[key] + 1.0))


def test_warmup_lowers_the_early_decay():
    ema = EMA(nn.Linear(1, 1), decay=0.999)
    decays = []
    for _ in range(3):
        decays.append(ema.current_decay())
        ema.update(nn.Linear(1, 1))
    assert decays == pytest.approx([1 / 10, 2 / 11, 3 / 12])
    ema.num_updates = 10_000
    assert ema.current_decay() == 0.999


def test_buffers_float_averaged_integer_copied():
    net = nn.BatchNorm1d(2)
    ema = EMA(net, decay=0.5, warmup=False)
    net.train()
    net(torch.randn(8, 2) * 3 + 5)
    ema.update(net)
    state = ema.state_dict()
    torch.testing.assert_close(state["running_mean"], 0.5 * net.running_mean)
    assert state["num_batches_tracked"].item() == 1


def test_one_copy_averages_the_learned_state_and_shares_the_frozen_clip():
    clip, tokenizer = tiny_clip()
    generator = RATLIPGenerator(GeneratorConfig.preset("tiny"), clip, tokenizer=tokenizer)
    ema = EMA(generator, decay=0.5, warmup=False)
    assert set(ema.state_dict()) == set(generator.trainable_state_dict())
    # The frozen CLIP is the network's own, not a copy; the learned weights are the EMA's own.
    assert ema.module.clip_model.visual is clip.visual
    live, average = dict(generator.named_parameters()), dict(ema.module.named_parameters())
    learned = [name for name in generator.trainable_state_dict() if name in live]
    assert learned and all(average[n] is not live[n] and not average[n].requires_grad for n in learned)
    assert not ema.module.training and generator.training
    with torch.no_grad():
        for name in learned:
            live[name].add_(1.0)
    ema.update(generator)
    name = learned[0]
    torch.testing.assert_close(average[name], live[name] - 0.5)
    sentence = generator.text(["a red circle on a blue background"] * 2).sentence
    assert ema.module(torch.randn(2, generator.z_dim), sentence).shape == (2, 3, 32, 32)


def test_state_round_trip_and_errors():
    net = nn.Linear(2, 2)
    ema = EMA(net, decay=0.9)
    ema.update(net)
    other = EMA(nn.Linear(2, 2), decay=0.9)
    other.load_state_dict(ema.state_dict(), num_updates=ema.num_updates)
    assert other.num_updates == 1
    assert all(torch.equal(ema.state_dict()[k], other.state_dict()[k]) for k in ema.state_dict())
    with pytest.raises(ValueError, match="keys differ"):
        other.load_state_dict({"weight": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match="has shape"):
        other.load_state_dict({"weight": torch.zeros(3, 2), "bias": torch.zeros(2)})
    with pytest.raises(ValueError, match="keys differ"):
        ema.update(nn.Linear(2, 2, bias=False))
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        EMA(net, decay=1.0)
