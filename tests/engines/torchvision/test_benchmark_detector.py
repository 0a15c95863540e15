"""tools/benchmark.py detector's helpers run both candidates through inference and a training step
(no timing is asserted)."""
from res2net_det.engines.torchvision.benchmark import DETECTORS, benchmark_detectors

# A narrow Res2Net that stops after res3: the candidates' code path at a fraction of the cost.
TINY = dict(variant="res2net50_26w_4s", backbone_kwargs={"base_width": 4}, out_features=("res2", "res3"),
            fpn_channels=32, box_head_fc_dims=(64,))


def test_benchmark_detectors_times_every_candidate():
    inference, training = benchmark_detectors(1, (64, 64), repeats=2, warmup=0, detectors={"a": TINY, "b": TINY})
    assert set(inference) == {"a", "b", "a backbone+FPN", "b backbone+FPN"}
    assert set(training) == {"a", "b"}
    assert all(len(t.seconds) == 2 for t in list(inference.values()) + list(training.values()))


def test_the_candidates_are_res2net_50_and_its_resnet_50_baseline():
    assert {name: args["variant"] for name, args in DETECTORS.items()} == {
        "R2-50-FPN": "res2net50_26w_4s", "R-50-FPN": "resnet50"}
