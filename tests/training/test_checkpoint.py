import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from ratlip_layers.training import CheckpointError, CheckpointManager, load_checkpoint
from ratlip_layers.training.checkpoint import get_rng_state, resolve_checkpoint, save_checkpoint, set_rng_state


def _save(path, value=1.0, **state):
    return save_checkpoint(
        path, weights={"net": {"w": torch.full((2,), value)}}, state={"step": 1, **state}, config={"a": 1}
    )


def test_round_trip_and_no_leftovers(tmp_path):
    net = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    path = save_checkpoint(
        tmp_path / "step-00000001", weights={"net": net.state_dict()},
        state={"optim": optimizer.state_dict(), "rng": get_rng_state(), "step": 1},
        config={"lr": 0.1, "name": "x"},
    )
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "net.safetensors", "state.pt"]
    assert [p.name for p in tmp_path.iterdir()] == ["step-00000001"]
    loaded = load_checkpoint(path)
    assert torch.equal(loaded.weights["net"]["weight"], net.weight)
    restored = torch.optim.Adam(net.parameters())
    restored.load_state_dict(loaded.state["optim"])
    assert torch.equal(
        restored.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"]
    )
    assert loaded.config == {"lr": 0.1, "name": "x"}


def test_state_is_loaded_with_weights_only(tmp_path):
    path = _save(tmp_path / "step-00000001")

    class Exploit:
        def __reduce__(self):
            return (print, ("ran",))

    (path / "state.pt").write_bytes(pickle.dumps(Exploit(), protocol=2))
    with pytest.raises(CheckpointError, match=r"state.pt is unreadable: Weights only load failed"):
        load_checkpoint(path)


def test_a_failed_write_leaves_the_previous_checkpoint_alone(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path, keep=3)
    first = manager.save(1, weights={"net": {"w": torch.ones(2)}}, state={"step": 1}, config={})
    before = {p.name: p.read_bytes() for p in first.iterdir()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        manager.save(2, weights={"net": {"w": torch.zeros(2)}}, state={"step": 2}, config={})
    assert manager.latest() == first
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    assert not manager.path_for(2).exists()


def test_a_write_that_fails_on_disk_leaves_no_temporary_directory(tmp_path, monkeypatch):
    import ratlip_layers.training.checkpoint as checkpoint_module

    manager = CheckpointManager(tmp_path, keep=3)
    first = manager.save(1, weights={"net": {"w": torch.ones(2)}}, state={"step": 1}, config={})
    written = []

    def fail_second(path, data):
        written.append(path)
        if len(written) == 2:
            raise OSError("disk full")
        path.write_bytes(data)

    monkeypatch.setattr(checkpoint_module, "write_synced", fail_second)
    with pytest.raises(OSError, match="disk full"):
        manager.save(2, weights={"net": {"w": torch.zeros(2)}}, state={"step": 2}, config={})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001"]
    assert manager.latest() == first


@pytest.mark.parametrize(
    ("state", "config", "match"),
    [
        ({"step": 1, "where": Path("runs/x")}, {}, "would not load back with weights_only=True"),
        ({"step": 1}, {"out": Path("runs/x")}, "config for .* is not JSON-serialisable"),
    ],
)
def test_state_that_would_not_load_back_is_refused_at_save_time(tmp_path, state, config, match):
    with pytest.raises(ValueError, match=match):
        save_checkpoint(tmp_path / "step-00000001", weights={}, state=state, config=config)
    assert list(tmp_path.iterdir()) == []


def test_keep_latest_and_ignore_incomplete(tmp_path):
    manager = CheckpointManager(tmp_path, keep=2)
    for step in (5, 10, 15):
        manager.save(step, weights={}, state={"step": step}, config={})
    assert [p.name for p in manager.checkpoints()] == ["step-00000010", "step-00000015"]
    (tmp_path / "step-00000099").mkdir()  # no state.pt: a directory someone made by hand
    (tmp_path / ".tmp-step-00000100-1").mkdir()
    assert manager.latest().name == "step-00000015"
    manager.save(20, weights={}, state={"step": 20}, config={})
    assert not (tmp_path / ".tmp-step-00000100-1").exists()


def test_saving_the_same_step_again_replaces_it(tmp_path):
    path = _save(tmp_path / "step-00000003", 1.0)
    _save(path, 2.0)
    assert load_checkpoint(path).weights["net"]["w"].tolist() == [2.0, 2.0]
    assert [p.name for p in tmp_path.iterdir()] == ["step-00000003"]


def test_resolve(tmp_path):
    manager = CheckpointManager(tmp_path / "run" / "checkpoints")
    for step in (1, 2):
        manager.save(step, weights={}, state={}, config={})
    newest = manager.path_for(2)
    assert resolve_checkpoint(tmp_path / "run") == newest
    assert resolve_checkpoint(tmp_path / "run" / "checkpoints") == newest
    assert resolve_checkpoint(manager.path_for(1)) == manager.path_for(1)
    with pytest.raises(CheckpointError, match="no checkpoint at .*empty: expected a checkpoint directory"):
        resolve_checkpoint(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path)


def test_bad_names_and_keep():
    with pytest.raises(ValueError, match="plain file stem"):
        save_checkpoint("/tmp/never", weights={"../x": {}}, state={}, config={})
    with pytest.raises(ValueError, match="keep must be"):
        CheckpointManager("/tmp/never", keep=0)


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    random.random(), np.random.rand(), torch.rand(1), np.random.randn()  # leave a cached gaussian
    torch.save(get_rng_state(), tmp_path / "rng.pt")
    expected = (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist())
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist()) == expected
