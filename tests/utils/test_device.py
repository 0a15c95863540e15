"""MODEL.DEVICE: one resolution for both engines and the tools."""
import logging

import pytest
import torch

from res2net_det.utils.device import resolve_device


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def test_auto_picks_what_exists_silently(no_gpu, caplog):
    with caplog.at_level(logging.WARNING):
        assert resolve_device("auto") == torch.device("cpu")
    assert not caplog.records


def test_auto_on_a_gpu_machine(gpu):
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device(" AUTO ", local_rank=1) == torch.device("cuda", 1)


def test_explicit_cuda_without_gpu_warns(no_gpu, caplog):
    with caplog.at_level(logging.WARNING):
        assert resolve_device("cuda:1") == torch.device("cpu")
    assert "MODEL.DEVICE is 'cuda:1' but no GPU" in caplog.text


def test_cuda_takes_the_local_rank(gpu):
    assert resolve_device("cuda", local_rank=3) == torch.device("cuda", 3)
    assert resolve_device("cuda:0", local_rank=3) == torch.device("cuda", 0)  # explicit index wins


def test_other_devices_and_bad_names():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="MODEL.DEVICE 'gpu'"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match="MODEL.DEVICE"):
        resolve_device("")
