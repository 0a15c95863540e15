#!/usr/bin/env python3
"""Train or evaluate from a Detectron2-schema config, on Detectron2 or torchvision.

  python tools/train_net.py --config-file configs/quickstart.yaml
  python tools/train_net.py --config-file configs/faster_rcnn_r2_50.yaml --eval-only MODEL.WEIGHTS model.pth
  torchrun --nproc_per_node 8 tools/train_net.py --config-file configs/faster_rcnn_r2_50.yaml ENGINE torchvision

The engine comes from the config's ENGINE key ("auto": Detectron2 when installed).
"""
import sys

from res2net_det.engines import default_argument_parser, main
from res2net_det.modeling.weights import CheckpointError
from res2net_det.utils.download import DownloadError

if __name__ == "__main__":
    try:
        main(default_argument_parser().parse_args())
    # A weights file that can't be used or fetched (checksum, no source reachable): the message says
    # why and what to do, the traceback would only hide it.
    except (CheckpointError, DownloadError) as e:
        sys.exit(f"error: {e}")
