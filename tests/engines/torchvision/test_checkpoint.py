"""Training checkpoints are written in forms the safe loader reads, and --resume round-trips them exactly."""
import random

import numpy as np
import pytest
import torch
from torch import nn

from res2net_det.engines.torchvision.checkpoint import Checkpointer
from res2net_det.modeling.weights import CheckpointError, UnsafeCheckpointError, check_safe_to_load, load_checkpoint


def _training_state(seed=0, steps=3):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    model(torch.randn(2, 3, 6, 6))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: 0.5 ** it)  # a lambda, as our trainer's
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    for _ in range(steps):
        model(torch.randn(2, 3, 6, 6)).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
    return model, optimizer, scheduler, scaler


def _equal(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)


def test_resume_round_trips_exactly(tmp_path):
    model, optimizer, scheduler, scaler = _training_state()
    rng_states = {"python": random.getstate(), "numpy": np.random.default_rng(7).bit_generator.state,
                  "torch": torch.get_rng_state()}
    Checkpointer(model, str(tmp_path), optimizer=optimizer, scheduler=scheduler, scaler=scaler).save(
        "model_0000002", iteration=2, rng=rng_states)

    fresh = _training_state(seed=1, steps=0)
    extra = Checkpointer(fresh[0], str(tmp_path), optimizer=fresh[1], scheduler=fresh[2], scaler=fresh[3]
                         ).resume_or_load("", resume=True)
    assert extra["iteration"] == 2
    assert _equal(extra["rng"], rng_states)  # Python's tuple and NumPy's dict come back as written
    assert _equal(fresh[0].state_dict(), model.state_dict())
    assert _equal(fresh[1].state_dict(), optimizer.state_dict())
    assert _equal(fresh[2].state_dict(), scheduler.state_dict())
    assert _equal(fresh[3].state_dict(), scaler.state_dict())


def test_checkpoints_of_the_previous_version_load(tmp_path):
    """The previous version wrote {"model", "optimizer", "scheduler", "scaler", "iteration"} with torch.save."""
    model, optimizer, scheduler, scaler = _training_state()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(), "iteration": 4}, tmp_path / "model_0000004.pth")
    (tmp_path / "last_checkpoint").write_text("model_0000004.pth")
    fresh = _training_state(seed=1, steps=0)
    extra = Checkpointer(fresh[0], str(tmp_path), optimizer=fresh[1], scheduler=fresh[2]).resume_or_load("", True)
    assert extra["iteration"] == 4 and _equal(fresh[0].state_dict(), model.state_dict())


def test_an_unsafe_value_is_refused_when_saving_not_when_resuming(tmp_path):
    model = nn.Linear(2, 1)
    ck = Checkpointer(model, str(tmp_path))
    with pytest.raises(TypeError, match=r"checkpoint model_0000001\['rng'\]\['numpy'\]\[1\] is a numpy.ndarray"):
        ck.save("model_0000001", iteration=1, rng={"numpy": np.random.get_state()})  # legacy state holds an array
    assert not (tmp_path / "model_0000001.pth").exists()
    with pytest.raises(TypeError, match="numpy.float64"):
        check_safe_to_load({"loss": np.float64(1.0)})
    accepted = {"a": (1, 2.0, None, "x", b"y", {3}, 1j, True), "t": torch.zeros(1), "s": torch.Size([2]),
                "d": torch.float16, "p": nn.Parameter(torch.ones(1))}
    check_safe_to_load(accepted)
    torch.save(accepted, tmp_path / "accepted.pth")  # what the check accepts, the safe loader reads
    assert _equal(load_checkpoint(str(tmp_path / "accepted.pth"))["a"], accepted["a"])


def test_resume_of_a_foreign_file_names_it(tmp_path):
    torch.save({"w": torch.zeros(2), "step": np.float64(3.0)}, tmp_path / "model_final.pth")
    (tmp_path / "last_checkpoint").write_text("model_final.pth")
    with pytest.raises(UnsafeCheckpointError, match=r"model_final\.pth would need unsafe unpickling"):
        Checkpointer(nn.Linear(2, 1), str(tmp_path)).resume_or_load("", resume=True)
    torch.save({"weight": torch.zeros(1, 2)}, tmp_path / "model_final.pth")
    with pytest.raises(CheckpointError, match=r"model_final\.pth is not a training checkpoint"):
        Checkpointer(nn.Linear(2, 1), str(tmp_path)).resume_or_load("", resume=True)
    assert isinstance(load_checkpoint(str(tmp_path / "model_final.pth")), dict)


def test_resume_into_another_architecture_names_file_and_both_models(tmp_path):
    import res2net_det

    small = dict(num_classes=0, layers=(1, 1, 1, 1))
    Checkpointer(res2net_det.create_model("res2net50_26w_8s", **small), str(tmp_path)).save("model_final", iteration=9)
    with pytest.raises(CheckpointError, match=r"model_final\.pth does not fit.*26w x 8s.*26w x 4s"):
        Checkpointer(res2net_det.create_model("res2net50_26w_4s", **small), str(tmp_path)).resume_or_load("", True)
