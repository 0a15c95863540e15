"""ImageNet-1k validation Top-1 / Top-5 of Res2Net variants, measured vs published.

  python tools/eval_imagenet.py --variant res2net50_26w_4s --weights res2net50_26w_4s-06e79181.pth --data /data/imagenet
  python tools/eval_imagenet.py --variant res2net50_14w_8s --variant res2net101_26w_4s --weights ~/ckpts \
      --data /data/imagenet

--data: class folders (DIR or DIR/val holding n01440764/...), or flat images (DIR/ILSVRC2012_img_val,
DIR/ILSVRC/Data/CLS-LOC/val, DIR/val or DIR) with DIR/LOC_val_solution.csv or the devkit's
ILSVRC2012_validation_ground_truth.txt + meta.mat (DIR or DIR/ILSVRC2012_devkit_t12/data; --labels,
--synsets override). Classes are the sorted wnids. --weights: a file per --variant, or one folder
holding the official file names. Preprocessing: short side 256 (PIL bilinear, as the official,
mmcls and timm evaluations), centre crop 224, ImageNet mean/std.
"""
import argparse
import os
import sys
from typing import Callable, List, Optional

import torch
from torch.utils.data import DataLoader

from res2net_det import create_model
from res2net_det.data.imagenet import (
    INTERPOLATIONS,
    ImageNetDataError,
    ImageNetValDataset,
    eval_transform,
    find_imagenet_val,
)
from res2net_det.evaluation.classification import (
    accuracy_row,
    evaluate_topk,
    format_accuracy_table,
    load_evaluation_weights,
)
from res2net_det.modeling import CheckpointError
from res2net_det.modeling.res2net import OFFICIAL_CHECKPOINTS, resolve_name
from res2net_det.utils.io import write_json_file


def weight_files(variants: List[str], weights: List[str]) -> List[str]:
    """One checkpoint per variant: given one by one, or found by official name in one folder."""
    if len(weights) == 1 and os.path.isdir(weights[0]):
        files = []
        for v in variants:
            name = OFFICIAL_CHECKPOINTS.get(resolve_name(v))
            if name is None:
                raise SystemExit(f"{v} has no official checkpoint name: pass its --weights FILE")
            files.append(os.path.join(weights[0], name))
        return files
    if len(weights) != len(variants):
        raise SystemExit(f"give one --weights per --variant ({len(variants)}), or one folder; got {len(weights)}")
    return weights


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", action="append", required=True, help="variant name (repeat for a table)")
    p.add_argument("--weights", action="append", required=True, help="checkpoint file per --variant, or a folder")
    p.add_argument("--data", required=True, help="ImageNet root (see above)")
    p.add_argument("--labels", help="LOC_val_solution.csv or ILSVRC2012_validation_ground_truth.txt")
    p.add_argument("--synsets", help="meta.mat or wnid list (ILSVRC2012_ID order for the ground truth)")
    p.add_argument("--limit", type=int, help="first N images by file name, for a quick look")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--num-workers", type=int, default=4, help="data loader worker processes")
    p.add_argument("--interpolation", default="bilinear", choices=sorted(INTERPOLATIONS),
                   help="resize filter (PIL); bilinear is what the official, mmcls and timm evaluations use")
    p.add_argument("--resize", type=int, default=256, help="short side before the crop")
    p.add_argument("--crop", type=int, default=224, help="centre crop size after the resize")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cuda (default when available) or cpu")
    p.add_argument("--output", help="JSON file: the table and every image's top-5")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None, build_model: Callable = create_model) -> List[dict]:
    args = parse_args(argv)
    files = weight_files(args.variant, args.weights)
    val = find_imagenet_val(args.data, labels=args.labels, synsets=args.synsets)
    dataset = ImageNetValDataset(val, eval_transform(args.resize, args.crop, args.interpolation), args.limit)
    device = torch.device(args.device)
    loader = DataLoader(dataset, batch_size=args.batch_size, num_workers=args.num_workers,
                        pin_memory=device.type == "cuda")
    print(f"{len(dataset)} images, {len(val.classes)} classes ({val.layout}: {val.source})", file=sys.stderr)
    rows, predictions = [], {}
    for variant, path in zip(args.variant, files):
        model = build_model(variant, num_classes=len(val.classes))
        load_evaluation_weights(model, path, len(val.classes), val.source)
        result = evaluate_topk(model, loader, device, desc=variant)
        rows.append(dict(accuracy_row(variant, result, result["num_images"]), weights=path))
        predictions[variant] = [{"file": os.path.basename(dataset.samples[i][0]),
                                 "label": val.classes[dataset.samples[i][1]],
                                 "top5": [val.classes[c] for c in top[:5]]}
                                for i, top in sorted(result["predictions"].items())]
    print(format_accuracy_table(rows))
    if args.output:
        write_json_file(args.output, {"data": {"root": args.data, "layout": val.layout, "labels": val.source,
                                               "num_classes": len(val.classes), "limit": args.limit,
                                               "resize": args.resize, "crop": args.crop,
                                               "interpolation": args.interpolation},
                                      "results": rows, "predictions": predictions}, indent=1)
    return rows


if __name__ == "__main__":
    try:
        main()
    except (ImageNetDataError, CheckpointError, OSError) as e:  # bad input: the message names the file
        raise SystemExit(f"error: {e}")
