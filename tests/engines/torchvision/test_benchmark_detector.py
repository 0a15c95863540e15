"""tools/benchmark.py detector's helpers run both candidates through inference and a training step
(no timing is asserted)."""
from res2net_det.engines.torchvision.benchmark import benchmark_detectors


def test_benchmark_detectors_times_every_candidate():
    inference, training = benchmark_detectors(
        1, (64, 64), repeats=2, warmup=0, configs={"a": "quickstart.yaml", "b": "quickstart.yaml"})
    assert set(inference) == {"a", "b", "a backbone+FPN", "b backbone+FPN"}
    assert set(training) == {"a", "b"}
    assert all(len(t.seconds) == 2 for t in list(inference.values()) + list(training.values()))
