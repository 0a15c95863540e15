#!/usr/bin/env python3
"""Check data sets without training: read every annotation, image and mask the way training
would, and print every problem found (with counts), not just the first.

examples:
  python tools/check_data.py --dataset shapes_train shapes_val
  python tools/check_data.py --config-file configs/faster_rcnn_r2_50.yaml       # DATASETS.TRAIN + TEST
  python tools/check_data.py --coco annotations/instances_val.json images/val/
  python tools/check_data.py --saliency DUTS-TE/DUTS-TE-Image DUTS-TE/DUTS-TE-Mask

Exits with status 1 when a problem was found, so scripts can stop before training.
"""
import argparse
import sys

from res2net_det.config import get_cfg, merge_config_file
from res2net_det.data.builtin import register_builtin_datasets, register_datasets_from_cfg
from res2net_det.data.check import check_dataset
from res2net_det.data.coco import register_coco_instances
from res2net_det.data.saliency import register_saliency_folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", nargs="+", default=[], metavar="NAME",
                        help="registered data set names (builtin ones such as coco_2017_val, DUTS-TE, shapes_train)")
    parser.add_argument("--config-file", metavar="FILE",
                        help="check the config's DATASETS.TRAIN and DATASETS.TEST (its own data sets registered too)")
    parser.add_argument("--coco", nargs=2, metavar=("JSON", "IMAGE_ROOT"), action="append", default=[],
                        help="a COCO instances file and its image folder (repeatable)")
    parser.add_argument("--saliency", nargs=2, metavar=("IMAGE_DIR", "MASK_DIR"), action="append", default=[],
                        help="a salient object detection image folder and its mask folder (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="with --config-file: config KEY VALUE pairs")
    args = parser.parse_args()

    register_builtin_datasets()
    names = list(args.dataset)
    if args.config_file:
        cfg = merge_config_file(get_cfg(), args.config_file)
        cfg.merge_from_list(args.opts or [])
        register_datasets_from_cfg(cfg)
        names += [n for n in list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST) if n not in names]
    for i, (json_file, image_root) in enumerate(args.coco):
        names.append(f"_check_coco_{i}")
        register_coco_instances(names[-1], {}, json_file, image_root)
    for i, (image_dir, mask_dir) in enumerate(args.saliency):
        names.append(f"_check_saliency_{i}")
        register_saliency_folder(names[-1], image_dir, mask_dir)
    if not names:
        parser.error("nothing to check: give --dataset, --config-file, --coco or --saliency")

    total = 0
    for name in names:
        report = check_dataset(name, progress=not args.no_progress)
        print(report.summary())
        total += len(report.problems)
    print(f"{total} problem(s) in {len(names)} data set(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
