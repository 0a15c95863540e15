#!/usr/bin/env python3
"""Converts an ImageNet backbone checkpoint into a detection checkpoint for MODEL.WEIGHTS, the authors'
released PoolNet into our saliency checkpoint, or a detector checkpoint from one engine's layout to the other's.

    python tools/convert_weights.py res2net50_26w_4s-06e79181.pth pretrained/res2net50_26w_4s.pth
    python tools/convert_weights.py res2net://res2net50_26w_4s pretrained/res2net50_26w_4s.safetensors
    python tools/convert_weights.py torchvision://resnet50 pretrained/resnet50.pth --variant resnet50
    python tools/convert_weights.py res2net_poolnet_final.pth pretrained/poolnet_r2_50_authors.pth
    python tools/convert_weights.py output/d2/model_final.pth tv_model.pth --to torchvision \\
        --config-file configs/retinanet_r2_50.yaml

Accepts official Res2Net-PretrainedModels files, timm state dicts (.pth or .safetensors) and
torchvision/timm ResNet-50, as files or by name (res2net://VARIANT, timm://NAME, torchvision://resnet50,
http(s):// URLs: fetched once into the cache and checked; tools/download_weights.py --list). Both
engines also read those names directly in MODEL.WEIGHTS, converting on the fly; this tool writes the
same result to a file. The output holds backbone.bottom_up.<key> tensors, which both engines load
with no missing backbone key (a .safetensors output holds them with no pickle); what is not converted
is printed with the reason.
The authors' PoolNet files (Res2Net-PoolNet, PoolNet's ResNet-50: base.resnet.*, base.ppms_pre ...)
are recognised by their keys and written in our PoolNetSaliency layout (the layout is printed);
the torchvision engine and predict_saliency.py also read them as they are, Detectron2 needs this file.

--to detectron2 / --to torchvision: a Faster R-CNN, Mask R-CNN or RetinaNet checkpoint of the other
engine, every tensor mapped (FPN, RPN, box and mask heads, class order, RetinaNet heads). Both
engines also convert such a file by themselves when it is MODEL.WEIGHTS; this writes it once.
When a level has several anchor sizes and several aspect ratios (the engines order them
differently), give the model's --config-file or --anchors SIZES RATIOS.
"""
import argparse
import sys

from res2net_det.config import get_cfg, merge_config_file
from res2net_det.config.detection import anchor_layout_from_cfg
from res2net_det.modeling.anchor_layout import AnchorLayout
from res2net_det.modeling.convert import convert_detector_file, convert_file
from res2net_det.modeling.detector_keys import LAYOUT_NAMES
from res2net_det.modeling.res2net import VARIANTS
from res2net_det.modeling.weights import CheckpointError, resolve_weights


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="official Res2Net .pth, timm (.pth / .safetensors) or torchvision state dict, "
                                    "or a weights name / URL (res2net://VARIANT, timm://NAME, torchvision://resnet50); "
                                    "with --to, a detector checkpoint")
    parser.add_argument("dst", help="output for MODEL.WEIGHTS: .pth, or .safetensors (tensors only, no pickle)")
    parser.add_argument("--variant", choices=sorted(VARIANTS),
                        help="fail unless the file is this architecture (checked against the file's shapes)")
    parser.add_argument("--accept-checksum-mismatch", action="store_true",
                        help="keep a downloaded src whose sha256 disagrees with the expected one (a file you trust)")
    parser.add_argument("--to", choices=sorted(LAYOUT_NAMES),
                        help="convert a detector checkpoint into this engine's layout")
    parser.add_argument("--config-file", metavar="FILE",
                        help="with --to: the detector's config, for its anchors (MODEL.ANCHOR_GENERATOR)")
    parser.add_argument("--anchors", type=int, nargs=2, metavar=("SIZES", "RATIOS"),
                        help="with --to: anchor sizes and aspect ratios per location (instead of --config-file)")
    args = parser.parse_args(argv)
    if (args.config_file or args.anchors) and not args.to:
        parser.error("--config-file and --anchors go with --to")
    if args.to and args.variant:
        parser.error("--variant checks backbone files; it does not go with --to")
    try:
        src = resolve_weights(args.src, accept_checksum_mismatch=args.accept_checksum_mismatch)
        if args.to:
            anchors = AnchorLayout(*args.anchors) if args.anchors else None
            if args.config_file:
                anchors = anchor_layout_from_cfg(merge_config_file(get_cfg(), args.config_file))
            report = convert_detector_file(src, args.dst, args.to, anchors)
        else:
            report = convert_file(src, args.dst, variant=args.variant)
    except (OSError, CheckpointError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(report.summary())
    print(f"wrote {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
