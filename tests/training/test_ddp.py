"""Two CPU processes with the gloo backend train a few DDP steps and end with identical weights."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from ratlip_layers.training import TrainConfig, Trainer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, options: dict, out_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
    )
    torch.set_num_threads(1)
    trainer = Trainer(TrainConfig.resolve(**options), progress=False)
    result = trainer.fit()
    weights = {f"g.{k}": v for k, v in trainer.generator.trainable_state_dict().items()}
    weights.update({f"d.{k}": v for k, v in trainer.discriminator.trainable_state_dict().items()})
    save_file(
        {k: v.contiguous() for k, v in weights.items()}, os.path.join(out_dir, f"rank{rank}.safetensors")
    )
    first_batch = next(iter(trainer.loader)).captions
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"metrics": result.metrics, "step": result.step, "captions": first_batch}, f)
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_end_with_identical_weights(tmp_path):
    options = {
        "preset": "tiny", "clip_pretrained": "none", "steps": 3, "batch_size": 4, "device": "cpu",
        "out": str(tmp_path / "run"), "eval_images": 16, "fid_cache": str(tmp_path / "fid"), "log_every": 1,
        "sample_every": 0, "eval_every": 0, "save_every": 0,
    }
    mp.spawn(_worker, args=(2, _free_port(), options, str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in range(2))
    assert rank0.keys() == rank1.keys()
    assert [k for k in rank0 if not torch.equal(rank0[k], rank1[k])] == []
    info0, info1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert info0["step"] == info1["step"] == 3
    # Each rank trained on its own share of the data ...
    assert info0["captions"] != info1["captions"]
    # ... and the metrics were gathered across both ranks, so both report the same values.
    assert info0["metrics"] == info1["metrics"] and "colour_acc" in info0["metrics"]
    # Rank 0 alone wrote the run directory.
    assert (tmp_path / "run" / "checkpoints" / "step-00000003" / "state.pt").is_file()
    state = torch.load(tmp_path / "run" / "checkpoints" / "step-00000003" / "state.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2
