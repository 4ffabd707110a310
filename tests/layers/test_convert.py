"""One-call conversion of a residual DF-GAN-style generator from CAT to RAT (``convert_to_rat``).

The generator (``dfgan_like.NetG``) has DF-GAN's structure: residual G-blocks that upsample, whose
two fusion blocks sit inside ``residual()``, changing channels and a learnable shortcut.
"""

from __future__ import annotations

import copy
import pickle
import time

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ratlip_layers.layers import DFBlock, RATBlock, StateFromNoise
from ratlip_layers.layers.convert import RecurrentMemory, ThreadedRATBlock, convert_to_rat, read_cat_dims

from .dfgan_like import DFBLK, GBlock, NetG

NZ, TEXT, NGF = 8, 16, 4  # dfgan_like.NetG's defaults
COND = NZ + TEXT


# --- the same generator with explicit state: what a user writes without convert_to_rat ---------
# Lines changed against dfgan_like.GBlock/NetG, marked "# +", are counted in docs/concepts/converting.rst.


class ExplicitGBlock(GBlock):
    def __init__(self, cond_dim: int, in_ch: int, out_ch: int, cell: nn.LSTMCell | None = None) -> None:  # +
        super().__init__(cond_dim, in_ch, out_ch)
        self.fuse1 = RATBlock(cond_dim, in_ch, cell=cell)  # +
        self.fuse2 = RATBlock(cond_dim, out_ch, cell=cell)  # +

    def residual(self, x: Tensor, y: Tensor, state=None):  # +
        h, state = self.fuse1(x, y, state)  # +
        h = self.c1(h)
        h, state = self.fuse2(h, y, state)  # +
        return self.c2(h), state  # +

    def forward(self, x: Tensor, y: Tensor, state=None):  # +
        x = F.interpolate(x, scale_factor=2)
        h, state = self.residual(x, y, state)  # +
        return self.shortcut(x) + h, state  # +


class ExplicitNetG(NetG):
    def __init__(self) -> None:
        nn.Module.__init__(self)
        self.ngf = NGF
        self.fc = nn.Linear(NZ, NGF * 8 * 4 * 4)
        channels = [8 * NGF, 8 * NGF, 4 * NGF, 2 * NGF]
        cell = nn.LSTMCell(COND, 64)  # +
        self.GBlocks = nn.ModuleList(
            ExplicitGBlock(COND, i, o, cell) for i, o in zip(channels[:-1], channels[1:])  # +
        )
        self.state_init = StateFromNoise(NZ, 64)  # +
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(channels[-1], 3, 3, 1, 1), nn.Tanh())

    def forward(self, noise: Tensor, c: Tensor) -> Tensor:
        out = self.fc(noise).view(noise.size(0), 8 * self.ngf, 4, 4)
        cond = torch.cat((noise, c), dim=1)
        state = self.state_init(noise)  # +
        for block in self.GBlocks:
            out, state = block(out, cond, state)  # +
        return self.to_rgb(out)


# --- helpers -----------------------------------------------------------------------------------


def inputs(batch: int = 3) -> tuple[Tensor, Tensor]:
    return torch.randn(batch, NZ), torch.randn(batch, TEXT)


def randomize_heads(model: nn.Module) -> None:
    """Give every modulation head non-zero output weights, as after training.

    Fresh heads are the identity (output weights 0), so nothing upstream of them gets a gradient and
    the recurrence has no effect on the output; the tests of gradients and state need it to matter.
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("weight2", "bias2")):
                p.normal_(0.0, 0.3).add_(torch.ones_like(p) if name.endswith("bias2") else 0)


def new_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if ".rat." in n or n.startswith("rat_memory.")}


# --- conversion and equivalence ----------------------------------------------------------------


def test_convert_replaces_every_fusion_block_in_place():
    model = NetG()
    converted = convert_to_rat(model, DFBlock)
    assert converted is model
    fusions = [m for m in model.modules() if isinstance(m, (DFBlock, ThreadedRATBlock))]
    assert len(fusions) == 6 and all(isinstance(m, ThreadedRATBlock) for m in fusions)
    # Dimensions were read from each replaced block, channels changing with the stage.
    got = [(b.fuse1.rat.num_features, b.fuse2.rat.num_features) for b in model.GBlocks]
    assert got == [(32, 32), (32, 16), (16, 8)]
    assert isinstance(model.rat_memory, RecurrentMemory)


@pytest.mark.parametrize("fusion", [DFBlock, DFBLK])
@pytest.mark.parametrize("state_init", ["zeros", "noise"])
def test_fresh_model_output_unchanged_bit_exact(fusion, state_init):
    model = NetG(fusion)
    noise, c = inputs()
    before = model(noise, c)
    convert_to_rat(model, fusion, state_init=state_init, noise_dim=NZ if state_init == "noise" else None)
    after = model(noise, c)
    assert after.shape == before.shape == (3, 3, 32, 32)
    assert torch.equal(after, before)


def test_condition_independent_part_of_a_trained_cat_is_carried_over_exactly():
    # A CAT whose output weights are zero but whose biases are trained: the modulation is the constant
    # bias2, which the RAT head reproduces exactly. With trained output weights the RAT head applies
    # them to relu(fc1(h_t)) instead of relu(fc1(y)); fc1 cannot be copied (cond_dim vs hidden_size).
    model = NetG()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias2"):
                p.uniform_(0.5, 1.5)
    noise, c = inputs()
    before = model(noise, c)
    convert_to_rat(model)
    assert torch.equal(model(noise, c), before)


def test_trained_output_layers_are_copied_from_both_layouts():
    for fusion in (DFBlock, DFBLK):
        model = NetG(fusion)
        randomize_heads(model)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "linear2" in name:
                    p.normal_()
        old = model.GBlocks[1].fuse2
        if fusion is DFBlock:
            expected = [(a.head.weight2, a.head.bias2) for a in (old.affine1, old.affine2)]
        else:
            expected = [
                (torch.stack([a.fc_gamma.linear2.weight, a.fc_beta.linear2.weight]),
                 torch.stack([a.fc_gamma.linear2.bias, a.fc_beta.linear2.bias]))
                for a in (old.affine0, old.affine1)
            ]
        expected = [(w.detach().clone(), b.detach().clone()) for w, b in expected]
        convert_to_rat(model, fusion)
        new = model.GBlocks[1].fuse2.rat
        for (w, b), affine in zip(expected, (new.affine1, new.affine2)):
            assert torch.equal(affine.head.weight2, w) and torch.equal(affine.head.bias2, b)


def test_converted_model_computes_the_explicit_state_model():
    """The hooks thread the state exactly as hand-written explicit-state code does."""
    explicit = ExplicitNetG()
    randomize_heads(explicit)
    model = convert_to_rat(NetG(), DFBlock, state_init="noise", noise_dim=NZ, copy_weights=False)
    mapped = {
        k.replace(".rat.", ".").replace("rat_memory.init.", "state_init."): v
        for k, v in model.state_dict().items()
    }
    assert set(mapped) == set(explicit.state_dict())
    model.load_state_dict({k: explicit.state_dict()[m] for k, m in zip(model.state_dict(), mapped)})
    noise, c = inputs()
    assert torch.equal(model(noise, c), explicit(noise, c))


def test_cells_shared_or_per_affine():
    shared = convert_to_rat(NetG(), cell="shared")
    cells = {id(m) for m in shared.modules() if isinstance(m, nn.LSTMCell)}
    assert len(cells) == 1
    per_affine = convert_to_rat(NetG(), cell="per_affine")
    cells = {id(m) for m in per_affine.modules() if isinstance(m, nn.LSTMCell)}
    assert len(cells) == 12


def test_read_cat_dims():
    assert read_cat_dims(DFBlock(24, 16)) == (24, 16)
    assert read_cat_dims(DFBLK(24, 16)) == (24, 16)
    with pytest.raises(ValueError, match="pass dims="):
        read_cat_dims(nn.Identity())


def test_caller_supplied_dims_for_an_unreadable_block():
    class Opaque(nn.Module):  # no attributes, no Linear: dimensions must come from the caller
        def __init__(self, cond_dim: int, ch: int) -> None:
            super().__init__()
            self.ch = ch

        def forward(self, x: Tensor, y: Tensor) -> Tensor:
            return x

    model = NetG(Opaque)
    with pytest.raises(ValueError, match="pass dims="):
        convert_to_rat(model, Opaque, copy_weights=False)
    convert_to_rat(model, Opaque, copy_weights=False, dims=lambda block: (COND, block.ch))
    assert model(*inputs()).shape == (3, 3, 32, 32)


def test_shared_cell_needs_one_cond_dim():
    model = NetG()
    model.GBlocks[2].fuse2 = DFBlock(COND + 1, 8)
    with pytest.raises(ValueError, match="'GBlocks.2.fuse2' has cond_dim = 25 and the first block 24"):
        convert_to_rat(model, cell="shared")
    convert_to_rat(model, cell="per_affine")


def test_a_block_registered_twice_stays_one_block():
    model = NetG()
    model.GBlocks[1].fuse1 = model.GBlocks[0].fuse2  # both 32 channels: one module, two places
    convert_to_rat(model)
    assert model.GBlocks[1].fuse1 is model.GBlocks[0].fuse2
    assert model(*inputs()).shape == (3, 3, 32, 32)


def test_predicate_selects_blocks():
    model = convert_to_rat(NetG(), lambda m: isinstance(m, DFBlock) and m.num_features == 32)
    kinds = [type(m).__name__ for b in model.GBlocks for m in (b.fuse1, b.fuse2)]
    assert kinds == ["ThreadedRATBlock"] * 3 + ["DFBlock"] * 3


# --- per sample, state reset, gradients ----------------------------------------------------------


@pytest.mark.parametrize("state_init", ["zeros", "noise"])
def test_per_sample(state_init):
    model = convert_to_rat(NetG(), state_init=state_init, noise_dim=NZ if state_init == "noise" else None)
    randomize_heads(model)
    noise, c = inputs(4)
    full = model(noise, c)
    alone = model(noise[:1], c[:1])
    torch.testing.assert_close(full[:1], alone, rtol=1e-5, atol=1e-6)
    noise2, c2 = noise.clone(), c.clone()
    noise2[1:], c2[1:] = torch.randn(3, NZ), torch.randn(3, TEXT)  # other samples change
    torch.testing.assert_close(model(noise2, c2)[:1], full[:1], rtol=1e-5, atol=1e-6)


def test_state_is_reset_between_forwards():
    model = convert_to_rat(NetG(), state_init="noise", noise_dim=NZ)
    randomize_heads(model)
    noise, c = inputs()
    first = model(noise, c)
    assert model.rat_memory._state is None and not model.rat_memory._open
    assert torch.equal(model(noise, c), first)


def test_memory_closes_when_the_forward_raises():
    model = convert_to_rat(NetG())
    with pytest.raises(ValueError):
        model(torch.randn(2, NZ), torch.randn(2, TEXT + 1))  # wrong condition size, caught by a block
    assert not model.rat_memory._open
    with pytest.raises(RuntimeError, match="outside a forward"):
        model.GBlocks[0].fuse1(torch.randn(2, 32, 8, 8), torch.randn(2, COND))


@pytest.mark.parametrize("cell", ["shared", "per_affine"])
def test_gradients_reach_every_new_parameter_with_noise_init(cell):
    model = convert_to_rat(NetG(), cell=cell, state_init="noise", noise_dim=NZ)
    randomize_heads(model)
    model(*inputs()).square().mean().backward()
    params = new_parameters(model)
    assert "rat_memory.init.proj.weight" in params
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert model.GBlocks[0].fuse1.rat.affine1.cell.weight_hh.grad.abs().sum() > 0


def test_zero_state_with_per_affine_cells_leaves_first_weight_hh_without_gradient():
    """Documented in convert_to_rat: h_0 = 0, so d loss / d weight_hh = d gates^T h_0 = 0 exactly."""
    model = convert_to_rat(NetG(), cell="per_affine", state_init="zeros")
    randomize_heads(model)
    model(*inputs()).square().mean().backward()
    first = model.GBlocks[0].fuse1.rat.affine1.cell
    assert torch.count_nonzero(first.weight_hh.grad) == 0
    assert first.weight_ih.grad.abs().sum() > 0
    assert model.GBlocks[0].fuse1.rat.affine2.cell.weight_hh.grad.abs().sum() > 0
    # With one shared cell, later steps see h != 0 and train weight_hh even from zeros.
    shared = convert_to_rat(NetG(), cell="shared", state_init="zeros")
    randomize_heads(shared)
    shared(*inputs()).square().mean().backward()
    assert shared.GBlocks[0].fuse1.rat.affine1.cell.weight_hh.grad.abs().sum() > 0


# --- pickling, copying, compile --------------------------------------------------------------------


def test_pickle_and_deepcopy_round_trip():
    model = convert_to_rat(NetG(), state_init="noise", noise_dim=NZ)
    randomize_heads(model)
    noise, c = inputs()
    expected = model(noise, c)
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert torch.equal(clone(noise, c), expected)
        # The clone's blocks share the clone's memory, not the original's.
        assert clone.GBlocks[2].fuse2.memory is clone.rat_memory is not model.rat_memory
        with pytest.raises(RuntimeError, match="outside a forward"):
            clone.GBlocks[0].fuse1(torch.randn(3, 32, 8, 8), torch.randn(3, COND))


def test_state_dict_round_trip_into_a_fresh_conversion():
    model = convert_to_rat(NetG(), state_init="noise", noise_dim=NZ)
    randomize_heads(model)
    fresh = convert_to_rat(NetG(), state_init="noise", noise_dim=NZ)
    fresh.load_state_dict(model.state_dict())
    noise, c = inputs()
    assert torch.equal(fresh(noise, c), model(noise, c))


@pytest.mark.slow
def test_compile_fullgraph():
    model = convert_to_rat(NetG(), state_init="noise", noise_dim=NZ)
    randomize_heads(model)
    noise, c = inputs()
    expected = model(noise, c)
    compiled = torch.compile(model, fullgraph=True)
    start = time.perf_counter()
    got = compiled(noise, c)
    print(f"compile + first call: {time.perf_counter() - start:.1f} s")
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(compiled(noise, c), expected, rtol=1e-4, atol=1e-5)  # reset under compile
    assert not model.rat_memory._open


# --- errors --------------------------------------------------------------------------------------


def test_no_matching_block_is_an_error():
    with pytest.raises(ValueError, match="no module of NetG matches block_type='DFBLK'"):
        convert_to_rat(NetG(DFBlock), DFBLK)


def test_block_called_outside_the_root_forward_is_an_error():
    model = convert_to_rat(NetG())
    with pytest.raises(RuntimeError, match="outside a forward of the model it was converted in"):
        model.GBlocks[0](torch.randn(2, 32, 4, 4), torch.randn(2, COND))


def test_calling_forward_without_the_hooks_is_an_error():
    model = convert_to_rat(NetG())
    with pytest.raises(RuntimeError, match=r"not model.forward\(...\)"):
        model.forward(*inputs())


def test_batch_size_changing_mid_forward_is_an_error():
    class Slicing(NetG):
        def forward(self, noise: Tensor, c: Tensor) -> Tensor:
            out = self.fc(noise).view(noise.size(0), 8 * self.ngf, 4, 4)
            cond = torch.cat((noise, c), dim=1)
            out = self.GBlocks[0](out, cond)
            return self.GBlocks[1](out[:1], cond[:1])

    model = convert_to_rat(Slicing())
    with pytest.raises(RuntimeError, match="holds 3 samples but this block got 1"):
        model(*inputs(3))


def test_nested_forward_of_the_root_is_an_error():
    model = convert_to_rat(NetG())
    memory = model.rat_memory
    memory.open((), {})
    with pytest.raises(RuntimeError, match="inside its own forward"):
        model(*inputs())
    memory.close()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"state_init": "noise"}, ValueError, "needs noise_dim"),
        ({"noise_dim": NZ}, ValueError, "only used with state_init='noise'"),
        ({"cell": "one"}, ValueError, "'shared' or 'per_affine'"),
        ({"state_init": "random"}, ValueError, "'zeros' or 'noise'"),
        ({"state_init": "noise", "noise_dim": NZ, "noise_arg": "z"}, ValueError, "not a parameter"),
        ({"hidden_size": 0}, ValueError, "hidden_size must be a positive int"),
    ],
)
def test_invalid_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        convert_to_rat(NetG(), **kwargs)


def test_other_refusals():
    with pytest.raises(ValueError, match="is a fusion block"):
        convert_to_rat(DFBlock(COND, 8))
    model = convert_to_rat(NetG())
    with pytest.raises(ValueError, match="converted before"):
        convert_to_rat(model)
    with pytest.raises(TypeError, match="block_type must be"):
        convert_to_rat(NetG(), "DFBlock")


def test_noise_read_by_name_or_missing():
    model = convert_to_rat(NetG(), state_init="noise", noise_dim=NZ, noise_arg="noise")
    noise, c = inputs()
    assert torch.equal(model(noise=noise, c=c), model(noise, c))
    with pytest.raises(TypeError, match="reads the noise from the model's positional argument 0"):
        model(c=c)
