#!/usr/bin/env python3
"""Exports a Res2Net backbone, a detector or a saliency model, then checks the export: it runs
the exported model on a random input of another size than the export example and prints the
largest difference to the PyTorch model (exit status 1 when over tolerance).

  python tools/export_model.py --variant res2net50_26w_4s --weights res2net50_26w_4s.pth
  python tools/export_model.py --config-file configs/quickstart.yaml \
      --weights output/quickstart/model_final.pth --format onnx,torchscript
  python tools/export_model.py --config-file configs/sod/quickstart.yaml MODEL.WEIGHTS model.pth

Backbone: input ``images`` N x 3 x H x W (normalised), outputs ``res2``..``res5``.
Saliency: input ``images`` N x 3 x H x W (RGB, 0-255), output ``saliency`` N x 1 x H x W in [0, 1].
Detector: input ``image`` 3 x H x W (INPUT.FORMAT order, 0-255), outputs ``boxes`` (XYXY),
``scores``, ``classes``. ONNX needs ``pip install -e '.[export]'``. Formats per model: see
res2net_det/modeling/export.py.
"""
import argparse
import os
import sys

from res2net_det import create_model
from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.engines.export import export_spec_from_config
from res2net_det.model_zoo import resolve_config_file
from res2net_det.modeling.export import FORMATS, MIN_OPSET, backbone_spec, check_export, export, import_onnx


def _formats(text: str) -> list:
    formats = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    return formats


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--variant", help="a backbone by variant name, e.g. res2net50_26w_4s")
    source.add_argument("--config-file", type=resolve_config_file, metavar="FILE",
                        help="a detection or saliency config (file or shipped name)")
    parser.add_argument("--weights", metavar="FILE",
                        help="checkpoint (default for a config: MODEL.WEIGHTS; none: random weights)")
    parser.add_argument("--output", default="output/export", help="folder for the exported files")
    parser.add_argument("--name", help="file name stem (default: the variant or config name)")
    parser.add_argument("--format", default="onnx", type=_formats,
                        help="comma-separated: onnx, torchscript (traced), export (torch.export .pt2)")
    parser.add_argument("--opset", type=int, default=MIN_OPSET, help=f"ONNX opset (>= {MIN_OPSET})")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                        help="export example size (default: 224 x 224; a saliency model 384 x 384, above "
                             "which its torch.export program runs on sides >= 256 px)")
    parser.add_argument("--check-size", type=int, nargs=2, metavar=("H", "W"),
                        help="size of the check input (default: H - 32, W + 64)")
    parser.add_argument("--check-batch", type=int, default=3, help="batch of the check input (not detectors)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config KEY VALUE pairs (with --config-file)")
    args = parser.parse_args(argv)
    if args.opset < MIN_OPSET:
        parser.error(f"--opset must be >= {MIN_OPSET}")
    if args.opts and not args.config_file:
        parser.error(f"config options {args.opts} need --config-file")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if "onnx" in args.format:
        try:
            import_onnx()
        except ImportError as e:
            sys.exit(str(e))
    if args.variant:
        backbone = create_model(args.variant, weights=args.weights, num_classes=0).eval()
        spec = backbone_spec(backbone, args.size) if args.size else backbone_spec(backbone)
        name = args.name or args.variant
    else:
        cfg = merge_config_list(merge_config_file(get_cfg(), args.config_file), args.opts)
        spec = export_spec_from_config(cfg, args.weights, args.size)
        name = args.name or os.path.splitext(os.path.basename(args.config_file))[0]
    os.makedirs(args.output, exist_ok=True)
    height, width = spec.example[0].shape[-2:]
    check_size = args.check_size or (height - 32, width + 64)
    failed = 0
    for fmt in args.format:
        try:
            path = export(spec, os.path.join(args.output, name), fmt, args.opset)
        except Exception as e:  # one format failing (torch.export of a detector) leaves the others
            print(f"{fmt}: export failed: {type(e).__name__}: {e}")
            failed += 1
            continue
        report = check_export(spec, fmt, path, args.check_batch, check_size)
        print(report.summary())
        failed += not report.passed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
