import pytest
import torch

from ratlip_layers.clip import CLIPTextAdapter, tiny_clip
from ratlip_layers.models import CLIPDiscriminator, GeneratorConfig, RATLIPGenerator
from ratlip_layers.training import GANTrainStep, NonFiniteLossError, Precision
from ratlip_layers.training.step import SCALE_FLOOR, SCALE_RESET


@pytest.fixture
def nets():
    torch.manual_seed(0)
    clip, tokenizer = tiny_clip()
    generator = RATLIPGenerator(GeneratorConfig.preset("tiny"), clip, tokenizer=tokenizer)
    discriminator = CLIPDiscriminator(clip, channels=16, joint_channels=8)
    text = CLIPTextAdapter(clip, tokenizer=tokenizer)
    tokens = tokenizer(["a red circle on a blue background", "a green square on a white background"] * 2)
    return clip, generator, discriminator, text, tokens


def _snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_one_step_updates_both_networks_and_never_clip(nets):
    clip, generator, discriminator, text, tokens = nets
    clip_before = _snapshot(clip)
    g_before = {k: v.clone() for k, v in generator.trainable_state_dict().items()}
    d_before = {k: v.clone() for k, v in discriminator.trainable_state_dict().items()}
    step = GANTrainStep(generator, discriminator, text, sim_weight=4.0)
    logs = step(torch.rand(4, 3, 32, 32) * 2 - 1, tokens, step=1)
    assert set(logs) >= {"loss_d", "loss_g", "magp", "d_real", "d_fake", "d_mismatch", "clip_sim", "skipped"}
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values()) and logs["skipped"] == 0
    assert logs["loss_d"] == pytest.approx(logs["hinge_d"] + logs["magp"], rel=1e-5)
    assert all(torch.equal(v, clip.state_dict()[k]) for k, v in clip_before.items())
    g_after, d_after = generator.trainable_state_dict(), discriminator.trainable_state_dict()
    assert any(not torch.equal(g_before[k], g_after[k]) for k in g_before)
    assert any(not torch.equal(d_before[k], d_after[k]) for k in d_before)
    assert all(p.grad is None for p in list(generator.parameters()) + list(discriminator.parameters()))
    assert all(p.requires_grad for p in discriminator.net_c.parameters())


def test_optimisers_use_the_recipe_betas_and_rates(nets):
    _, generator, discriminator, text, _ = nets
    step = GANTrainStep(generator, discriminator, text, lr_g=1e-4, lr_d=4e-4)
    assert step.opt_g.param_groups[0]["betas"] == (0.0, 0.9) and step.opt_g.param_groups[0]["lr"] == 1e-4
    assert step.opt_d.param_groups[0]["lr"] == 4e-4
    d_params = {id(p) for p in step.opt_d.param_groups[0]["params"]}
    assert d_params == {id(p) for p in [*discriminator.net_d.parameters(), *discriminator.net_c.parameters()]}


def _poison(discriminator):
    original = discriminator.logits

    def logits(features, sentence):
        return original(features, sentence) * float("nan")

    discriminator.logits = logits


def test_non_finite_loss_stops_with_step_and_name(nets):
    _, generator, discriminator, text, tokens = nets
    step = GANTrainStep(generator, discriminator, text)
    _poison(discriminator)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss_d = nan at step 7"):
        step(torch.rand(4, 3, 32, 32) * 2 - 1, tokens, step=7)


def test_non_finite_loss_can_be_skipped(nets):
    _, generator, discriminator, text, tokens = nets
    before = {k: v.clone() for k, v in discriminator.trainable_state_dict().items()}
    g_before = {k: v.clone() for k, v in generator.trainable_state_dict().items() if v.is_floating_point()}
    step = GANTrainStep(generator, discriminator, text, on_nonfinite="skip")
    _poison(discriminator)
    logs = step(torch.rand(4, 3, 32, 32) * 2 - 1, tokens)
    assert logs["skipped"] == 1 and logs["g_updated"] == 0
    assert all(torch.equal(before[k], v) for k, v in discriminator.trainable_state_dict().items())
    after = generator.trainable_state_dict()
    assert all(torch.equal(g_before[k], after[k]) for k in g_before if "running" not in k)


def test_bf16_autocast_step_runs_on_cpu(nets):
    _, generator, discriminator, text, tokens = nets
    step = GANTrainStep(generator, discriminator, text, precision=Precision("bf16", "cpu"))
    logs = step(torch.rand(4, 3, 32, 32) * 2 - 1, tokens)
    assert logs["skipped"] == 0 and torch.isfinite(torch.tensor(logs["loss_g"]))


def test_fp16_scalers_are_per_network_checkpointed_and_floored():
    precision = Precision("fp16", "cpu")
    assert precision.scaler_g is not precision.scaler_d and precision.scaler_d.is_enabled()
    net = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    precision.scaler_d.scale(net(torch.ones(1, 2)).sum()).backward()
    precision.step(precision.scaler_d, optimizer)
    precision.scaler_d.update(SCALE_FLOOR / 2)  # below the floor already
    loss = net(torch.ones(1, 2)).sum() * float("inf")  # overflows: the scaler halves the scale
    precision.scaler_d.scale(loss).backward()
    precision.step(precision.scaler_d, optimizer)
    assert precision.scaler_d.get_scale() == SCALE_RESET
    restored = Precision("fp16", "cpu")
    restored.load_state_dict(precision.state_dict())
    assert restored.scaler_d.get_scale() == SCALE_RESET
    with pytest.raises(ValueError, match="amp mode must be one of"):
        Precision("fp8")


def test_fp16_autocast_trains_with_finite_losses_on_cpu(nets):
    _, generator, discriminator, text, tokens = nets
    torch.manual_seed(1)
    step = GANTrainStep(generator, discriminator, text, precision=Precision("fp16", "cpu"))
    d_before = {k: v.clone() for k, v in discriminator.trainable_state_dict().items()}
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    logs = [step(images, tokens, step=i) for i in range(1, 5)]
    assert all(torch.isfinite(torch.tensor(log["loss_d"])) and log["skipped"] == 0 for log in logs)
    assert all(torch.isfinite(torch.tensor(log["magp"])) for log in logs)
    d_after = discriminator.trainable_state_dict()
    assert any(not torch.equal(d_before[k], d_after[k]) for k in d_before)


def test_a_skipped_fp16_step_backs_the_scale_off(nets):
    _, generator, discriminator, text, tokens = nets
    precision = Precision("fp16", "cpu")
    step = GANTrainStep(generator, discriminator, text, precision=precision, on_nonfinite="skip")
    start = precision.scaler_d.get_scale()
    _poison(discriminator)
    logs = step(torch.rand(4, 3, 32, 32) * 2 - 1, tokens)
    assert logs["skipped"] == 1
    assert precision.scaler_d.get_scale() == start * precision.scaler_d.get_backoff_factor()
    assert precision.scaler_g.get_scale() == start * precision.scaler_g.get_backoff_factor()


def test_bad_policy(nets):
    _, generator, discriminator, text, _ = nets
    with pytest.raises(ValueError, match="on_nonfinite"):
        GANTrainStep(generator, discriminator, text, on_nonfinite="ignore")


def test_resumed_optimisers_keep_the_implementation_chosen_here(nets):
    _, G, D, text, tokens = nets
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    step = GANTrainStep(G, D, text)
    assert all(g["fused"] for opt in (step.opt_g, step.opt_d) for g in opt.param_groups)  # CPU: fused Adam
    step(images, tokens)
    saved = step.state_dict()
    for opt in ("opt_g", "opt_d"):  # as an older run, or a machine without the fused kernels, wrote it
        for group in saved[opt]["param_groups"]:
            group["fused"], group["foreach"] = None, None
    resumed = GANTrainStep(G, D, text)
    resumed.load_state_dict(saved)
    assert all(g["fused"] for opt in (resumed.opt_g, resumed.opt_d) for g in opt.param_groups)
    assert resumed.opt_g.state_dict()["state"].keys() == step.opt_g.state_dict()["state"].keys()


def test_mode_seeking_draws_half_the_captions_twice_and_weighs_the_term(nets):
    _, generator, discriminator, text, tokens = nets
    batches = []
    generator.register_forward_hook(lambda module, args, out: batches.append(out.shape[0]))
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    GANTrainStep(generator, discriminator, text)(images, tokens)
    # The term is at least 1 / (2 / mean|z1 - z2|) > 0.5 for images in [-1, 1], so weight 1000 shows.
    logs = GANTrainStep(generator, discriminator, text, mode_seeking_weight=1000.0)(images, tokens)
    assert batches == [4, 6]
    assert logs["loss_g"] > 400
