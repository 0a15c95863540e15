#!/usr/bin/env python3
"""Train or evaluate from a Detectron2-schema config, on Detectron2 or torchvision.

  python tools/train_net.py --config-file configs/quickstart.yaml
  python tools/train_net.py --config-file configs/faster_rcnn_r2_50.yaml --eval-only MODEL.WEIGHTS model.pth
  torchrun --nproc_per_node 8 tools/train_net.py --config-file configs/faster_rcnn_r2_50.yaml ENGINE torchvision

The engine comes from the config's ENGINE key ("auto": Detectron2 when installed). The same runs
without a checkout as ``python -m res2net_det.engines.train_net`` (res2net_det/engines/train_net.py).
"""
from res2net_det.engines.train_net import main

if __name__ == "__main__":
    main()
