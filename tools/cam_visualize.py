"""Writes the CAM figure: a PNG grid, rows = images, columns = models x methods, each CAM over
the image with the ground-truth box (green, when annotated) and the CAM's box (red).

Examples:
  python tools/cam_visualize.py --images my_photos/ --models torchvision:resnet50=r50.pth \
      res2net50_26w_4s=res2net50_26w_4s-06e79181.pth --num-classes 1000 --output output/cam.png
  python tools/cam_visualize.py --images val/a.JPEG val/b.JPEG --annotations val_xml/ \
      --classes LOC_synset_mapping.txt ...
  # the classifier `tools/train_net.py --config-file configs/cam/quickstart.yaml` trained, on its test set
  python tools/cam_visualize.py --config-file configs/cam/quickstart.yaml --num-images 8
"""
import argparse
import logging

from res2net_det.data.shapes_wsol import ensure_shapes_wsol
from res2net_det.data.wsol import load_wsol_source, read_class_list, records_for_images
from res2net_det.engines.trained_classifier import trained_classifier_of_config
from res2net_det.evaluation.cam_figure import visualize_cams
from res2net_det.modeling.cam import CAM_METHODS, parse_model_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", nargs="+", help="image files or folders (default: the data set's first images)")
    parser.add_argument("--annotations", help="folder of <image stem>.xml boxes for --images")
    parser.add_argument("--classes", help="class list (names for captions; needed with --annotations)")
    parser.add_argument("--data-root", help="this project's WSOL layout (default: the generated shapes set)")
    parser.add_argument("--split", default="val",
                        help="split of the data set (this project's layout or --wsol-metadata)")
    parser.add_argument("--num-images", type=int, default=6, help="rows taken from the data set")
    parser.add_argument("--models", nargs="+", help="NAME, NAME=WEIGHTS.pth, torchvision:NAME[=WEIGHTS] or a model "
                        "card .json (default: torchvision:resnet50 res2net50_26w_4s; none with --config-file)")
    parser.add_argument("--methods", nargs="+", default=["gradcam", "gradcam++"], help=f"any of {CAM_METHODS}")
    parser.add_argument("--target-layer", help="module the CAM reads (default: last block of layer4)")
    parser.add_argument("--num-classes", type=int, help="outputs of models built by name (default: number of classes)")
    parser.add_argument("--no-align-cams", dest="align_cams", action="store_false",
                        help="keep the library's plain upsampling (the protocol of published WSOL numbers), "
                        "which places maps half a feature stride right of and below the evidence")
    parser.add_argument("--image-size", type=int, nargs="+", help="H [W] (default: 224, or the config's)")
    parser.add_argument("--cam-threshold", type=float, default=0.3, help="threshold of the red CAM box")
    parser.add_argument("--output", default="output/cam_visualize/cams.png", help="PNG file of the figure")
    trained_args = parser.add_argument_group("a classifier trained by tools/train_net.py (data and size: the config's)")
    trained_args.add_argument("--config-file", metavar="FILE", help="its config")
    trained_args.add_argument("--weights", help="its checkpoint (default: the config's OUTPUT_DIR/model_final.pth)")
    trained_args.add_argument("opts", nargs=argparse.REMAINDER, help="config KEY VALUE pairs, after all flags")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    trained = trained_classifier_of_config(args.config_file, args.opts, args.weights) if args.config_file else None
    class_names = read_class_list(args.classes) if args.classes else None
    if args.images:
        records = records_for_images(args.images, args.annotations, args.classes)
    elif trained is not None and not args.data_root:
        records, class_names = trained.records[: args.num_images], trained.class_names
    else:
        root = args.data_root or ensure_shapes_wsol()
        records, class_names = load_wsol_source(root, args.split)
        records = records[: args.num_images]
    num_classes = args.num_classes or (len(class_names) if class_names else 1000)
    specs = (args.models if args.models is not None
             else ([] if trained else ["torchvision:resnet50", "res2net50_26w_4s"]))
    models = dict(parse_model_spec(spec, num_classes) for spec in specs)
    if trained is not None:
        models[trained.label] = trained.net
    image_size = args.image_size or (list(trained.image_size) if trained else [224])
    size = tuple(image_size) * (2 if len(image_size) == 1 else 1)
    layers = {label: args.target_layer for label in models} if args.target_layer else None
    path = visualize_cams(args.output, models, args.methods, records, size, args.cam_threshold, class_names, layers,
                          args.align_cams)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
