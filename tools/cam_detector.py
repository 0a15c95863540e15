#!/usr/bin/env python3
"""Class activation maps of trained Faster R-CNNs (torchvision engine), per FPN level and combined,
scored on the test set's ground-truth boxes; ResNet and Res2Net side by side with two configs.

  python tools/cam_detector.py --config-file configs/quickstart.yaml --output output/cam_detector \
      --num-images 8 MODEL.WEIGHTS output/quickstart/model_final.pth
  # two finished runs (the first is the Δ reference): their saved config.yaml, the model_final.pth beside it
  python tools/cam_detector.py --config-file output/reproduce/detection-coco-quick/resnet-24w1s/config.yaml \
      output/reproduce/detection-coco-quick/res2net-8w4s/config.yaml --output output/cam_detector

Writes OUTPUT/cam_detector.json (per-image and mean scores in %, each Δ with its paired bootstrap
95% interval) and OUTPUT/cams_<method>.png (rows = images, columns = model x level). Trailing
KEY VALUE pairs go to every config; --weights (one per config) override MODEL.WEIGHTS, which for
a run's saved config.yaml defaults to the model_final.pth beside it.
"""
import argparse
import os
import sys

import torch

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.data.builtin import register_datasets_from_cfg
from res2net_det.data.catalog import DatasetCatalog
from res2net_det.engines.torchvision.predictor import Predictor
from res2net_det.evaluation.bootstrap import DEFAULT_RESAMPLES
from res2net_det.evaluation.detector_cam import (
    evaluate_detector_cams,
    format_detector_cam_table,
    save_detector_cam_figures,
)
from res2net_det.utils.io import write_json_file


def _name(config: str) -> str:
    """A config's name; a run's saved ``config.yaml`` is named after its run folder."""
    stem = os.path.splitext(os.path.basename(config))[0]
    return os.path.basename(os.path.dirname(os.path.abspath(config))) if stem == "config" else stem


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", nargs="+", required=True, metavar="FILE", help="one config per detector")
    parser.add_argument("--weights", nargs="+",
                        help="a checkpoint per config (default: each config's MODEL.WEIGHTS, or the "
                        "model_final.pth beside a run's config.yaml)")
    parser.add_argument("--labels", nargs="+", help="a name per detector (default: the config names)")
    parser.add_argument("--output", default="output/cam_detector", help="folder of the JSON and the figures")
    parser.add_argument("--num-images", type=int, default=8, help="first N images of the first config's test set")
    parser.add_argument("--figure-images", type=int, default=None, help="rows of the figures (default: all, at most 8)")
    parser.add_argument("--methods", nargs="+", default=["eigencam", "gradcam"],
                        help="grad-cam methods: eigencam (features only) and gradient ones on the box scores")
    parser.add_argument("--score-threshold", type=float, default=0.5,
                        help="detections a gradient method explains (the top one when none reaches it)")
    parser.add_argument("--no-align", action="store_true", help="keep the library's half-stride offset of each level")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_RESAMPLES,
                        help="resamples of the Δ intervals (0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config KEY VALUE pairs for every config")
    args = parser.parse_args(argv)
    for flag, values in (("--weights", args.weights), ("--labels", args.labels)):
        if values is not None and len(values) != len(args.config_file):
            parser.error(f"{flag}: {len(values)} given for {len(args.config_file)} configs")
    labels = args.labels or [_name(c) for c in args.config_file]
    if len(set(labels)) != len(labels):
        labels = [f"{label}-{i}" for i, label in enumerate(labels)]

    detectors, records = {}, None
    for i, (config, label) in enumerate(zip(args.config_file, labels)):
        cfg = merge_config_list(merge_config_file(get_cfg(), config), args.opts)
        if args.weights:
            cfg.MODEL.WEIGHTS = args.weights[i]
        elif not cfg.MODEL.WEIGHTS and os.path.isfile(os.path.join(os.path.dirname(config), "model_final.pth")):
            cfg.MODEL.WEIGHTS = os.path.join(os.path.dirname(config), "model_final.pth")  # a run's config.yaml
        if not cfg.MODEL.WEIGHTS or not os.path.isfile(cfg.MODEL.WEIGHTS):
            print(f"cam_detector: {config}: MODEL.WEIGHTS {cfg.MODEL.WEIGHTS!r} is not a checkpoint file",
                  file=sys.stderr)
            return 2
        register_datasets_from_cfg(cfg)
        if cfg.NUM_THREADS:
            torch.set_num_threads(cfg.NUM_THREADS)
        predictor = Predictor(cfg)
        detectors[label] = predictor.for_cam()
        if records is None:
            if not cfg.DATASETS.TEST:
                print(f"cam_detector: {config}: DATASETS.TEST is empty (the images and boxes to score)",
                      file=sys.stderr)
                return 2
            records = DatasetCatalog.get(cfg.DATASETS.TEST[0])[: args.num_images]
    result, maps = evaluate_detector_cams(
        detectors, records, args.methods, args.score_threshold, not args.no_align, args.bootstrap, args.seed,
        keep_maps=min(len(records), args.figure_images or 8))
    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, "cam_detector.json")
    write_json_file(path, result, indent=1)
    figures = save_detector_cam_figures(args.output, result, maps)
    print(format_detector_cam_table(result))
    print(f"json: {path}  figures: {' '.join(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
