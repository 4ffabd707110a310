"""The public layers under one calling convention, and the tests every layer's test class inherits.

Each layer's class (``TestAffine`` in ``test_affine.py`` ...) subclasses :class:`BaseTester` (or its
conditioned/recurrent refinements) in kornia's shape: smoke, exception, cardinality, gradcheck, dynamo.
Modules are built and perturbed on the CPU, then moved, so a ``--device cuda`` run sees the same weights.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from ratlip_layers import Affine, DFBlock, LSTMAffine, RATBlock, SAConv, ShuffleAttention
from ratlip_layers.layers.modulation import ModulationHead

COND_DIM = 6
HIDDEN = 5


@dataclass(frozen=True)
class LayerCase:
    """How to build and call one layer: ``run(module, x, cond, state) -> (out, state_or_None)``."""

    name: str
    make: Callable[[int, int, int, int], nn.Module]  # (channels, cond_dim, hidden, groups) -> module
    conditioned: bool
    recurrent: bool

    def build(
        self, channels: int, cond_dim: int = COND_DIM, hidden: int = HIDDEN, groups: int = 2
    ) -> nn.Module:
        return self.make(channels, cond_dim, hidden, groups)

    def run(self, module: nn.Module, x: Tensor, cond: Tensor | None = None, state=None):
        if self.recurrent:
            return module(x, cond, state)
        if self.conditioned:
            return module(x, cond), None
        return module(x), None

    def outputs(self, module: nn.Module, x: Tensor, cond: Tensor | None = None, state=None) -> tuple:
        """``run``'s results flattened: ``(out,)`` or ``(out, h, c)``."""
        out, new_state = self.run(module, x, cond, state)
        return (out,) if new_state is None else (out, *new_state)


CASES = {
    case.name: case
    for case in [
        LayerCase("Affine", lambda c, d, h, g: Affine(d, c), conditioned=True, recurrent=False),
        LayerCase("DFBlock", lambda c, d, h, g: DFBlock(d, c), conditioned=True, recurrent=False),
        LayerCase("LSTMAffine", lambda c, d, h, g: LSTMAffine(d, c, h), conditioned=True, recurrent=True),
        LayerCase("RATBlock", lambda c, d, h, g: RATBlock(d, c, h), conditioned=True, recurrent=True),
        LayerCase(
            "ShuffleAttention", lambda c, d, h, g: ShuffleAttention(c, g), conditioned=False, recurrent=False
        ),
        LayerCase("SAConv", lambda c, d, h, g: SAConv(c, c, groups=g), conditioned=False, recurrent=False),
    ]
}


def perturb_(module: nn.Module, scale: float = 0.5) -> nn.Module:
    """Move identity-initialised parameters off their init so every path carries signal."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, ModulationHead):
                sub.weight2.normal_(0.0, scale)
                sub.bias2.add_(torch.randn_like(sub.bias2) * scale)
            if isinstance(sub, ShuffleAttention):
                for p in (sub.cweight, sub.sweight, sub.cbias, sub.sbias, sub.gn.weight, sub.gn.bias):
                    p.add_(torch.randn_like(p) * scale)
            if isinstance(sub, nn.BatchNorm2d):
                sub.running_mean.normal_(0.0, 0.1)
                sub.running_var.uniform_(0.5, 1.5)
    return module


def perturb_all_(module: nn.Module) -> nn.Module:
    """Redraw every parameter from N(0, 0.5^2), for the fused-against-reference checks."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.5)
    return module


def ref_copy(module: nn.Module) -> nn.Module:
    """The same module, weights shared, with every layer that has an ``impl`` switched to ``"ref"``."""
    ref = copy.copy(module)
    ref._modules = {name: ref_copy(child) for name, child in module._modules.items()}
    if hasattr(ref, "impl"):
        ref.impl = "ref"
    return ref


def make_inputs(batch: int, channels: int, size: int = 4, dtype: torch.dtype = torch.float32, device=None):
    """``x, cond, state``, drawn on the CPU (the same values on every device) and moved to ``device``."""
    x = torch.randn(batch, channels, size, size, dtype=dtype)
    cond = torch.randn(batch, COND_DIM, dtype=dtype)
    state = (torch.randn(batch, HIDDEN, dtype=dtype), torch.randn(batch, HIDDEN, dtype=dtype))
    return x.to(device), cond.to(device), (state[0].to(device), state[1].to(device))


def mlp_pair(head: ModulationHead, v: Tensor):
    """gamma = W2g relu(W1g v + b1g) + b2g, beta likewise, from the packed parameters."""
    c = head.num_features
    w1, b1 = head.fc1.weight, head.fc1.bias
    gamma = F.relu(v @ w1[:c].T + b1[:c]) @ head.weight2[0].T + head.bias2[0]
    beta = F.relu(v @ w1[c:].T + b1[c:]) @ head.weight2[1].T + head.bias2[1]
    return gamma, beta


def lrelu(t, slope=0.2):
    return torch.where(t >= 0, t, slope * t)


def grads(out: Tensor, inputs: list[Tensor], grad: Tensor) -> tuple[Tensor, ...]:
    return torch.autograd.grad(out, inputs, grad)


def _select(state, index):
    return None if state is None else (state[0][index], state[1][index])


def assert_batch_equals_per_sample(case: LayerCase, module: nn.Module, x: Tensor, cond: Tensor, state) -> None:
    out, new_state = case.run(module, x, cond, state)
    for i in range(x.shape[0]):
        alone, alone_state = case.run(module, x[i : i + 1], cond[i : i + 1], _select(state, slice(i, i + 1)))
        torch.testing.assert_close(out[i : i + 1], alone, rtol=0, atol=1e-12)
        if new_state is not None:
            torch.testing.assert_close(new_state[0][i : i + 1], alone_state[0], rtol=0, atol=1e-12)
            torch.testing.assert_close(new_state[1][i : i + 1], alone_state[1], rtol=0, atol=1e-12)


def check_compiled_backward_matches_eager(case: LayerCase, device: torch.device) -> None:
    torch._dynamo.reset()
    module = perturb_(case.build(8)).train().to(device)
    x, cond, state = make_inputs(3, 8, device=device)
    state = state if case.recurrent else None
    compiled = torch.compile(module, fullgraph=True, dynamic=False)
    case.run(module, x, cond, state)[0].square().sum().backward()
    eager_grads = {n: p.grad.clone() for n, p in module.named_parameters()}
    module.zero_grad()
    case.run(compiled, x, cond, state)[0].square().sum().backward()
    for name, p in module.named_parameters():
        torch.testing.assert_close(p.grad, eager_grads[name], rtol=1e-4, atol=1e-5, msg=name)


# Sizes, dtypes and memory layouts for the property-based checks.
PER_SAMPLE_BATCH, PER_SAMPLE_CHANNELS = 5, 8
ANY_DTYPE = st.sampled_from([torch.float32, torch.float64, torch.bfloat16])
# Every layer's class runs the inherited property tests, so one test function has several executors:
# harmless here, as the examples do not depend on the class (only the built layer does).
SHARED_BY_SUBCLASSES = settings(
    suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.differing_executors]
)


@st.composite
def configs(draw):
    groups = draw(st.integers(1, 4))
    return {
        "batch": draw(st.integers(1, 4)),
        "groups": groups,
        "channels": 2 * groups * draw(st.integers(1, 3)),
        "height": draw(st.integers(1, 7)),
        "width": draw(st.integers(2, 7)),  # ShuffleAttention needs H * W >= 2
        "cond_dim": draw(st.integers(1, 12)),
        "hidden": draw(st.integers(1, 10)),
    }


def _config_inputs(cfg, dtype, device):
    x = torch.randn(cfg["batch"], cfg["channels"], cfg["height"], cfg["width"], dtype=dtype)
    cond = torch.randn(cfg["batch"], cfg["cond_dim"], dtype=dtype)
    state = tuple(torch.randn(cfg["batch"], cfg["hidden"], dtype=dtype).to(device) for _ in range(2))
    return x.to(device), cond.to(device), state


class BaseTester:
    """The checks that apply to every layer; a subclass names its layer in ``case``."""

    case: LayerCase

    def _build_config(self, cfg) -> nn.Module:
        return self.case.build(cfg["channels"], cfg["cond_dim"], cfg["hidden"], cfg["groups"])

    def _setup_per_sample(self, device):
        module = perturb_(self.case.build(PER_SAMPLE_CHANNELS)).double().eval().to(device)
        x, cond, state = make_inputs(
            PER_SAMPLE_BATCH, PER_SAMPLE_CHANNELS, dtype=torch.float64, device=device
        )
        return module, x, cond, (state if self.case.recurrent else None)

    def _grad_inputs(self, device, dtype=torch.float32, batch=3, channels=8):
        x, cond, state = make_inputs(batch, channels, dtype=dtype, device=device)
        x.requires_grad_(True)
        cond.requires_grad_(self.case.conditioned)
        if not self.case.recurrent:
            return x, cond, None
        state = (state[0].requires_grad_(True), state[1].requires_grad_(True))
        return x, cond, state

    def _loss(self, module, x, cond, state):
        out, new_state = self.case.run(module, x, cond, state)
        # Weighted sum so that no gradient cancels by symmetry (e.g. through the group norm's mean).
        weights = torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype, device=out.device)
        loss = (out * weights.view_as(out)).sum()
        if new_state is not None:
            loss = loss + new_state[0].pow(2).sum() + new_state[1].sum()
        return loss

    def test_smoke(self, device, dtype):
        module = self.case.build(8).to(device, dtype)
        x, cond, state = make_inputs(2, 8, dtype=dtype, device=device)
        out, _ = self.case.run(module, x, cond, state if self.case.recurrent else None)
        assert out.device == x.device and out.dtype == dtype
        assert repr(module).startswith(f"{self.case.name}(")

    @SHARED_BY_SUBCLASSES
    @given(cfg=configs(), any_dtype=ANY_DTYPE)
    def test_cardinality(self, device, cfg, any_dtype):
        """Shapes and dtype preserved over sizes and dtypes; a recurrent layer's state is (B, hidden)."""
        x, cond, state = _config_inputs(cfg, any_dtype, device)
        module = perturb_(self._build_config(cfg)).to(any_dtype).eval().to(device)
        out, *new_state = self.case.outputs(module, x, cond, state)
        assert out.shape == x.shape
        assert out.dtype == any_dtype
        for t in new_state:
            assert t.shape == (cfg["batch"], cfg["hidden"]) and t.dtype == any_dtype

    def test_gradcheck(self, device):
        module = perturb_(self.case.build(4)).double().eval().to(device)
        x, cond, state = self._grad_inputs(device, torch.float64, batch=2, channels=4)
        x = x.detach()[:, :, :3, :3].requires_grad_(True)
        if self.case.recurrent:
            fn = lambda x, c, h, s: self._loss(module, x, c, (h, s))  # noqa: E731
            args = (x, cond, *state)
        elif self.case.conditioned:
            fn = lambda x, c: self._loss(module, x, c, None)  # noqa: E731
            args = (x, cond)
        else:
            fn = lambda x: self._loss(module, x, None, None)  # noqa: E731
            args = (x,)
        assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5)

    @pytest.mark.slow
    def test_dynamo(self, device):
        """torch.compile(fullgraph=True) traces the layer without a graph break and matches eager."""
        torch._dynamo.reset()
        module = perturb_(self.case.build(8)).eval().to(device)
        x, cond, state = make_inputs(3, 8, device=device)
        state = state if self.case.recurrent else None
        compiled = torch.compile(module, fullgraph=True, dynamic=False)
        expected, expected_state = self.case.run(module, x, cond, state)
        got, got_state = self.case.run(compiled, x, cond, state)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        if expected_state is not None:
            torch.testing.assert_close(got_state[0], expected_state[0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(got_state[1], expected_state[1], rtol=1e-5, atol=1e-5)

    def test_finite_gradients_at_init(self, device):
        module = self.case.build(8).to(device)
        x, cond, state = self._grad_inputs(device)
        self._loss(module, x, cond, state).backward()
        for name, p in module.named_parameters():
            assert p.grad is not None, f"{name} received no gradient"
            assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"

    def test_every_parameter_and_input_gets_nonzero_gradient_once_perturbed(self, device):
        module = perturb_(self.case.build(8)).to(device)
        x, cond, state = self._grad_inputs(device)
        self._loss(module, x, cond, state).backward()
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} has a zero gradient"
        assert x.grad.abs().sum() > 0
        if self.case.conditioned:
            assert cond.grad.abs().sum() > 0
        if self.case.recurrent:
            assert state[0].grad.abs().sum() > 0 and state[1].grad.abs().sum() > 0

    def test_batch_equals_each_sample_alone(self, device):
        """Per-sample conditioning: sample i's output depends only on sample i's inputs (SPEC §2)."""
        assert_batch_equals_per_sample(self.case, *self._setup_per_sample(device))

    def test_permutation_equivariant(self, device):
        module, x, cond, state = self._setup_per_sample(device)
        perm = torch.randperm(PER_SAMPLE_BATCH)
        out, new_state = self.case.run(module, x, cond, state)
        out_p, new_state_p = self.case.run(module, x[perm], cond[perm], _select(state, perm))
        torch.testing.assert_close(out_p, out[perm], rtol=0, atol=1e-12)
        if new_state is not None:
            torch.testing.assert_close(new_state_p[0], new_state[0][perm], rtol=0, atol=1e-12)

    @SHARED_BY_SUBCLASSES
    @given(cfg=configs())
    def test_float32_module_keeps_bfloat16_features(self, device, cfg):
        """Mixed precision without autocast: a float32 layer returns features in x's dtype."""
        x, cond, state = _config_inputs(cfg, torch.float32, device)
        x = x.bfloat16()
        out = self.case.outputs(perturb_(self._build_config(cfg)).eval().to(device), x, cond, state)[0]
        assert out.dtype == torch.bfloat16

    @SHARED_BY_SUBCLASSES
    @given(cfg=configs())
    def test_channels_last_and_non_contiguous_match_contiguous(self, device, cfg):
        x, cond, state = _config_inputs(cfg, torch.float32, device)
        x_cl = x.to(memory_format=torch.channels_last)
        # A non-contiguous view with the same values: every other column of a wider tensor.
        wide = torch.zeros(*x.shape[:3], 2 * x.shape[3], device=device)
        wide[..., ::2] = x
        x_nc = wide[..., ::2]
        assert not x_nc.is_contiguous()
        module = perturb_(self._build_config(cfg)).eval().to(device)
        expected = self.case.outputs(module, x, cond, state)
        # Float rounding only: a layout bug moves values by O(1). 1e-4, not 1e-5: ShuffleAttention's
        # GroupNorm over as few as 2 pixels divides by their spread, which magnifies the other
        # summation order of a channels_last kernel (seen once in a 2-process run).
        for variant in (x_cl, x_nc):
            got = self.case.outputs(module, variant, cond, state)
            for e, g in zip(expected, got, strict=True):
                torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)


# The calling-convention errors shared by the conditioned layers.
C = 8


def _x(b=2, c=C, device=None):
    return torch.randn(b, c, 4, 4).to(device)


class ConditionedTester(BaseTester):
    """A layer called as ``layer(x, cond)`` (plus ``state`` when recurrent)."""

    def _call(self, device, x, cond):
        """The layer's call; a recurrent one takes its (required) state, None here."""
        module = self.case.build(C).to(device)
        return self.case.run(module, x, cond, None)

    def test_exception_wrong_rank_of_x(self, device):
        with pytest.raises(ValueError, match=r"x must be a 4-D tensor .* got shape \(2, 8, 4\)"):
            self._call(device, torch.randn(2, C, 4).to(device), torch.randn(2, COND_DIM).to(device))

    def test_exception_wrong_rank_of_cond(self, device):
        with pytest.raises(ValueError, match=r"cond must be a 2-D tensor .* got shape \(2, 6, 1\)"):
            self._call(device, _x(device=device), torch.randn(2, COND_DIM, 1).to(device))

    def test_exception_wrong_channel_count(self, device):
        with pytest.raises(ValueError, match=r"channels C = 8 .* got shape \(2, 7, 4, 4\)"):
            self._call(device, _x(c=7, device=device), torch.randn(2, COND_DIM).to(device))

    def test_exception_wrong_cond_dim(self, device):
        with pytest.raises(ValueError, match=r"cond_dim = 6 .* got shape \(2, 5\)"):
            self._call(device, _x(device=device), torch.randn(2, 5).to(device))

    def test_exception_mismatched_batch(self, device):
        with pytest.raises(ValueError, match=r"x has 2 samples .* cond has 3"):
            self._call(device, _x(device=device), torch.randn(3, COND_DIM).to(device))

    def test_exception_wrong_types(self, device):
        with pytest.raises(TypeError, match="x must be a torch.Tensor"):
            self._call(device, _x().numpy(), torch.randn(2, COND_DIM).to(device))
        with pytest.raises(TypeError, match="cond must be a floating-point tensor, got dtype torch.int64"):
            self._call(device, _x(device=device), torch.ones(2, COND_DIM, dtype=torch.long, device=device))

    def test_exception_device_mismatch(self, device):
        x = _x(device=device)
        with pytest.raises(ValueError, match=rf"cond is on meta but x is on {x.device}"):
            self._call(device, x, torch.randn(2, COND_DIM, device="meta"))

    def test_other_samples_condition_does_not_leak(self, device):
        module, x, cond, state = self._setup_per_sample(device)
        out, _ = self.case.run(module, x, cond, state)
        cond2 = cond.clone()
        cond2[3] = torch.randn(COND_DIM, dtype=cond.dtype).to(device) * 3
        out2, _ = self.case.run(module, x, cond2, state)
        keep = [0, 1, 2, 4]
        torch.testing.assert_close(out2[keep], out[keep], rtol=0, atol=0)
        assert not torch.allclose(out2[3], out[3]), "changing sample 3's condition must change sample 3"


class RecurrentTester(ConditionedTester):
    """A layer called as ``layer(x, cond, state)`` returning ``(out, (h, c))``."""

    def _module(self, device):
        return self.case.build(C).to(device)

    def test_exception_state_of_wrong_shape(self, device):
        state = (torch.randn(2, 4).to(device), torch.randn(2, 4).to(device))
        with pytest.raises(ValueError, match=r"state h must have shape \(batch, hidden_size\) = \(2, 5\), got \(2, 4\)"):
            self._module(device)(_x(device=device), torch.randn(2, COND_DIM).to(device), state)

    def test_exception_state_batch_mismatch(self, device):
        state = (torch.zeros(3, HIDDEN, device=device), torch.zeros(3, HIDDEN, device=device))
        with pytest.raises(ValueError, match=r"= \(2, 5\), got \(3, 5\)"):
            self._module(device)(_x(device=device), torch.randn(2, COND_DIM).to(device), state)

    def test_exception_state_not_a_pair(self, device):
        not_a_pair = torch.zeros(2, HIDDEN, device=device)
        with pytest.raises(TypeError, match="state must be None or a pair"):
            self._module(device)(_x(device=device), torch.randn(2, COND_DIM).to(device), not_a_pair)

    def test_exception_forward_without_state_names_it(self, device):
        """Forgetting the state raises instead of silently restarting the memory from zeros."""
        with pytest.raises(TypeError, match=r"forward\(\) missing 1 required positional argument: 'state'"):
            self._module(device)(_x(device=device), torch.randn(2, COND_DIM).to(device))

    def test_explicit_none_still_means_zeros(self, device):
        module, x, cond = self._module(device), _x(device=device), torch.randn(2, COND_DIM).to(device)
        out_none, (h_none, c_none) = module(x, cond, None)
        zeros = (torch.zeros(2, HIDDEN, device=device), torch.zeros(2, HIDDEN, device=device))
        out_zero, (h_zero, c_zero) = module(x, cond, zeros)
        assert torch.equal(out_none, out_zero) and torch.equal(h_none, h_zero) and torch.equal(c_none, c_zero)


def check_block_fused_matches_ref(block_cls: type[nn.Module], device: torch.device) -> None:
    """A block with ``impl="fused"`` gives the reference block's output and gradients."""
    block = perturb_all_(block_cls(10, 6, impl="fused")).to(device)
    x = torch.randn(3, 6, 4, 4).to(device).requires_grad_()
    cond = torch.randn(3, 10).to(device)

    def run(module):
        out = module(x, cond, None) if isinstance(module, RATBlock) else module(x, cond)
        return out[0] if isinstance(out, tuple) else out

    grad = torch.randn(3, 6, 4, 4).to(device)
    fused, ref = run(block), run(ref_copy(block))
    torch.testing.assert_close(fused, ref)
    inputs = [x, *block.parameters()]
    for a, b in zip(grads(fused, inputs, grad), grads(ref, inputs, grad)):
        torch.testing.assert_close(a, b)


def modulation_params(batch: int, channels: int, dtype=torch.float32, device=None) -> list[Tensor]:
    """``modulate_twice``'s ``gamma1, beta1, gamma2, beta2``: ``(batch, channels)``, requiring grad."""
    return [torch.randn(batch, channels, dtype=dtype).to(device).requires_grad_() for _ in range(4)]
