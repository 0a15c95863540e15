"""One optimizer policy for every task and engine: Detectron2's parameter groups + SOLVER.OPTIMIZER."""
import pytest
import torch
from torch import nn

from res2net_det.config import get_cfg
from res2net_det.config.solver import build_optimizer, optimizer_param_groups


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.gn = nn.GroupNorm(2, 4)
        self.fc = nn.Linear(4, 2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)
        self.shared = self.fc  # a module reachable twice: its parameters count once


def _hyper(groups, param):
    (group,) = [g for g in groups if any(p is param for p in g["params"])]
    return group["lr"], group["weight_decay"]


def test_detectron2_rules():
    net = _Net()
    groups = optimizer_param_groups(net, base_lr=0.1, weight_decay=1e-4, weight_decay_norm=0.0)
    assert _hyper(groups, net.conv.weight) == (0.1, 1e-4) == _hyper(groups, net.conv.bias)
    assert _hyper(groups, net.bn.weight) == (0.1, 0.0) == _hyper(groups, net.gn.bias)
    params = [p for g in groups for p in g["params"]]
    assert len(params) == len({id(p) for p in params}) == 8  # no frozen, no duplicate
    assert len(groups) == 2  # merged by hyper-parameters
    # bias rules are applied after the norm rule, to norm biases too (Detectron2's overrides)
    groups = optimizer_param_groups(net, base_lr=0.1, weight_decay=1e-4, weight_decay_norm=0.0,
                                    bias_lr_factor=2.0, weight_decay_bias=0.5)
    assert _hyper(groups, net.conv.bias) == (0.2, 0.5) == _hyper(groups, net.bn.bias)
    assert _hyper(groups, net.bn.weight) == (0.1, 0.0)
    assert _hyper(groups, net.fc.weight) == (0.1, 1e-4)


def test_same_groups_as_detectron2():
    d2 = pytest.importorskip("detectron2.solver.build", reason="Detectron2 is not installed")
    net = _Net()
    kwargs = dict(base_lr=0.1, weight_decay=1e-4, weight_decay_norm=0.0, bias_lr_factor=2.0, weight_decay_bias=0.5)

    def as_sets(groups):
        return sorted((g["lr"], g["weight_decay"], frozenset(id(p) for p in g["params"])) for g in groups)

    theirs = d2.get_default_optimizer_params(net, **kwargs)
    assert as_sets(optimizer_param_groups(net, **kwargs)) == as_sets(theirs)


@pytest.mark.parametrize("name,cls", [("SGD", torch.optim.SGD), ("Adam", torch.optim.Adam),
                                      ("adamw", torch.optim.AdamW)])
def test_optimizer_choice(name, cls):
    cfg = get_cfg()
    cfg.SOLVER.OPTIMIZER = name
    optimizer = build_optimizer(cfg, _Net())
    assert type(optimizer) is cls
    assert {g["weight_decay"] for g in optimizer.param_groups} == {cfg.SOLVER.WEIGHT_DECAY,
                                                                   cfg.SOLVER.WEIGHT_DECAY_NORM}
    if cls is torch.optim.SGD:
        assert optimizer.defaults["momentum"] == cfg.SOLVER.MOMENTUM


def test_bad_optimizer_and_frozen_model_are_named():
    cfg = get_cfg()
    cfg.SOLVER.OPTIMIZER = "Lion"
    with pytest.raises(ValueError, match="SOLVER.OPTIMIZER.*'Lion'"):
        build_optimizer(cfg, _Net())
    cfg.SOLVER.OPTIMIZER = "SGD"
    with pytest.raises(ValueError, match="no trainable parameter"):
        build_optimizer(cfg, nn.Linear(2, 2).requires_grad_(False))
