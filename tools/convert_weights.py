#!/usr/bin/env python3
"""Converts an ImageNet backbone checkpoint into a detection checkpoint for MODEL.WEIGHTS, or the
authors' released PoolNet into our saliency checkpoint.

    python tools/convert_weights.py res2net50_26w_4s-06e79181.pth pretrained/res2net50_26w_4s.pth
    python tools/convert_weights.py res2net://res2net50_26w_4s pretrained/res2net50_26w_4s.safetensors
    python tools/convert_weights.py torchvision://resnet50 pretrained/resnet50.pth --variant resnet50
    python tools/convert_weights.py res2net_poolnet_final.pth pretrained/poolnet_r2_50_authors.pth

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
"""
import argparse
import sys

from res2net_det.modeling.convert import convert_file
from res2net_det.modeling.res2net import VARIANTS
from res2net_det.modeling.weights import CheckpointError, resolve_weights


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="official Res2Net .pth, timm (.pth / .safetensors) or torchvision state dict, "
                                    "or a weights name / URL (res2net://VARIANT, timm://NAME, torchvision://resnet50)")
    parser.add_argument("dst", help="output for MODEL.WEIGHTS: .pth, or .safetensors (tensors only, no pickle)")
    parser.add_argument("--variant", choices=sorted(VARIANTS),
                        help="fail unless the file is this architecture (checked against the file's shapes)")
    parser.add_argument("--accept-checksum-mismatch", action="store_true",
                        help="keep a downloaded src whose sha256 disagrees with the expected one (a file you trust)")
    args = parser.parse_args(argv)
    try:
        src = resolve_weights(args.src, accept_checksum_mismatch=args.accept_checksum_mismatch)
        report = convert_file(src, args.dst, variant=args.variant)
    except (OSError, CheckpointError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(report.summary())
    print(f"wrote {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
