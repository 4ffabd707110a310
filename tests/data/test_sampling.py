import pytest
import torch
from torch.utils.data import DataLoader

from ratlip_layers.data import (
    SHAPES_SIZES,
    CaptionCollate,
    ResumableSampler,
    ShapesDataset,
    build_dataset,
    draw_seed,
)
from ratlip_layers.data.keys import split_key


def test_resume_mid_epoch_continues_the_same_keys():
    sampler = ResumableSampler(range(10), seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_position(2, 6)
    assert list(sampler) == full[6:] and len(sampler) == 4
    sampler.set_epoch(2)
    assert list(sampler) == full
    sampler.set_epoch(3)
    assert [k for k, _ in sampler] != [k for k, _ in full]


def test_ranks_split_an_epoch_with_distinct_draws():
    ranks = [ResumableSampler(range(12), num_replicas=3, rank=r, seed=0, drop_last=True) for r in range(3)]
    keys = [list(s) for s in ranks]
    indices = sorted(i for k in keys for i, _ in k)
    assert indices == list(range(12))
    seeds = [seed for k in keys for _, seed in k]
    assert len(set(seeds)) == 12


def test_position_out_of_range():
    with pytest.raises(ValueError, match=r"start must be in \[0, 4\]"):
        ResumableSampler(range(4)).set_position(0, 5)


def test_draw_seed_mixes_and_split_key_accepts_numpy_ints():
    import numpy as np

    seeds = {draw_seed(0, 0, 0, p) for p in range(1000)}
    assert len(seeds) == 1000 and all(0 <= s < 2**63 for s in seeds)
    index, generator = split_key((np.int64(3), np.int64(9)))
    assert index == 3 and torch.equal(
        torch.rand(2, generator=generator), torch.rand(2, generator=split_key((3, 9))[1])
    )


def test_batches_do_not_depend_on_worker_count():
    ds = ShapesDataset(24, image_size=16)
    collate = CaptionCollate(lambda texts: torch.tensor([[len(t)] for t in texts]))

    def batches(workers):
        sampler = ResumableSampler(ds, seed=1)
        loader = DataLoader(ds, batch_size=8, sampler=sampler, num_workers=workers, collate_fn=collate)
        return list(loader)

    for a, b in zip(batches(0), batches(2)):
        assert (
            torch.equal(a.images, b.images) and torch.equal(a.tokens, b.tokens) and a.captions == b.captions
        )


def test_collate_rejects_a_non_callable_tokenizer():
    with pytest.raises(TypeError, match="tokenizer must be callable"):
        CaptionCollate("not a tokenizer")


def test_build_dataset():
    train = build_dataset("shapes", image_size=16)
    assert len(train) == SHAPES_SIZES["train"] and train.image_size == 16
    assert len(build_dataset("shapes", split="test", num_samples=7)) == 7
    with pytest.raises(ValueError, match="dataset must be one of"):
        build_dataset("imagenet")
    with pytest.raises(ValueError, match=r"needs a data directory \(--data-dir\).*docs/training.rst"):
        build_dataset("cub")
