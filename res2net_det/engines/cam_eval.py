"""Compares models x CAM methods on a WSOL data set: prints one table and saves JSON.

Run as tools/cam_eval.py, or as python -m res2net_det.engines.cam_eval (how tools/reproduce.py runs it).

Examples:
  # ResNet-50 vs Res2Net-50 with Grad-CAM and Grad-CAM++ on the embedded default data
  python tools/cam_eval.py --models torchvision:resnet50=r50.pth res2net50_26w_4s=res2net50_26w_4s-06e79181.pth
  # the authors' metadata (clovaai/wsolevaluation): CUB / ILSVRC boxes, OpenImages masks
  python tools/cam_eval.py --wsol-metadata wsolevaluation/metadata/CUB --split test --data-root dataset/CUB \
      --models ... --methods gradcam
  # the classifier `tools/train_net.py --config-file configs/cam/quickstart.yaml` trained (its
  # OUTPUT_DIR/model_final.pth), on its test set at its input size; KEY VALUE options at the end
  python tools/cam_eval.py --config-file configs/cam/quickstart.yaml --align-cams --faithfulness-images 16
  # ImageNet validation (ILSVRC XML boxes)
  python tools/cam_eval.py --images ILSVRC/Data/CLS-LOC/val --annotations ILSVRC/Annotations/CLS-LOC/val \
      --classes LOC_synset_mapping.txt --models ... --methods gradcam gradcam++ scorecam
  # a JSON model card ({"name", "weights", "num_classes", "kwargs", "label"}) at 64 px
  python tools/cam_eval.py --models my_model_card.json --image-size 64
"""
from __future__ import annotations

import argparse
import logging
from typing import Optional, Sequence

import torch

from ..data.shapes_wsol import ensure_shapes_wsol
from ..data.wsol import load_wsol_source
from ..data.wsol_metadata import load_wsol_metadata
from ..evaluation.cam_comparison import (
    evaluate_cam_methods,
    evaluate_scoremaps,
    format_table,
    write_cam_results,
)
from ..evaluation.per_image import per_image_path
from ..evaluation.wsol_scoremaps import PROTOCOLS
from ..modeling.cam import CAM_METHODS, parse_model_spec
from .trained_classifier import trained_classifier_of_config

# It stands with the jobs that read a config (engines/, above config/): --config-file evaluates the
# classifier a training run of that config wrote (trained_classifier.trained_classifier_of_config).

__all__ = ["main"]


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data (default: the generated shapes set)")
    data.add_argument("--data-root", help="this project's layout: ROOT/classes.txt, ROOT/SPLIT/{images,annotations}; "
                      "with --wsol-metadata, the folder the image ids are relative to")
    data.add_argument("--split", default="val", help="split of the data set (train/val/test)")
    data.add_argument("--wsol-metadata", help="the authors' metadata: metadata/<CUB|ILSVRC|OpenImages>[/<split>] "
                      "(image_ids.txt, class_labels.txt, image_sizes.txt, localization.txt)")
    data.add_argument("--mask-root", help="folder the OpenImages mask paths are relative to (default: --data-root)")
    data.add_argument("--images", help="ILSVRC-style image folder")
    data.add_argument("--annotations", help="folder of <image stem>.xml (ILSVRC / PASCAL VOC format)")
    data.add_argument("--classes", help="class list, one 'name [description]' a line (LOC_synset_mapping.txt)")
    data.add_argument("--cub-root", help="CUB-200-2011 root (split train/test)")


def load_data(args: argparse.Namespace, trained):
    if trained is not None and not (args.data_root or args.images or args.cub_root or args.wsol_metadata):
        return trained.records, trained.class_names
    if args.wsol_metadata is not None:
        if args.data_root is None:
            raise SystemExit("--wsol-metadata needs --data-root, the folder its image ids are relative to")
        return load_wsol_metadata(args.wsol_metadata, args.data_root, args.split, args.mask_root)
    data_root = args.data_root
    if data_root is None and args.images is None and args.cub_root is None:
        data_root = ensure_shapes_wsol()
    return load_wsol_source(data_root, args.split, args.images, args.annotations, args.classes, args.cub_root)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", help="NAME, NAME=WEIGHTS.pth, torchvision:NAME[=WEIGHTS] or a model "
                        "card .json (default: torchvision:resnet50 res2net50_26w_4s; none with --config-file)")
    parser.add_argument("--methods", nargs="+", default=["gradcam", "gradcam++"], help=f"any of {CAM_METHODS}")
    parser.add_argument("--target-layer", action="append", default=[], metavar="[MODEL=]MODULE",
                        help="module the CAM reads (default: last block of layer4); MODEL= picks one model")
    parser.add_argument("--num-classes", type=int, help="classifier outputs of models built by name "
                        "(default: the data set's number of classes)")
    parser.add_argument("--scoremaps", metavar="DIR", help="evaluate saved score maps <DIR>/<image id>.npy "
                        "(e.g. the authors' scoremaps/ folder) instead of models")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="wsol",
                        help="wsol: the published protocol (clovaai/wsolevaluation); continuous: our earlier "
                        "definitions, not comparable with published numbers")
    parser.add_argument("--cam-curve-interval", type=float, default=0.01,
                        help="CAM threshold step: np.arange(0, 1, STEP) (the paper's tables: 0.01)")
    parser.add_argument("--align-cams", action="store_true",
                        help="also print, as separate rows labelled (aligned), maps shifted half a feature "
                        "stride onto the evidence (not part of either protocol)")
    parser.add_argument("--image-size", type=int, nargs="+", help="H [W] (default: 224, or the config's)")
    parser.add_argument("--max-images", type=int, help="evaluate the first N images only")
    parser.add_argument("--batch-size", type=int, default=16, help="images per CAM batch")
    parser.add_argument("--loc-cam-threshold", type=float,
                        help="CAM threshold of GT-known / Top-1 Loc (default: the best one)")
    parser.add_argument("--faithfulness-images", type=int, default=32, help="deletion/insertion/ROAD images (0: off)")
    parser.add_argument("--faithfulness-steps", type=int, default=16,
                        help="pixel-removal steps of the deletion / insertion curves")
    parser.add_argument("--no-road", action="store_true", help="skip the ROAD metric")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--output", default="output/cam_eval/results.json",
                        help="JSON file of the table's rows and the settings")
    add_data_arguments(parser)
    trained_args = parser.add_argument_group("a classifier trained by tools/train_net.py (data and size: the config's)")
    trained_args.add_argument("--config-file", metavar="FILE", help="its config")
    trained_args.add_argument("--weights", help="its checkpoint (default: the config's OUTPUT_DIR/model_final.pth)")
    trained_args.add_argument("opts", nargs=argparse.REMAINDER, help="config KEY VALUE pairs, after all flags")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)

    trained = trained_classifier_of_config(args.config_file, args.opts, args.weights) if args.config_file else None
    records, class_names = load_data(args, trained)
    if args.max_images:
        records = records[: args.max_images]
    image_size = args.image_size or (list(trained.image_size) if trained else [224])
    size = tuple(image_size) * (2 if len(image_size) == 1 else 1)
    common = dict(loc_cam_threshold=args.loc_cam_threshold, protocol=args.protocol,
                  cam_curve_interval=args.cam_curve_interval)
    per_image = {}
    if args.scoremaps:
        result = evaluate_scoremaps(args.scoremaps, records, size, per_image=per_image, **common)
        finish(result, args.output, per_image)
        return
    num_classes = args.num_classes or len(class_names)
    specs = (args.models if args.models is not None
             else ([] if trained else ["torchvision:resnet50", "res2net50_26w_4s"]))
    models = dict(parse_model_spec(spec, num_classes) for spec in specs)
    if trained is not None:
        models[trained.label] = trained.net
    target_layers = {}
    for item in args.target_layer:
        model_label, _, layer = item.rpartition("=")
        for label in ([model_label] if model_label else list(models)):
            target_layers[label] = layer
    result = evaluate_cam_methods(
        models, args.methods, records, size, args.batch_size, target_layers,
        faithfulness_images=args.faithfulness_images, faithfulness_steps=args.faithfulness_steps,
        road=not args.no_road, align_to_input=args.align_cams, per_image=per_image, **common,
    )
    result["settings"].update(model_specs=specs, config_file=args.config_file, num_classes=num_classes)
    finish(result, args.output, per_image)


def finish(result: dict, output: str, per_image: dict) -> None:
    print(format_table(result["rows"]))
    write_cam_results(result, output, per_image)
    print(f"saved {output} (per-image data: {per_image_path(output)})")


if __name__ == "__main__":
    main()
