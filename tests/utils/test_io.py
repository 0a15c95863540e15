"""Atomic writes: the file appears whole or not at all."""
import pytest

from res2net_det.utils.io import atomic_open


def test_atomic_open_replaces_the_file_only_when_the_write_completes(tmp_path):
    path = tmp_path / "last_checkpoint"
    with atomic_open(str(path)) as f:
        f.write("model_0000004.pth")
    assert path.read_text() == "model_0000004.pth" and [p.name for p in tmp_path.iterdir()] == [path.name]
    with pytest.raises(RuntimeError):
        with atomic_open(str(path)) as f:
            f.write("model_00")
            raise RuntimeError("killed while writing")
    assert path.read_text() == "model_0000004.pth"  # the old file stands; the torn one is a .tmp.
    with atomic_open(str(tmp_path / "blob.bin"), "wb") as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "blob.bin").read_bytes() == b"\x00\x01"
