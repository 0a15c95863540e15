"""Exporting a Res2Net backbone, a saliency model or a torchvision detector, and checking the export.

Each model gets a tensor-in, tensor-out wrapper (:class:`BackboneForExport`,
:class:`SaliencyForExport`, :class:`DetectorForExport`) described by an :class:`ExportSpec`:
input and output names, the dynamic axes and how to draw a random input. The spec is exported
to ONNX (:func:`export_onnx`), TorchScript (:func:`export_torchscript`, by tracing) or a
``torch.export`` program (:func:`export_program`), and :func:`check_export` runs the exported
model on a random input of another size than the export example and reports its largest
difference to the PyTorch model.

What works (torch 2.14, torchvision 0.29):

=============  ======  ======================  ============
model          ONNX    TorchScript (trace)     torch.export
=============  ======  ======================  ============
backbone       yes     yes                     yes
saliency       yes     yes                     yes (exported at 224: H, W >= 129)
detector       yes     yes                     no: NMS output sizes depend on the data
=============  ======  ======================  ============

``torch.jit.script`` does not compile :meth:`Res2Net.forward_features` (it loops over a tuple
of stages); tracing gives the same graph. ONNX needs the optional packages ``onnx`` and
``onnxruntime``: ``pip install -e '.[export]'``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from torch import nn
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.ops import box_iou

from .res2net import Res2Net
from .saliency import PoolNetSaliency

__all__ = [
    "EXPORT_EXTRA_HINT", "FORMATS", "BackboneForExport", "SaliencyForExport", "DetectorForExport", "ExportSpec",
    "CheckReport", "SALIENCY_EXPORT_SIZE", "backbone_spec", "saliency_spec", "detector_spec", "export", "export_onnx",
    "export_torchscript", "export_program", "program_input_ranges", "check_export", "import_onnx", "onnx_session",
    "MIN_OPSET",
]

EXPORT_EXTRA_HINT = "pip install -e '.[export]' (or pip install onnx onnxruntime)"
MIN_OPSET = 17
FORMATS = ("onnx", "torchscript", "export")
_SUFFIX = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "export": ".pt2"}
# Largest difference to the PyTorch model an export may show (float32 rounding of reordered ops).
FEATURE_TOLERANCE = 1e-4
BOX_TOLERANCE = 1e-3


def import_onnx():
    """``(onnx, onnxruntime)``, or an ImportError naming the optional extra that installs them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        raise ImportError(f"ONNX export needs the optional packages onnx and onnxruntime ({e.name} is "
                          f"missing): {EXPORT_EXTRA_HINT}") from e
    return onnx, onnxruntime


def onnx_session(path: str, threads: int = 0):
    """An onnxruntime CPU session on ``path`` (``threads`` 0: onnxruntime's default)."""
    _, ort = import_onnx()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: it warns about every empty RoI tensor
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------------- wrappers
class BackboneForExport(nn.Module):
    """``images`` (N x 3 x H x W, normalised) -> the backbone's features (res2..res5 by default)."""

    def __init__(self, backbone: Res2Net) -> None:
        super().__init__()
        self.backbone = backbone
        self.output_names = list(backbone.out_features)

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        features = self.backbone.forward_features(images)
        return tuple(features[name] for name in self.output_names)


class SaliencyForExport(nn.Module):
    """``images`` (N x 3 x H x W RGB on the 0-255 scale, the model's ``"image"`` input, same size)
    -> ``saliency`` (N x 1 x H x W in [0, 1]); normalised inside with the model's pixel mean/std."""

    def __init__(self, model: PoolNetSaliency) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.model.pixel_mean) / self.model.pixel_std
        return torch.sigmoid(self.model.forward_logits(x))


class DetectorForExport(nn.Module):
    """``image`` (3 x H x W, the config's ``INPUT.FORMAT`` channel order on the 0-255 scale) ->
    ``boxes`` (K x 4, XYXY in input pixels), ``scores`` (K), ``classes`` (K, 0-based as Detectron2's
    ``pred_classes``)[, ``masks`` (K x 1 x H x W probabilities) for Mask R-CNN].

    Runs torchvision's own ``GeneralizedRCNN.forward`` on a one-image list, the path torchvision
    exports its detection models by, bypassing our models' Detectron2-style dict interface.
    """

    def __init__(self, model: GeneralizedRCNN) -> None:
        super().__init__()
        self.model = model
        self.output_names = ["boxes", "scores", "classes"] + (["masks"] if _has_masks(model) else [])

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        det = GeneralizedRCNN.forward(self.model, [image])[0]
        outputs = (det["boxes"], det["scores"], det["labels"] - 1)
        return outputs + ((det["masks"],) if "masks" in det else ())


def _has_masks(model: GeneralizedRCNN) -> bool:
    return getattr(model.roi_heads, "mask_predictor", None) is not None


# ---------------------------------------------------------------------- specs
@dataclass
class ExportSpec:
    """What an exporter needs: the wrapper, an example input and the names and dynamic axes.

    Args:
        kind: ``"backbone"``, ``"saliency"`` or ``"detector"`` (how outputs are compared).
        module: the wrapper, in eval mode.
        example: inputs the exporters trace with.
        input_names, output_names: graph names.
        dynamic_axes: ``{name: {axis: label}}`` for every input and output (ONNX's form).
        make_input: ``(batch, (H, W), generator) -> inputs`` drawing a random input.
    """

    kind: str
    module: nn.Module
    example: Tuple[torch.Tensor, ...]
    input_names: List[str]
    output_names: List[str]
    dynamic_axes: Dict[str, Dict[int, str]]
    make_input: Callable[[int, Sequence[int], torch.Generator], Tuple[torch.Tensor, ...]]


def _normal_images(batch, size, gen):
    return (torch.randn(batch, 3, *size, generator=gen),)


def _pixel_images(batch, size, gen):
    return (torch.rand(batch, 3, *size, generator=gen) * 255,)


def _pixel_image(batch, size, gen):
    return (torch.rand(3, *size, generator=gen) * 255,)


def backbone_spec(backbone: Res2Net, size: Sequence[int] = (224, 224), batch: int = 2) -> ExportSpec:
    """A backbone: input ``images`` N x 3 x H x W (normalised), outputs its ``out_features``.
    ``batch`` >= 2 keeps the batch dynamic in torch.export (it specialises a batch of 1)."""
    module = BackboneForExport(backbone).eval()
    axes = {"images": {0: "batch", 2: "height", 3: "width"}}
    axes.update({n: {0: "batch", 2: f"{n}_height", 3: f"{n}_width"} for n in module.output_names})
    return ExportSpec("backbone", module, _normal_images(batch, size, torch.Generator().manual_seed(0)),
                      ["images"], module.output_names, axes, _normal_images)


# PoolNet's coarsest FAM pool (8 x 8 on the stride-16 map) comes out 1 pixel wide below ~240 px, and
# torch.export fixes the program to whether it is 1 (PyTorch's bilinear upsampling branches on it):
# exported at 224 the program refused 288-px inputs; exported at 384 it runs on sides of 256 px and up
# (where the stride-16 map is at least 16 wide).
SALIENCY_EXPORT_SIZE = (384, 384)


def saliency_spec(model: PoolNetSaliency, size: Sequence[int] = SALIENCY_EXPORT_SIZE, batch: int = 2) -> ExportSpec:
    """A saliency model: input ``images`` N x 3 x H x W (0-255 RGB), output ``saliency`` N x 1 x H x W."""
    module = SaliencyForExport(model).eval()
    axes = {n: {0: "batch", 2: "height", 3: "width"} for n in ("images", "saliency")}
    return ExportSpec("saliency", module, _pixel_images(batch, size, torch.Generator().manual_seed(0)),
                      ["images"], ["saliency"], axes, _pixel_images)


def detector_spec(model: GeneralizedRCNN, size: Sequence[int] = (224, 224)) -> ExportSpec:
    """A torchvision detector: one image 3 x H x W in, K detections out (K, H and W dynamic; a
    batch would be a list of images, whose length tracing fixes: run it once per image)."""
    module = DetectorForExport(model).eval()
    axes = {"image": {1: "height", 2: "width"}}
    axes.update({n: {0: "detections"} for n in module.output_names})
    return ExportSpec("detector", module, _pixel_image(1, size, torch.Generator().manual_seed(0)),
                      ["image"], module.output_names, axes, _pixel_image)


# ---------------------------------------------------------------------- exporters
def export_onnx(spec: ExportSpec, path: str, opset: int = MIN_OPSET) -> str:
    """ONNX with dynamic axes, written to ``path`` and validated with ``onnx.checker``.

    Uses the TorchScript-based exporter (``dynamo=False``): torchvision's documented path for its
    detection models (torch.export can't follow NMS's data-dependent sizes) and needing only
    ``onnx``; the torch.export-based exporter would add onnxscript and still fail on detectors.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    onnx, _ = import_onnx()
    with warnings.catch_warnings():
        # Tracer warnings flag sizes turned into Python numbers (torchvision's detection code does
        # so by design) and the legacy exporter announces its successor: the size check of
        # check_export, not a warning, says whether the graph follows the input size.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message="To copy construct from a tensor")  # torchvision, traced
        # torchvision's RoI code indexes with non-negative indices only, which the opset 17 form handles.
        warnings.filterwarnings("ignore", message="Exporting aten::index operator of advanced indexing")
        torch.onnx.export(spec.module, spec.example, path, dynamo=False, opset_version=opset,
                          input_names=spec.input_names, output_names=spec.output_names,
                          dynamic_axes=spec.dynamic_axes)
    onnx.checker.check_model(path)
    return path


def export_torchscript(spec: ExportSpec, path: str) -> str:
    """TorchScript by ``torch.jit.trace`` (shapes stay symbolic; ``torch.jit.load`` reads it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit is deprecated in torch 2.9+
        warnings.filterwarnings("ignore", message="To copy construct from a tensor")  # torchvision, traced
        traced = torch.jit.trace(spec.module, spec.example, check_trace=False)
    traced.save(path)
    return path


def export_program(spec: ExportSpec, path: str) -> str:
    """A ``torch.export`` program (``torch.export.load(path).module()`` runs it). Dynamic axes
    are ``Dim.AUTO``: torch.export keeps each dynamic within the range the model allows."""
    if spec.kind == "detector":
        raise RuntimeError("torch.export can't export a torchvision detector: the number of boxes NMS keeps "
                           "depends on the data (torchvision's batched_nms); use onnx or torchscript")
    shapes = tuple({axis: torch.export.Dim.AUTO for axis in spec.dynamic_axes[name]} for name in spec.input_names)
    program = torch.export.export(spec.module, spec.example, dynamic_shapes=shapes)
    torch.export.save(program, path)
    return path


def program_input_ranges(path: str, spec: ExportSpec) -> str:
    """The sizes a saved torch.export program accepts on each dynamic axis, e.g.
    ``images: batch 2..inf, height 129..inf, width 129..inf`` (torch.export narrows them)."""
    program = torch.export.load(path)
    placeholders = [n for n in program.graph.nodes if n.op == "placeholder"]
    user_inputs = placeholders[len(placeholders) - len(spec.input_names):]
    parts = []
    for name, node in zip(spec.input_names, user_inputs):
        axes = []
        for axis, label in spec.dynamic_axes[name].items():
            dim = node.meta["val"].shape[axis]
            bounds = program.range_constraints.get(getattr(dim, "node", None) and dim.node.expr)
            if bounds is None:
                text = f"{dim} (fixed)"
            else:
                text = f"{bounds.lower}..{'inf' if 'oo' in str(bounds.upper) else bounds.upper}"  # sympy's int_oo
            axes.append(f"{label} {text}")
        parts.append(f"{name}: " + ", ".join(axes))
    return "; ".join(parts)


def export(spec: ExportSpec, stem: str, fmt: str, opset: int = MIN_OPSET) -> str:
    """Exports ``spec`` as ``fmt`` (one of :data:`FORMATS`) to ``stem`` + the format's suffix."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")
    path = stem + _SUFFIX[fmt]
    if fmt == "onnx":
        return export_onnx(spec, path, opset)
    return export_torchscript(spec, path) if fmt == "torchscript" else export_program(spec, path)


# ---------------------------------------------------------------------- checks
@dataclass
class CheckReport:
    """Largest differences of an export to the PyTorch model on one input."""

    fmt: str
    path: str
    input_shape: Tuple[int, ...]
    diffs: Dict[str, float] = field(default_factory=dict)
    tolerance: float = FEATURE_TOLERANCE
    notes: List[str] = field(default_factory=list)
    passed: bool = False

    def summary(self) -> str:
        diffs = ", ".join(f"{k} {v:.3g}" for k, v in self.diffs.items())
        verdict = "OK" if self.passed else "FAILED"
        text = (f"{self.fmt} {self.path}: input {'x'.join(map(str, self.input_shape))}, "
                f"max |export - pytorch|: {diffs or 'n/a'} (tolerance {self.tolerance:g}) {verdict}")
        return text + "".join(f"\n  {n}" for n in self.notes)


def _load_and_run(fmt: str, path: str, inputs: Tuple[torch.Tensor, ...]) -> List[torch.Tensor]:
    if fmt == "onnx":
        session = onnx_session(path)
        feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
        return [torch.from_numpy(o) for o in session.run(None, feeds)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        module = torch.jit.load(path) if fmt == "torchscript" else torch.export.load(path).module()
    with torch.no_grad():
        out = module(*inputs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _match_detections(ref: Sequence[torch.Tensor], got: Sequence[torch.Tensor], min_iou: float = 0.9):
    """Pairs ``(i_ref, i_got)`` of same-class detections, greedily by IoU in the reference's
    score order. The order alone is not enough: near-equal scores may swap places."""
    iou = box_iou(ref[0], got[0]) if len(ref[0]) and len(got[0]) else torch.zeros(len(ref[0]), len(got[0]))
    iou[ref[2][:, None] != got[2][None, :]] = -1
    pairs, taken = [], set()
    for i in range(len(ref[0])):
        order = [j for j in torch.argsort(iou[i], descending=True).tolist() if j not in taken]
        if order and iou[i, order[0]] >= min_iou:
            pairs.append((i, order[0]))
            taken.add(order[0])
    return pairs


def _compare_detections(report: CheckReport, ref: List[torch.Tensor], got: List[torch.Tensor]) -> None:
    report.tolerance = BOX_TOLERANCE
    pairs = _match_detections(ref, got)
    report.notes.append(f"detections: pytorch {len(ref[0])}, export {len(got[0])}, matched {len(pairs)} "
                        "(same class, IoU >= 0.9)")
    if not len(ref[0]):
        report.notes.append("no detections to compare: export with a lower MODEL.ROI_HEADS.SCORE_THRESH_TEST "
                            "(e.g. 0.0) or trained weights to check the boxes")
        return
    i = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    j = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    compared = {"boxes": 0, "scores": 1, **({"masks": 3} if len(ref) > 3 else {})}
    for name, k in compared.items():
        report.diffs[name] = float((ref[k][i] - got[k][j]).abs().max()) if pairs else float("nan")
    # Near the score threshold or the per-image cap a detection may fall on either side.
    report.passed = len(pairs) >= 0.9 * max(len(ref[0]), len(got[0])) and all(
        v <= BOX_TOLERANCE for v in report.diffs.values())


def check_export(spec: ExportSpec, fmt: str, path: str, batch: int, size: Sequence[int], seed: int = 1) -> CheckReport:
    """Runs the export at ``batch x 3 x size`` (pick another size than the example's) and the
    PyTorch model on the same random input, and compares: every output for a backbone or a
    saliency model; boxes and scores of matched detections for a detector."""
    inputs = spec.make_input(batch, size, torch.Generator().manual_seed(seed))
    report = CheckReport(fmt, path, tuple(inputs[0].shape))
    with torch.no_grad():
        ref = spec.module(*inputs)
    ref = list(ref) if isinstance(ref, (tuple, list)) else [ref]
    if fmt == "export":
        # Lower bounds of 2 are torch.export's assumption for dynamic sizes; 1 runs too (tested for a batch).
        report.notes.append("torch.export ranges: " + program_input_ranges(path, spec))
    try:
        got = _load_and_run(fmt, path, inputs)
    except Exception as e:  # an export that only runs at its example's size, e.g.
        report.notes.append(f"the export does not run at this size: {type(e).__name__}: {str(e)[:300]}")
        return report
    if spec.kind == "detector":
        _compare_detections(report, ref, got)
        return report
    scales = []
    for name, r, g in zip(spec.output_names, ref, got):
        report.diffs[name] = float((r - g).abs().max()) if r.shape == g.shape else float("inf")
        scales.append(max(1.0, float(r.abs().max())))
    # Float32 rounding grows with the values: an untrained backbone's res5 reaches thousands, where
    # 1e-4 is below one unit in the last place. The tolerance is absolute up to magnitude 1.
    if max(scales) > 1:
        report.notes.append("largest |pytorch| per output: " + ", ".join(
            f"{n} {s:.3g}" for n, s in zip(spec.output_names, scales)) + "; tolerance scaled by it above 1")
    report.passed = all(d <= FEATURE_TOLERANCE * s for d, s in zip(report.diffs.values(), scales))
    return report
