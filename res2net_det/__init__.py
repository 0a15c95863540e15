"""res2net-det: the Res2Net backbone for detection, saliency and class activation mapping.

The core (this package minus ``engines/detectron2``) needs PyTorch and torchvision only::

    import res2net_det
    backbone = res2net_det.create_model("res2net50_26w_4s", num_classes=0)   # or res2net50_26w_4s(...)
    detector = res2net_det.fasterrcnn_res2net_fpn("res2net50_26w_4s", num_classes=91)
    res2net_det.model_zoo.get_config_file("faster_rcnn_r2_50.yaml")
"""
from . import model_zoo
from .modeling.detection import fasterrcnn_res2net_fpn, maskrcnn_res2net_fpn, retinanet_res2net_fpn
from .modeling.res2net import Res2Net, create_model, list_models
from .version import __version__

__all__ = [
    "create_model",
    "list_models",
    "Res2Net",
    "fasterrcnn_res2net_fpn",
    "maskrcnn_res2net_fpn",
    "retinanet_res2net_fpn",
    "model_zoo",
    "__version__",
]
