"""Evaluation of more images than the test split holds: captions cycle, passes reported."""

import torch

from ratlip_layers.clip import tiny_clip
from ratlip_layers.data import ShapesDataset
from ratlip_layers.metrics import MetricContext
from ratlip_layers.models import GeneratorConfig, RATLIPGenerator
from ratlip_layers.training import Evaluator


class _Three(torch.utils.data.Dataset):
    def __init__(self):
        self.inner = ShapesDataset(3, split="test")

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return self.inner[i]

    def caption(self, i):
        if not 0 <= i < 3:
            raise IndexError(i)
        return self.inner.caption(i)


def test_more_images_than_captions(tmp_path):
    clip_model, tokenizer = tiny_clip()
    evaluator = Evaluator(_Three(), dataset_id="shapes-test-32-3", dataset_name="shapes",
                          context=MetricContext(clip_model, tokenizer), num_images=8, batch_size=4,
                          fid_cache=tmp_path)
    torch.manual_seed(0)
    G = RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer)
    metrics = evaluator.evaluate(G)
    print(metrics)
    assert metrics["passes"] == 3
