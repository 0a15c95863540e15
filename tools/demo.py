#!/usr/bin/env python3
"""Draws a trained detector's detections on images and writes PNGs.

  python tools/demo.py --config-file configs/quickstart.yaml --input photo.jpg more/*.jpg \
      --output output/demo MODEL.WEIGHTS output/quickstart/model_final.pth
"""
import argparse
import glob
import os

import cv2

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.data.builtin import register_datasets_from_cfg
from res2net_det.data.mapper import read_image
from res2net_det.engines.torchvision.predictor import Predictor
from res2net_det.utils.visualization import draw_detections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--input", nargs="+", required=True, help="image files, globs or folders")
    parser.add_argument("--output", default="output/demo", help="folder for the PNGs")
    parser.add_argument("--confidence-threshold", type=float, default=0.5)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config KEY VALUE pairs (e.g. MODEL.WEIGHTS path)")
    args = parser.parse_args()

    cfg = get_cfg()
    merge_config_file(cfg, args.config_file)
    merge_config_list(cfg, args.opts)
    cfg.freeze()
    register_datasets_from_cfg(cfg)
    predictor = Predictor(cfg)

    paths = []
    for item in args.input:
        if os.path.isdir(item):
            paths += sorted(glob.glob(os.path.join(item, "*.jpg")) + glob.glob(os.path.join(item, "*.png")))
        else:
            matched = sorted(glob.glob(item))
            if not matched:
                raise SystemExit(f"--input {item}: no such file")
            paths += matched
    os.makedirs(args.output, exist_ok=True)
    for path in paths:
        image = read_image(path, "RGB")
        inst = predictor(image)
        drawn = draw_detections(
            image, inst["pred_boxes"].cpu().numpy(), inst["scores"].cpu().numpy(),
            inst["pred_classes"].cpu().numpy(), predictor.class_names, args.confidence_threshold,
            masks=inst["pred_masks"].cpu().numpy() if "pred_masks" in inst else None,
        )
        out = os.path.join(args.output, os.path.splitext(os.path.basename(path))[0] + ".png")
        cv2.imwrite(out, cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        kept = int((inst["scores"] >= args.confidence_threshold).sum())
        print(f"{path}: {kept} detections >= {args.confidence_threshold} -> {out}")


if __name__ == "__main__":
    main()
