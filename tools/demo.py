#!/usr/bin/env python3
"""Draws a trained detector's detections on images and writes PNGs.

  python tools/demo.py --config-file configs/quickstart.yaml --input photo.jpg more/*.jpg \
      --output output/demo MODEL.WEIGHTS output/quickstart/model_final.pth
"""
import argparse

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.data.builtin import register_datasets_from_cfg
from res2net_det.data.image_io import collect_images
from res2net_det.engines.torchvision.predictor import Predictor
from res2net_det.evaluation.coco import write_detection_pictures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE",
                        help="the detector's config (a file or a res2net_det.model_zoo name)")
    parser.add_argument("--input", nargs="+", required=True,
                        help="image files, globs or folders (.jpg/.jpeg/.png/.bmp/.webp/.tif, any case); "
                        "an empty folder is an error")
    parser.add_argument("--output", default="output/demo",
                        help="folder for <image stem>.png; two inputs with one stem are refused, never overwritten")
    parser.add_argument("--confidence-threshold", type=float, default=0.5, help="draw detections scoring at least this")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config KEY VALUE pairs (e.g. MODEL.WEIGHTS path)")
    args = parser.parse_args()

    cfg = get_cfg()
    merge_config_file(cfg, args.config_file)
    merge_config_list(cfg, args.opts)
    cfg.freeze()
    paths = collect_images(args.input, "--input")  # before the model: a bad --input fails fast
    register_datasets_from_cfg(cfg)
    predictor = Predictor(cfg)

    def predict(record, image):
        found = predictor(image)
        kept = int((found["scores"] >= args.confidence_threshold).sum())
        print(f"{record['file_name']}: {kept} detections >= {args.confidence_threshold}")
        return found

    written = write_detection_pictures([{"file_name": p} for p in paths], predict, args.output,
                                       predictor.class_names, args.confidence_threshold)
    print(f"wrote {len(written)} pictures to {args.output}")

if __name__ == "__main__":
    main()
