"""The torchvision engine: torchvision's Faster/Mask R-CNN and RetinaNet on Res2Net + FPN (the core's
builders) and a task-agnostic trainer on torch.distributed. Imports nothing beyond PyTorch and torchvision.

Modules: ``modeling`` (the builders with Detectron2's dict interface, from a config), ``support`` (the
values of Detectron2's keys this engine honours, and the check refusing the rest), ``registry`` (tasks by
META_ARCHITECTURE), ``trainer`` (TaskLoopTrainer, inference_on_dataset), ``checkpoint`` (atomic
checkpoints, MODEL.WEIGHTS loading), ``data`` (generic loaders), ``detection`` (the detection tasks:
GeneralizedRCNN, RetinaNet), ``tasks`` (the tasks the core describes: saliency, classification),
``predictor`` (single-image inference), ``train_net`` (tools/train_net.py's job).
"""
# Importing the task modules registers their META_ARCHITECTUREs (registry.get_task).
from . import detection, tasks  # noqa: F401,E402
