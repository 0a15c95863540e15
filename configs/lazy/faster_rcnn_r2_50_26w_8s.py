# LazyConfig twin of configs/faster_rcnn_r2_50_26w_8s.yaml, for Detectron2's own tools (docs/detectron2.md):
# Detectron2's configs/common pieces with the Res2Net bottom-up, every number read from the YAML (the one source).
from res2net_det.engines.detectron2.lazy import yaml_twin

model, dataloader, optimizer, lr_multiplier, train = yaml_twin(__file__)
