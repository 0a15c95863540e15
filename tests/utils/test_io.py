"""The atomic writers and the JSON helpers of utils/io.py."""
import json
import os

import pytest

from res2net_det.utils import io
from res2net_det.utils.io import atomic_path, atomic_write, read_json_file, temporary_path, write_json_file


def test_atomic_write_replaces_the_file_only_at_the_end(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_write(str(target)) as f:
        f.write("néw")
        assert target.read_text() == "old"  # readers still see the old file
        assert [p.name for p in tmp_path.iterdir() if p.name != "out.txt"] == [os.path.basename(f.name)]
    assert target.read_text(encoding="utf-8") == "néw"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_an_error_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_write(str(target), "wb") as f:
            f.write(b"new, but")
            raise RuntimeError("half way")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_fsync_is_called_only_when_asked(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(io.os, "fsync", lambda fd: synced.append(fd))
    with atomic_write(str(tmp_path / "a.txt")) as f:
        f.write("a")
    assert synced == []
    with atomic_write(str(tmp_path / "b.txt"), fsync=True) as f:
        f.write("b")
    assert len(synced) == 1


def test_atomic_path_hands_a_name_for_libraries_that_want_one(tmp_path):
    target = str(tmp_path / "arrays.npy")
    with atomic_path(target, suffix=".partial") as tmp:
        assert tmp.startswith(target + ".") and tmp.endswith(".partial") and not os.path.exists(tmp)
        with open(tmp, "xb") as f:  # nothing was created in the way of an exclusive open
            f.write(b"data")
    assert open(target, "rb").read() == b"data"
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            open(tmp, "wb").close()
            raise ValueError("refused")
    assert os.listdir(tmp_path) == ["arrays.npy"]


def test_temporary_names_are_unique_and_beside_the_target(tmp_path):
    target = str(tmp_path / "x.json")
    names = {temporary_path(target) for _ in range(100)}
    assert len(names) == 100 and all(os.path.dirname(n) == str(tmp_path) for n in names)


def test_atomic_write_refuses_a_reading_mode(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(str(tmp_path / "x"), "r"):
            pass


def test_write_json_file_is_strict_and_read_json_file_names_the_file(tmp_path):
    path = str(tmp_path / "r.json")
    write_json_file(path, {"a": float("nan"), "b": [1.0, float("inf")]}, indent=1)
    assert json.loads(open(path).read()) == {"a": None, "b": [1.0, None]}
    assert read_json_file(path, "results") == {"a": None, "b": [1.0, None]}
    open(path, "w").write("{")
    with pytest.raises(ValueError, match="results .*r.json is not valid JSON"):
        read_json_file(path, "results")
    with pytest.raises(FileNotFoundError, match="results not found"):
        read_json_file(str(tmp_path / "missing.json"), "results")
