"""CLIPTextAdapter against open_clip's own text encoder."""

from __future__ import annotations

import pytest
import torch

from ratlip_layers import CLIPTextAdapter
from ratlip_layers.clip import TextEncoding

from .towers import ALT_KWARGS, make_clip

CAPTIONS = ["a small bird with a red head and black wings", "yellow flower", "this bird is blue"]
KINDS = ["tiny", "alt"]


@pytest.fixture(scope="module", params=KINDS)
def clip_and_tokenizer(request):
    return make_clip(request.param)


@pytest.mark.parametrize("kind", KINDS)
def test_sentence_and_tokens_match_open_clip(kind):
    clip_model, tokenizer = make_clip(kind)
    tokens = tokenizer(CAPTIONS)
    enc = CLIPTextAdapter(clip_model, tokenizer=tokenizer)(tokens)
    assert isinstance(enc, TextEncoding)
    torch.testing.assert_close(enc.sentence, clip_model.encode_text(tokens), rtol=0, atol=1e-5)
    depth = len((getattr(clip_model, "text", None) or clip_model).transformer.resblocks)
    final = clip_model.forward_intermediates(
        text=tokens, text_indices=[depth - 1], normalize_intermediates=True
    )
    torch.testing.assert_close(enc.tokens, final["text_intermediates"][-1], rtol=0, atol=1e-5)


def test_causal_mask_is_applied(clip_and_tokenizer):
    # With CLIP's causal mask, features up to the end-of-text token ignore what follows it.
    clip_model, tokenizer = clip_and_tokenizer
    adapter = CLIPTextAdapter(clip_model, tokenizer=tokenizer)
    tokens = tokenizer(["a bird"])
    end = int(tokens.argmax())
    changed = tokens.clone()
    changed[0, end + 1 :] = 1000
    a, b = adapter(tokens), adapter(changed)
    torch.testing.assert_close(a.sentence, b.sentence, rtol=0, atol=1e-6)
    torch.testing.assert_close(a.tokens[:, : end + 1], b.tokens[:, : end + 1], rtol=0, atol=1e-6)
    assert not torch.allclose(a.tokens[:, end + 1 :], b.tokens[:, end + 1 :])


def test_shorter_sequences_give_the_same_sentence(clip_and_tokenizer):
    clip_model, tokenizer = clip_and_tokenizer
    adapter = CLIPTextAdapter(clip_model, tokenizer=tokenizer)
    tokens = tokenizer(["yellow flower"])
    short = tokens[:, :5]
    full, cut = adapter(tokens), adapter(short)
    assert cut.tokens.shape[1] == 5
    torch.testing.assert_close(cut.sentence, full.sentence, rtol=0, atol=1e-5)


def test_padding_mask_marks_positions_after_end_of_text(clip_and_tokenizer):
    clip_model, tokenizer = clip_and_tokenizer
    tokens = tokenizer(CAPTIONS)
    mask = CLIPTextAdapter(clip_model, tokenizer=tokenizer)(tokens).padding_mask
    assert mask.dtype == torch.bool and mask.shape == tokens.shape
    eot = tokenizer.eot_token_id
    for row, row_mask in zip(tokens.tolist(), mask.tolist()):
        end = row.index(eot) if eot in row else len(row) - 1
        assert row_mask == [i > end for i in range(len(row))]


def test_strings_equal_token_ids_and_default_tokenizer():
    clip_model, tokenizer = make_clip("tiny")
    with_tok = CLIPTextAdapter(clip_model, tokenizer=tokenizer)
    default = CLIPTextAdapter(clip_model)
    expected = with_tok(tokenizer(CAPTIONS)).sentence
    torch.testing.assert_close(with_tok(CAPTIONS).sentence, expected, rtol=0, atol=0)
    torch.testing.assert_close(default(CAPTIONS).sentence, expected, rtol=0, atol=0)
    assert (default.embed_dim, default.context_length, default.width) == (32, 16, 64)


def test_clip_stays_frozen_and_in_eval_mode():
    clip_model, tokenizer = make_clip("tiny")
    adapter = CLIPTextAdapter(clip_model, tokenizer=tokenizer)
    adapter.train()
    adapter.requires_grad_(True)
    assert not any(m.training for m in clip_model.modules())
    assert not any(p.requires_grad for p in adapter.parameters())
    assert adapter.trainable_state_dict() == {}


def test_from_pretrained_builds_without_download():
    adapter = CLIPTextAdapter.from_pretrained("ViT-B-32", None, **ALT_KWARGS)
    assert adapter(["a bird"]).sentence.shape == (1, ALT_KWARGS["embed_dim"])


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        (torch.zeros(2, 16), ValueError, "integer tensor"),
        (torch.zeros(2, 17, dtype=torch.long), ValueError, "context_length = 16"),
        (torch.full((1, 4), 49408), ValueError, r"\[0, 49407\]"),
        (torch.zeros(3, dtype=torch.long), ValueError, "shape \\(B, L\\)"),
        ("a bird", TypeError, "list of str"),
        ([1, 2], TypeError, r"captions\[0\] must be a str, got int \(1\)"),
        ([], ValueError, "at least one caption"),
    ],
)
def test_bad_input_raises(text, error, match):
    clip_model, tokenizer = make_clip("tiny")
    with pytest.raises(error, match=match):
        CLIPTextAdapter(clip_model, tokenizer=tokenizer)(text)


def test_model_without_text_tower_raises():
    with pytest.raises(ValueError, match="text transformer"):
        CLIPTextAdapter(torch.nn.Linear(2, 2))
