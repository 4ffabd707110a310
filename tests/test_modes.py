import pytest
import torch
from torch import nn

from ratlip_layers._modes import eval_mode


@pytest.mark.parametrize("training", [True, False])
def test_eval_inside_and_the_mode_found_restored(training):
    net = nn.Sequential(nn.Dropout(0.5), nn.Linear(2, 2)).train(training)
    with eval_mode(net) as inside:
        assert inside is net and not any(m.training for m in net.modules())
    assert all(m.training == training for m in net.modules())


def test_mode_restored_when_the_block_raises():
    net = nn.Linear(2, 2).train()
    with pytest.raises(RuntimeError, match="boom"), eval_mode(net):
        raise RuntimeError("boom")
    assert net.training


def test_dropout_is_off_inside():
    net = nn.Dropout(0.5).train()
    x = torch.ones(1000)
    with eval_mode(net):
        assert torch.equal(net(x), x)
    assert not torch.equal(net(x), x)
