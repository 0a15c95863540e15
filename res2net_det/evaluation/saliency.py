"""Salient object detection metrics with ``pysodmetrics`` (``import py_sod_metrics``).

One accumulator (:class:`SaliencyMetrics`) serves the folder evaluation of
``tools/eval_saliency.py`` and the training-time :class:`SaliencyEvaluator` (Detectron2's
``DatasetEvaluator`` protocol), so both report the same numbers: predictions are quantised to
8 bits the way a saved PNG is, and masks are read by :func:`res2net_det.data.saliency.read_mask`.

Metrics (the SOD papers' conventions, all computed by pysodmetrics): MAE; max / mean /
adaptive F-measure with beta^2 = 0.3 over 256 thresholds of the data-set-mean curve; S-measure
(alpha 0.5); max / mean / adaptive E-measure; weighted F-measure.
"""
from __future__ import annotations

import logging
import os
import warnings
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..data.builtin import register_datasets_from_cfg
from ..data.image_io import files_by_stem, open_image, output_names, read_image
from ..data.saliency import (
    DEFAULT_MASK_TOLERANCE,
    MASK_EXTENSIONS,
    SaliencyDatasetMapper,
    get_saliency_dicts,
    read_mask,
)
from ..utils.io import write_json_file
from ..utils.visualization import save_image, side_by_side
from .per_image import image_key, per_image_path, save_per_image

logger = logging.getLogger(__name__)

__all__ = [
    "visualize_saliency",
    "METRIC_NAMES",
    "SaliencyEvaluator",
    "SaliencyMetrics",
    "evaluate_folder",
    "draw_saliency_predictions",
    "evaluate_methods",
    "format_table",
    "plot_curves",
    "read_prediction",
    "to_uint8",
    "write_results",
]

# Column order of the tables, as SOD papers print them.
METRIC_NAMES = ("MAE", "maxF", "meanF", "adpF", "Sm", "maxE", "meanE", "adpE", "wF")
PREDICTION_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
# F-measure's beta^2. pysodmetrics' Fmeasure(beta=...) argument already is beta^2.
BETA_SQUARED = 0.3


def to_uint8(saliency) -> np.ndarray:
    """A saliency map in [0, 1] (tensor or array) as the 8-bit array a PNG file would hold."""
    if hasattr(saliency, "detach"):
        saliency = saliency.detach().float().cpu().numpy()
    arr = np.asarray(saliency, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"a saliency map must be H x W, got shape {arr.shape}")
    return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)


def read_prediction(path: str) -> np.ndarray:
    """Reads a predicted saliency map as an ``H x W`` uint8 array (8-bit grayscale or equal-channel RGB)."""
    with open_image(path, decode=True) as img:  # errors name the file (missing, truncated)
        mode = img.mode
        if mode == "L":
            return np.asarray(img, dtype=np.uint8).copy()
        if mode in ("RGB", "RGBA"):
            rgb = np.asarray(img.convert("RGB"))
            if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()):
                raise ValueError(f"{path}: colour prediction; expected an 8-bit grayscale saliency map")
            return rgb[..., 0].copy()
        raise ValueError(f"{path}: unsupported prediction mode {mode!r}; expected an 8-bit grayscale PNG")


class SaliencyMetrics:
    """Accumulates the pysodmetrics measures over images.

    ``update(pred, gt)`` takes uint8 ``H x W`` arrays (gt 0/255); ``summary()`` gives the
    :data:`METRIC_NAMES` scalars and ``curves()`` the data-set-mean precision, recall and
    F-measure per threshold 0..255.
    """

    def __init__(self) -> None:
        import py_sod_metrics as sod

        with warnings.catch_warnings():
            # Fmeasure is marked for removal in favour of FmeasureV2; it is kept because its
            # curve and adaptive threshold are the ones the published tables used.
            warnings.simplefilter("ignore")
            self._fm = sod.Fmeasure(beta=BETA_SQUARED)
        self._mae = sod.MAE()
        self._sm = sod.Smeasure()
        self._em = sod.Emeasure()
        self._wfm = sod.WeightedFmeasure()
        self.num_images = 0
        self.names: List[str] = []

    def _measures(self):
        return (self._fm, self._mae, self._sm, self._em, self._wfm)

    def update(self, pred: np.ndarray, gt: np.ndarray, name: str = "") -> None:
        """Adds one image; ``name`` appears in errors."""
        if pred.dtype != np.uint8 or gt.dtype != np.uint8:
            raise TypeError(f"{name}: pred and gt must be uint8 arrays, got {pred.dtype} and {gt.dtype}")
        if pred.shape != gt.shape:
            raise ValueError(
                f"{name}: prediction is {pred.shape[1]}x{pred.shape[0]} "
                f"but the mask is {gt.shape[1]}x{gt.shape[0]} (W x H)"
            )
        for m in self._measures():
            m.step(pred=pred, gt=gt)
        self.num_images += 1
        self.names.append(image_key(name) if name else str(len(self.names)))

    def merge(self, other: "SaliencyMetrics") -> None:
        """Adds another accumulator's images (distributed evaluation). pysodmetrics keeps
        per-image lists, so merging is list concatenation of each measure's lists."""
        for mine, theirs in zip(self._measures(), other._measures()):
            for key, value in vars(theirs).items():
                if isinstance(value, list):
                    getattr(mine, key).extend(value)
        self.num_images += other.num_images
        self.names += other.names

    def per_image(self) -> Dict[str, np.ndarray]:
        """Each image's values behind :meth:`summary` (pysodmetrics' own per-image lists): MAE,
        S-measure, weighted F, adaptive F / E and the 256-threshold F and E curves (float32),
        whose image means are the data set's curves; ``image_ids`` are the file stems."""
        return {
            "image_ids": np.asarray(self.names, dtype=str),
            "mae": np.asarray(self._mae.maes, np.float64),
            "sm": np.asarray(self._sm.sms, np.float64),
            "wfm": np.asarray(self._wfm.weighted_fms, np.float64),
            "adp_fm": np.asarray(self._fm.adaptive_fms, np.float64),
            "adp_em": np.asarray(self._em.adaptive_ems, np.float64),
            "fm_curve": np.asarray(self._fm.changeable_fms, np.float32).reshape(self.num_images, -1),
            "em_curve": np.asarray(self._em.changeable_ems, np.float32).reshape(self.num_images, -1),
        }

    def summary(self) -> Dict[str, float]:
        if self.num_images == 0:
            raise ValueError("no image was evaluated")
        fm = self._fm.get_results()["fm"]
        em = self._em.get_results()["em"]
        return OrderedDict(
            MAE=float(self._mae.get_results()["mae"]),
            maxF=float(fm["curve"].max()),
            meanF=float(fm["curve"].mean()),
            adpF=float(fm["adp"]),
            Sm=float(self._sm.get_results()["sm"]),
            maxE=float(em["curve"].max()),
            meanE=float(em["curve"].mean()),
            adpE=float(em["adp"]),
            wF=float(self._wfm.get_results()["wfm"]),
        )

    def curves(self) -> Dict[str, List[float]]:
        """Precision, recall and F-measure at thresholds 0, 1, ..., 255 (ascending)."""
        res = self._fm.get_results()
        # pysodmetrics orders its curves from threshold 255 down to 0.
        return {
            "threshold": list(range(256)),
            "precision": res["pr"]["p"][::-1].tolist(),
            "recall": res["pr"]["r"][::-1].tolist(),
            "fmeasure": res["fm"]["curve"][::-1].tolist(),
        }


def evaluate_folder(
    pred_dir: str,
    gt_dir: str,
    mask_tolerance: float = DEFAULT_MASK_TOLERANCE,
    progress: bool = False,
) -> SaliencyMetrics:
    """Evaluates every mask in ``gt_dir`` against the same-stem map in ``pred_dir``.

    Raises ``FileNotFoundError`` listing the masks that have no prediction (a missing file
    would silently change every number); predictions without a mask are logged and ignored.
    """
    masks = files_by_stem(gt_dir, MASK_EXTENSIONS, "mask")
    preds = files_by_stem(pred_dir, PREDICTION_EXTENSIONS, "prediction")
    missing = sorted(set(masks) - set(preds))
    if missing:
        shown = ", ".join(os.path.basename(masks[s]) for s in missing[:20])
        more = f" ... and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise FileNotFoundError(
            f"{pred_dir} misses predictions for {len(missing)} of {len(masks)} masks in {gt_dir}: {shown}{more}"
        )
    extra = sorted(set(preds) - set(masks))
    if extra:
        logger.warning("%s: %d prediction(s) without a mask in %s ignored, e.g. %s",
                       pred_dir, len(extra), gt_dir, os.path.basename(preds[extra[0]]))
    metrics = SaliencyMetrics()
    stems = sorted(masks)
    if progress:
        from tqdm import tqdm

        stems = tqdm(stems, desc=os.path.basename(os.path.normpath(pred_dir)), unit="img")
    for stem in stems:
        metrics.update(read_prediction(preds[stem]), read_mask(masks[stem], mask_tolerance), name=preds[stem])
    return metrics


# ---------------------------------------------------------------------------- reporting
Results = Mapping[str, Mapping[str, SaliencyMetrics]]  # method -> data set -> metrics


def format_table(results: Results) -> str:
    """A text table: one row per data set (and method), the papers' metric columns."""
    header = ["Dataset", "Method", "#img", *METRIC_NAMES]
    rows = []
    datasets = list(OrderedDict.fromkeys(d for per_method in results.values() for d in per_method))
    for dataset in datasets:
        for method, per_dataset in results.items():
            if dataset in per_dataset:
                m = per_dataset[dataset]
                rows.append([dataset, method, str(m.num_images), *(f"{v:.3f}" for v in m.summary().values())])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header] + rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def write_results(results: Results, output_dir: str, plot: bool = True) -> Dict[str, str]:
    """Writes ``saliency_results.json`` (metrics and curves) and, with ``plot``, the PR and
    F-measure-vs-threshold PNGs to ``output_dir``. Returns ``{kind: path}``."""
    os.makedirs(output_dir, exist_ok=True)
    payload = {
        method: {
            dataset: {"num_images": m.num_images, "metrics": m.summary(), "curves": m.curves()}
            for dataset, m in per_dataset.items()
        }
        for method, per_dataset in results.items()
    }
    paths = {"json": os.path.join(output_dir, "saliency_results.json")}
    write_json_file(paths["json"], payload, indent=1)  # strict JSON: NaN -> null
    paths["per_image"] = save_per_image(per_image_path(paths["json"]), {
        f"{method}/{dataset}": m.per_image()
        for method, per_dataset in results.items() for dataset, m in per_dataset.items()})
    if plot:
        paths.update(plot_curves(results, output_dir))
    return paths


def plot_curves(results: Results, output_dir: str) -> Dict[str, str]:
    """Two PNGs, one panel per data set, one line per method: precision-recall curves and
    F-measure (beta^2 = 0.3) against the binarisation threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(OrderedDict.fromkeys(d for per_method in results.values() for d in per_method))
    paths = {}
    for kind, xlabel, ylabel in (("pr", "Recall", "Precision"), ("fmeasure", "Threshold", "F-measure")):
        ncols = min(3, len(datasets))
        nrows = -(-len(datasets) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.8 * nrows), squeeze=False)
        for ax, dataset in zip(axes.flat, datasets):
            for method, per_dataset in results.items():
                if dataset not in per_dataset:
                    continue
                c = per_dataset[dataset].curves()
                x, y = (c["recall"], c["precision"]) if kind == "pr" else (c["threshold"], c["fmeasure"])
                ax.plot(x, y, label=method, linewidth=1.5)
            ax.set(title=dataset, xlabel=xlabel, ylabel=ylabel, ylim=(0, 1.02))
            ax.set_xlim((0, 1) if kind == "pr" else (0, 255))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="lower left" if kind == "pr" else "lower center")
        for ax in list(axes.flat)[len(datasets):]:
            ax.axis("off")
        fig.tight_layout()
        paths[kind] = os.path.join(output_dir, f"{kind}_curves.png")
        fig.savefig(paths[kind], dpi=110)
        plt.close(fig)
    return paths


# ---------------------------------------------------------------------------- training-time
class SaliencyEvaluator:
    """Detectron2's ``DatasetEvaluator`` protocol over :class:`SaliencyMetrics`.

    ``process(inputs, outputs)`` reads each input's ``"sem_seg_file_name"`` mask and the
    output's ``"saliency"`` map (original size, [0, 1]), quantised like a saved PNG, so the
    numbers equal ``tools/eval_saliency.py`` on the written predictions.

    Args:
        dataset_name: name used in the results and the table.
        output_dir: the folder of this data set's results (Detectron2's convention,
            ``OUTPUT_DIR/inference/<dataset>``): ``evaluate()`` writes the JSON and curve PNGs
            there (None: nowhere).
        mask_tolerance: see :func:`res2net_det.data.saliency.read_mask`.
        method_name: the method column of the table.
    """

    def __init__(
        self,
        dataset_name: str,
        output_dir: Optional[str] = None,
        mask_tolerance: float = DEFAULT_MASK_TOLERANCE,
        method_name: str = "model",
    ) -> None:
        self.dataset_name = dataset_name
        self.output_dir = output_dir
        self.mask_tolerance = mask_tolerance
        self.method_name = method_name
        self.reset()

    def reset(self) -> None:
        self._metrics = SaliencyMetrics()

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        for inp, out in zip(inputs, outputs):
            if "sem_seg_file_name" not in inp:
                raise KeyError(f"{inp.get('file_name', '?')}: no 'sem_seg_file_name' to evaluate against")
            gt = read_mask(inp["sem_seg_file_name"], self.mask_tolerance)
            self._metrics.update(to_uint8(out["saliency"]), gt, name=inp.get("file_name", inp["sem_seg_file_name"]))

    def evaluate(self) -> Dict[str, Dict[str, float]]:
        import torch.distributed as dist

        metrics = self._metrics
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, metrics)
            if dist.get_rank() != 0:
                return {}
            metrics = SaliencyMetrics()
            for part in gathered:
                metrics.merge(part)
        if metrics.num_images == 0:
            logger.warning("%s: no image was evaluated", self.dataset_name)
            return {}
        results = {self.method_name: {self.dataset_name: metrics}}
        logger.info("saliency evaluation on %s:\n%s", self.dataset_name, format_table(results))
        if self.output_dir:
            write_results(results, self.output_dir)
        return OrderedDict(saliency=dict(metrics.summary()))


def draw_saliency_predictions(
    model,
    records: Sequence[dict],
    mapper,
    output_dir: str,
    mask_tolerance: float = DEFAULT_MASK_TOLERANCE,
) -> List[str]:
    """One PNG per record in ``output_dir`` (named after the image): the image, the model's
    saliency map and, when the record has one, the ground-truth mask, side by side at the
    image's size. Two records with one file stem raise before anything is written. Returns the paths.

    Args:
        model: a saliency model with the dict contract (eval: ``[{"saliency": H x W in [0, 1]}]``).
        mapper: turns a record into the model's input (the test-time mapper).
    """
    import torch

    names = output_names([r["file_name"] for r in records], what="picture")
    was_training = model.training
    model.eval()
    paths = []
    try:
        for record, name in zip(records, names):
            with torch.no_grad():
                saliency = to_uint8(model([mapper(record)])[0]["saliency"])
            panels = [read_image(record["file_name"]), saliency]
            if record.get("sem_seg_file_name"):
                panels.append(read_mask(record["sem_seg_file_name"], mask_tolerance))
            paths.append(save_image(os.path.join(output_dir, name), side_by_side(panels)))
    finally:
        model.train(was_training)
    logger.info("drew the saliency maps of %d images in %s", len(paths), output_dir)
    return paths


def evaluate_methods(
    pred_dirs: Sequence[str],
    gt_dirs: Sequence[str],
    datasets: Optional[Sequence[str]] = None,
    methods: Optional[Sequence[str]] = None,
    mask_tolerance: float = DEFAULT_MASK_TOLERANCE,
    progress: bool = False,
) -> Dict[str, Dict[str, SaliencyMetrics]]:
    """Evaluates several methods on several data sets.

    Each of ``pred_dirs`` belongs to one method. With one data set it holds the maps; with
    several it holds one sub-folder per data set name (``<pred_dir>/<dataset>/``), the layout
    ``tools/predict_saliency.py --output <pred_dir>/<dataset>`` writes.

    Args:
        pred_dirs: prediction folder of each method.
        gt_dirs: mask folder of each data set.
        datasets: data set names (default: the folder above each mask folder, e.g. ``ECSSD``).
        methods: method names (default: each prediction folder's name).
    """
    datasets = list(datasets) if datasets else [os.path.basename(os.path.dirname(os.path.normpath(g))) for g in gt_dirs]
    methods = list(methods) if methods else [os.path.basename(os.path.normpath(p)) for p in pred_dirs]
    if len(datasets) != len(gt_dirs):
        raise ValueError(f"{len(datasets)} data set names for {len(gt_dirs)} mask folders")
    if len(methods) != len(pred_dirs):
        raise ValueError(f"{len(methods)} method names for {len(pred_dirs)} prediction folders")
    for kind, names in (("data set", datasets), ("method", methods)):
        if len(set(names)) != len(names):
            raise ValueError(f"{kind} names must be distinct, got {names}; name them explicitly")
    results: Dict[str, Dict[str, SaliencyMetrics]] = OrderedDict()
    for method, pred_dir in zip(methods, pred_dirs):
        results[method] = OrderedDict()
        for dataset, gt_dir in zip(datasets, gt_dirs):
            folder = pred_dir if len(gt_dirs) == 1 else os.path.join(pred_dir, dataset)
            if not os.path.isdir(folder):
                raise FileNotFoundError(
                    f"no predictions of method {method!r} for data set {dataset!r}: {folder} does not exist"
                    + (" (with several data sets, each prediction folder holds one sub-folder per data set)"
                       if len(gt_dirs) > 1 else "")
                )
            results[method][dataset] = evaluate_folder(folder, gt_dir, mask_tolerance, progress=progress)
    return results


def visualize_saliency(cfg, model, dataset_name: str, output_dir: str, num_images: int) -> List[str]:
    """``TEST.VIS_IMAGES``: image | predicted map | mask of the first ``num_images`` images of a data set."""
    if num_images <= 0:
        return []
    register_datasets_from_cfg(cfg)
    records = get_saliency_dicts([dataset_name])[:num_images]
    return draw_saliency_predictions(model, records, SaliencyDatasetMapper.from_config(cfg, is_train=False),
                                     output_dir, cfg.INPUT.SALIENCY.MASK_TOLERANCE)
