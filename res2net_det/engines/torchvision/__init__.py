"""The torchvision engine: torchvision's Faster/Mask R-CNN on Res2Net + FPN and a task-agnostic
trainer on torch.distributed. Imports nothing beyond PyTorch and torchvision.

Modules: ``modeling`` (detector from config), ``registry`` (tasks by META_ARCHITECTURE),
``trainer`` (Trainer, optimizer/schedule, inference_on_dataset), ``checkpoint`` (atomic
checkpoints, MODEL.WEIGHTS loading), ``data`` (generic loaders), ``detection`` (the detection
task), ``classification`` (the Res2Net classifier task of the CAM tools), ``predictor`` (single-image inference), ``train_net`` (tools/train_net.py's job),
``benchmark`` (tools/benchmark.py detector).
"""
# Importing the task modules registers their META_ARCHITECTUREs (registry.get_task).
from . import classification, detection, saliency  # noqa: F401,E402
