import pytest
import torch

from ratlip_layers.training import (
    discriminator_hinge_loss, generator_loss, matching_aware_gradient_penalty, mode_seeking_loss,
)


def test_hinge_loss_matches_its_definition():
    real = torch.tensor([2.0, 0.5, -1.0])
    fake = torch.tensor([-2.0, 0.0, 1.0])
    mis = torch.tensor([-0.5, -3.0, 0.25])
    # relu(1 - real) = [0, 0.5, 2]; relu(1 + fake) = [0, 1, 2]; relu(1 + mis) = [0.5, 0, 1.25]
    expected = (0 + 0.5 + 2) / 3 + ((0 + 1 + 2) / 3 + (0.5 + 0 + 1.25) / 3) / 2
    assert discriminator_hinge_loss(real, fake, mis).item() == pytest.approx(expected)


def test_magp_is_weight_times_mean_norm_to_the_power():
    torch.manual_seed(0)
    maps = torch.randn(4, 2, 3, 3, requires_grad=True)
    sentence = torch.randn(4, 5, requires_grad=True)
    a, b = torch.randn(2, 3, 3), torch.randn(5)
    logits = (maps * a).sum((1, 2, 3)) + sentence @ b  # d logit_i / d inputs_i = (a, b) for every i
    norm = torch.cat([a.flatten(), b]).norm()
    value = matching_aware_gradient_penalty(logits, [maps, sentence], weight=2.0, power=6.0)
    assert value.item() == pytest.approx(2.0 * norm.item() ** 6, rel=1e-5)


def test_magp_trains_the_discriminator():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x = torch.randn(5, 6, requires_grad=True)
    penalty = matching_aware_gradient_penalty(net(x).flatten(), [x], power=2.0)
    penalty.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters() if p.dim() == 2)


def test_magp_is_finite_on_half_precision_logits():
    # fp16 logits: the old scaled form put the GradScaler's 2**16 into fp16 and came out NaN.
    torch.manual_seed(0)
    x = torch.randn(4, 6, requires_grad=True)
    weight = torch.randn(6, dtype=torch.float16)
    logits = (x.half() * weight).sum(1)
    penalty = matching_aware_gradient_penalty(logits, [x], weight=1.0, power=2.0)
    expected = 4 * [weight.float().norm().item() ** 2]  # d logit_i / d x_i = weight for every i
    assert torch.isfinite(penalty) and penalty.item() == pytest.approx(sum(expected) / 4, rel=1e-3)


def test_magp_errors():
    x = torch.randn(3, 2)
    with pytest.raises(ValueError, match="must require grad"):
        matching_aware_gradient_penalty(x.sum(1), [x])
    y = torch.randn(3, 2, requires_grad=True)
    with pytest.raises(ValueError, match=r"logits must be .*of shape \(B,\), got shape \(3, 2\)"):
        matching_aware_gradient_penalty(y, [y])
    with pytest.raises(ValueError, match="at least one"):
        matching_aware_gradient_penalty(y.sum(1), [])
    z = torch.randn(4, 2, requires_grad=True)
    with pytest.raises(ValueError, match="batch sizes differ"):
        matching_aware_gradient_penalty(y.sum(1), [y, z])


def test_generator_loss():
    logits = torch.tensor([1.0, 3.0])
    emb = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    sent = torch.tensor([[1.0, 0.0], [2.0, 0.0]])  # cosines 1 and 0
    loss, sim = generator_loss(logits, emb, sent, sim_weight=4.0)
    assert sim.item() == pytest.approx(0.5)
    assert loss.item() == pytest.approx(-2.0 - 4.0 * 0.5)
    with pytest.raises(ValueError, match=r"both have shape \(B, D\)"):
        generator_loss(logits, emb, sent[:, :1])
    with pytest.raises(TypeError, match="fake_logits must be a torch.Tensor"):
        generator_loss([1.0], emb, sent)


def test_mode_seeking_loss_is_the_inverse_distance_ratio():
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)  # mean |a - b| = 0.5
    z = torch.zeros(2, 8)
    assert mode_seeking_loss(a, b, z, z + 2).item() == pytest.approx(1 / (0.25 + 1e-5))
    # Further apart images for the same noise distance: a smaller loss, so minimising it spreads samples.
    assert mode_seeking_loss(a, b * 2, z, z + 2) < mode_seeking_loss(a, b, z, z + 2)
    images = torch.zeros(2, 3, 4, 4, requires_grad=True)
    mode_seeking_loss(images, b, z, z + 2).backward()
    assert (images.grad > 0).all()  # moving a towards b (up) would raise the loss


def test_mode_seeking_loss_errors():
    a, z = torch.zeros(2, 3, 4, 4), torch.zeros(2, 8)
    with pytest.raises(ValueError, match=r"pair up shape for shape, got \(2, 3, 4, 4\)/\(1, 3, 4, 4\)"):
        mode_seeking_loss(a, a[:1], z, z)
    with pytest.raises(TypeError, match="noise_b must be a floating-point torch.Tensor, got torch.int64"):
        mode_seeking_loss(a, a, z, z.long())
    with pytest.raises(ValueError, match="batch sizes differ"):
        mode_seeking_loss(a, a, z[:1], z[:1])
