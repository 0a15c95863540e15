"""Every task the core describes (res2net_det.config.tasks.TASK_SPECS) runs on both engines: the
torchvision engine registers it, and Detectron2 has its meta-architecture and a trainer of that spec."""
import pytest

from res2net_det.config.tasks import TASK_SPECS
from res2net_det.engines import detectron2_available
from res2net_det.engines.torchvision.registry import get_task


@pytest.mark.parametrize("name", sorted(TASK_SPECS))
def test_every_spec_is_a_task_of_both_engines(name):
    spec = TASK_SPECS[name]
    task = get_task(name)
    assert (task.build_model, task.build_evaluator, task.visualize) == (
        spec.build_model, spec.build_evaluator, spec.visualize)
    if not detectron2_available():
        pytest.skip("Detectron2 is not installed: its side is checked where it is")
    from detectron2.modeling import META_ARCH_REGISTRY

    from res2net_det.engines.detectron2.train_net import TRAINERS

    assert TRAINERS[name].spec is spec and META_ARCH_REGISTRY.get(name) is not None
