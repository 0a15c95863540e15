#!/usr/bin/env python3
"""Reproduces a paper comparison: the ResNet-50 baseline and Res2Net-50 under identical settings
(same data, schedule and seed, each run in its own OUTPUT_DIR), then the table with a Δ column.

  python tools/reproduce.py detection-coco --num-gpus 8          # Faster R-CNN R-50 vs R2-50 on COCO
  python tools/reproduce.py detection-voc --num-gpus 8           # the same on VOC07 (VOC07 11-point mAP)
  python tools/reproduce.py saliency                             # PoolNet on DUTS-TR, six SOD test sets
  python tools/reproduce.py cam                                  # classifier fine-tuning + CAM localisation
  python tools/reproduce.py detection-voc --quick                # small models, generated data, CPU, minutes
  python tools/reproduce.py saliency --quick SOLVER.MAX_ITER 100 # trailing KEY VALUE go to both runs

A finished run is skipped when the command runs again; --resume continues a started one.
"""
import sys

from res2net_det.engines.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
