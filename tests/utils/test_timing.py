"""The timing helpers (no timing is asserted: only order, counts and arithmetic)."""
import pytest

from res2net_det.utils.timing import Timing, format_timings, time_interleaved


def test_runs_are_interleaved_with_rotating_order():
    calls = []
    candidates = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    timings = time_interleaved(candidates, repeats=3, warmup=1)
    assert calls == list("abc" + "abc" + "bca" + "cab")
    assert all(len(t.seconds) == 3 for t in timings.values())


def test_medians_and_ratios():
    timings = {"fast": Timing("fast", [1.0, 3.0, 2.0]), "slow": Timing("slow", [4.0, 4.0, 5.0])}
    assert timings["fast"].median == 2.0
    table = format_timings(timings, ["slow"])
    fast_row = next(line for line in table.splitlines() if line.startswith("fast"))
    assert "2000.0" in fast_row and "0.500x" in fast_row


def test_repeats_must_be_positive():
    with pytest.raises(ValueError, match="repeats"):
        time_interleaved({"a": lambda: None}, repeats=0)
