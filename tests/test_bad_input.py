"""A table of bad inputs across the public API: each gets a clear error at our boundary, of the
documented type, whose message names what was expected and what arrived."""

import numpy as np
import pytest
import torch

from ratlip_layers import (
    DFBlock,
    GeneratorConfig,
    LSTMAffine,
    RATBlock,
    RATLIPGenerator,
    SAConv,
    ShuffleAttention,
    StateFromNoise,
    tiny_clip,
)
from ratlip_layers.clip import CLIPTextAdapter


@pytest.fixture(scope="module")
def generator():
    clip_model, tokenizer = tiny_clip()
    return RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer)


CONSTRUCTORS = [
    ("float size", lambda: DFBlock(8.0, 4), TypeError, "cond_dim must be an int, got float (8.0)"),
    ("bool size", lambda: RATBlock(8, True), TypeError, "num_features must be an int, got bool"),
    ("zero size", lambda: ShuffleAttention(0, 2), ValueError, "channels must be a positive int, got 0"),
    ("string size", lambda: SAConv("8", 4), TypeError, "in_channels must be an int, got str ('8')"),
    ("integer dtype", lambda: DFBlock(8, 4, dtype=torch.int64), TypeError, "floating-point torch.dtype, got torch.int64"),
    ("string dtype", lambda: ShuffleAttention(8, 2, dtype="float32"), TypeError, "got 'float32'"),
    ("unknown device", lambda: DFBlock(8, 4, device="gpu"), ValueError, "device string such as 'cpu'"),
    ("unknown device (SA)", lambda: ShuffleAttention(8, 2, device="gpu"), ValueError, "got 'gpu'"),
    ("string slope", lambda: DFBlock(8, 4, negative_slope="0.2"), TypeError, "negative_slope must be a number"),
    ("nan slope", lambda: DFBlock(8, 4, negative_slope=float("nan")), ValueError, "negative_slope must be finite"),
    ("unknown impl", lambda: DFBlock(8, 4, impl="cuda"), ValueError, "impl must be one of ('ref', 'fused')"),
    ("RAT unknown device", lambda: RATBlock(8, 4, hidden_size=6, device="gpu"), ValueError, "got 'gpu'"),
    ("RAT string slope", lambda: RATBlock(8, 4, hidden_size=6, negative_slope="x"), TypeError, "negative_slope"),
    ("noise integer dtype", lambda: StateFromNoise(4, 6, dtype=torch.int32), TypeError, "got torch.int32"),
    ("LSTMAffine unknown device", lambda: LSTMAffine(8, 4, hidden_size=6, device="gpu"), ValueError, "got 'gpu'"),
]


@pytest.mark.parametrize(("build", "error", "message"), [c[1:] for c in CONSTRUCTORS], ids=[c[0] for c in CONSTRUCTORS])
def test_constructor_arguments(build, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        build()


def test_integer_sizes_accept_what_nn_linear_accepts():
    block = DFBlock(np.int64(8), torch.tensor(4))
    assert (block.cond_dim, block.num_features) == (8, 4) and type(block.cond_dim) is int
    assert StateFromNoise(np.int32(3), np.int16(5)).hidden_size == 5


def test_integer_recurrent_state_is_refused_like_integer_inputs():
    layer = LSTMAffine(8, 4, hidden_size=6)
    state = (torch.zeros(2, 6, dtype=torch.long), torch.zeros(2, 6, dtype=torch.long))
    with pytest.raises(TypeError, match="state h must be a floating-point tensor, got dtype torch.int64"):
        layer(torch.randn(2, 4, 3, 3), torch.randn(2, 8), state)


GENERATE = [
    ("empty list", [], ValueError, "at least one caption, got an empty list"),
    ("None", None, TypeError, "captions must be a list of str .* got NoneType"),
    ("a bare string", "a red circle", TypeError, "wrap a single caption in a list"),
    ("not strings", ["a red circle", 2], TypeError, r"captions\[1\] must be a str, got int \(2\)"),
    ("no sentence embeddings", torch.zeros(0, 32), ValueError, "at least one sentence embedding"),
    ("no token ids", torch.zeros(0, 16, dtype=torch.long), ValueError, "at least one caption, got shape"),
]


@pytest.mark.parametrize(("inputs", "error", "message"), [c[1:] for c in GENERATE], ids=[c[0] for c in GENERATE])
def test_generate(generator, inputs, error, message):
    with pytest.raises(error, match=message):
        generator.generate(inputs)


def test_text_adapter_names_the_bad_caption():
    clip_model, tokenizer = tiny_clip()
    text = CLIPTextAdapter(clip_model, tokenizer=tokenizer)
    with pytest.raises(TypeError, match=r"captions\[0\] must be a str, got bytes"):
        text([b"a red circle"])
