"""Writes the CAM figure: a PNG grid, rows = images, columns = models x methods, each CAM over
the image with the ground-truth box (green, when annotated) and the CAM's box (red).

Examples:
  python tools/cam_visualize.py --images my_photos/ --models torchvision:resnet50=r50.pth \
      res2net50_26w_4s=res2net50_26w_4s-06e79181.pth --num-classes 1000 --output output/cam.png
  python tools/cam_visualize.py --images val/a.JPEG val/b.JPEG --annotations val_xml/ --classes LOC_synset_mapping.txt ...
  python tools/cam_visualize.py --models output/cam_quickstart/res2net_small.json --image-size 64   # generated data
"""
import argparse
import logging

from res2net_det.data.shapes_wsol import ensure_shapes_wsol
from res2net_det.data.wsol import load_wsol_source, read_class_list, records_for_images
from res2net_det.modeling.cam import CAM_METHODS, parse_model_spec
from res2net_det.evaluation.cam_figure import visualize_cams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", nargs="+", help="image files or folders (default: the data set's first images)")
    parser.add_argument("--annotations", help="folder of <image stem>.xml boxes for --images")
    parser.add_argument("--classes", help="class list (names for captions; needed with --annotations)")
    parser.add_argument("--data-root", help="this project's WSOL layout (default: the generated shapes set)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--num-images", type=int, default=6, help="rows taken from the data set")
    parser.add_argument("--models", nargs="+", default=["torchvision:resnet50", "res2net50_26w_4s"],
                        help="NAME, NAME=WEIGHTS.pth, torchvision:NAME[=WEIGHTS] or a model card .json")
    parser.add_argument("--methods", nargs="+", default=["gradcam", "gradcam++"], help=f"any of {CAM_METHODS}")
    parser.add_argument("--target-layer", help="module the CAM reads (default: last block of layer4)")
    parser.add_argument("--num-classes", type=int, help="outputs of models built by name (default: number of classes)")
    parser.add_argument("--no-align-cams", dest="align_cams", action="store_false",
                        help="keep the library's plain upsampling (the protocol of published WSOL numbers), "
                        "which places maps half a feature stride right of and below the evidence")
    parser.add_argument("--image-size", type=int, nargs="+", default=[224], help="H [W]")
    parser.add_argument("--cam-threshold", type=float, default=0.3, help="threshold of the red CAM box")
    parser.add_argument("--output", default="output/cam_visualize/cams.png")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    class_names = read_class_list(args.classes) if args.classes else None
    if args.images:
        records = records_for_images(args.images, args.annotations, args.classes)
    else:
        root = args.data_root or ensure_shapes_wsol()
        records, class_names = load_wsol_source(root, args.split)
        records = records[: args.num_images]
    num_classes = args.num_classes or (len(class_names) if class_names else 1000)
    models = dict(parse_model_spec(spec, num_classes) for spec in args.models)
    size = tuple(args.image_size) * (2 if len(args.image_size) == 1 else 1)
    layers = {label: args.target_layer for label in models} if args.target_layer else None
    path = visualize_cams(args.output, models, args.methods, records, size, args.cam_threshold, class_names, layers,
                          args.align_cams)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
