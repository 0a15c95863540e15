"""Writes one 8-bit PNG saliency map per image, at the image's original size.

    python tools/predict_saliency.py --config-file configs/sod/poolnet_r2_50_duts.yaml \
        --weights output/sod/poolnet_r2_50_duts/model_final.pth \
        --input datasets/ECSSD/Image --output predictions/r2_50/ECSSD
"""
import argparse
import logging
import sys

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.config.saliency import build_saliency_model
from res2net_det.data.saliency import SaliencyDatasetMapper
from res2net_det.evaluation.saliency_inference import collect_images, load_inference_weights, predict_images
from res2net_det.utils.device import resolve_device


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE",
                        help="the saliency config the weights were trained with")
    parser.add_argument("--weights", required=True, metavar="FILE",
                        help="a checkpoint of that config (model_final.pth)")
    parser.add_argument("--input", required=True, nargs="+", metavar="DIR_OR_IMAGE",
                        help="image folders and/or image files")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for <image stem>.png maps")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config KEY VALUE pairs, e.g. MODEL.DEVICE cpu")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    cfg = get_cfg()
    merge_config_file(cfg, args.config_file)
    merge_config_list(cfg, args.opts)
    images = collect_images(args.input)
    model = build_saliency_model(cfg)
    load_inference_weights(model, args.weights)
    model.to(resolve_device(cfg.MODEL.DEVICE))
    mapper = SaliencyDatasetMapper.from_config(cfg, is_train=False)
    written = predict_images(model, images, args.output, mapper, progress=not args.no_progress)
    print(f"wrote {len(written)} saliency maps to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
