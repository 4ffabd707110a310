"""Evaluation of more images than the test split holds: captions cycle, passes reported."""

import pytest
import torch

from ratlip_layers.clip import tiny_clip
from ratlip_layers.data import ShapesDataset
from ratlip_layers.data.keys import split_key
from ratlip_layers.metrics import MetricContext, evaluate_generator
from ratlip_layers.models import GeneratorConfig, RATLIPGenerator
from ratlip_layers.training import Evaluator


class _ThreeItems(torch.utils.data.Dataset):
    """A 3-item test split with ten captions per item, like CUB; refuses out-of-range indices."""

    def __init__(self):
        self.inner = ShapesDataset(3, split="test")
        self.keys = []

    def __len__(self):
        return 3

    def __getitem__(self, key):
        return self.inner[split_key(key)[0]]

    def caption(self, key):
        index, generator = split_key(key)
        if not 0 <= index < 3:
            raise IndexError(f"index {index} is out of range for a dataset of 3 items")
        self.keys.append(key)
        return f"item {index} caption {int(torch.randint(10, (), generator=generator))}"


class _Recorder:
    def __init__(self):
        self.captions = []

    def reset(self):
        self.captions = []

    def update(self, images, captions):
        self.captions += captions

    def compute(self):
        return {"images": len(self.captions)}


def _evaluate(dataset, num_images, seed=0, world_size=1):
    recorders = [_Recorder() for _ in range(world_size)]
    for rank, recorder in enumerate(recorders):
        result = evaluate_generator(lambda noise, texts: torch.zeros(len(texts), 3, 4, 4), dataset.caption,
                                    {"rec": recorder}, num_images=num_images, z_dim=4, batch_size=3,
                                    seed=seed, rank=rank, world_size=world_size, num_captions=len(dataset))
    return result, [c for r in recorders for c in r.captions]


def test_more_images_than_items_cycles_with_fresh_caption_draws():
    dataset = _ThreeItems()
    result, captions = _evaluate(dataset, 30)
    assert result == {"images": 30, "passes": 10}
    # Image i describes item i % 3 ...
    assert [int(c.split()[1]) for c in captions] == [i % 3 for i in range(30)]
    # ... and later passes draw other captions of the same item, not the first pass's again.
    per_item = [{c for c in captions if c.startswith(f"item {k} ")} for k in range(3)]
    assert all(len(drawn) > 3 for drawn in per_item), per_item
    # The draw is seeded: same seed, same captions; another seed, others.
    assert _evaluate(_ThreeItems(), 30)[1] == captions
    assert _evaluate(_ThreeItems(), 30, seed=1)[1] != captions


def test_caption_draws_do_not_depend_on_the_number_of_ranks():
    _, one = _evaluate(_ThreeItems(), 8)
    _, two = _evaluate(_ThreeItems(), 8, world_size=2)
    assert sorted(one) == sorted(two)


@pytest.mark.parametrize("num_images, passes", [(3, 1), (4, 2), (8, 3)])
def test_passes_round_up(num_images, passes):
    assert _evaluate(_ThreeItems(), num_images)[0]["passes"] == passes


def test_evaluator_scores_eight_images_on_a_three_item_split(tmp_path):
    clip_model, tokenizer = tiny_clip()
    evaluator = Evaluator(_ThreeItems(), dataset_id="three-test-32-3", dataset_name="cub",
                          context=MetricContext(clip_model, tokenizer), num_images=8, batch_size=4,
                          fid_cache=tmp_path)
    torch.manual_seed(0)
    G = RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer)
    metrics = evaluator.evaluate(G)
    print("3-item split, 8 images:", metrics)
    assert metrics["passes"] == 3
    assert set(metrics) == {"clip_score", "fid_clip", "passes"}
    assert all(torch.isfinite(torch.tensor(float(v))) for v in metrics.values())
