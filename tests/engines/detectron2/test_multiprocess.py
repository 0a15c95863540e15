"""Detectron2's own launcher on the CPU: ``--num-gpus 2 MODEL.DEVICE cpu`` runs two processes over
gloo (skipped without Detectron2; slow)."""
import json
import os

import pytest
import torch

pytest.importorskip(
    "detectron2",
    reason="Detectron2 is not installed; build it from source (README.md, section Detectron2) to run these tests",
)
from detectron2.engine import launch  # noqa: E402
from detectron2.utils import comm  # noqa: E402

from res2net_det.data.builtin import register_builtin_datasets  # noqa: E402
from res2net_det.data.catalog import DatasetCatalog  # noqa: E402
from res2net_det.engines import default_argument_parser  # noqa: E402
from res2net_det.engines.detectron2 import train_net  # noqa: E402
from res2net_det.engines.detectron2.detection import DetectionTrainer  # noqa: E402


class _RecordingLoader:
    """The training loader, writing the image ids of every batch it yields to ``path``."""

    def __init__(self, loader, path: str) -> None:
        self.loader, self.path = loader, path

    def __iter__(self):
        for batch in self.loader:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps([record["image_id"] for record in batch]) + "\n")
            yield batch


def _recording_main(args, seen_dir: str):
    """One worker of ``launch``: tools/train_net.py's ``main`` with the detection trainer's training
    loader recorded per rank (a subclass; nothing of Detectron2 or of the package is changed)."""

    class Recording(DetectionTrainer):
        @classmethod
        def build_train_loader(cls, cfg):
            path = os.path.join(seen_dir, f"rank{comm.get_rank()}.jsonl")
            return _RecordingLoader(super().build_train_loader(cfg), path)

    train_net.trainer_class = lambda cfg: Recording  # this spawned process only
    train_net.main(args)


@pytest.mark.slow
def test_detection_quickstart_on_two_cpu_processes(tmp_path):
    out, seen = tmp_path / "run", tmp_path / "seen"
    seen.mkdir()
    iters, batch = 4, 4
    args = default_argument_parser().parse_args([
        "--config-file", "quickstart.yaml", "--num-gpus", "2", "--dist-url", "auto",
        "ENGINE", "detectron2", "MODEL.DEVICE", "cpu", "SOLVER.MAX_ITER", str(iters),
        "SOLVER.IMS_PER_BATCH", str(batch), "SOLVER.CHECKPOINT_PERIOD", "2", "SOLVER.LOG_PERIOD", "2",
        "TEST.VIS_IMAGES", "2", "DATALOADER.NUM_WORKERS", "0",
        "OUTPUT_DIR", str(out),
    ])
    launch(_recording_main, 2, dist_url=args.dist_url, args=(args, str(seen)))

    # Each rank drew its own half of every batch: different images.
    ranks = [[json.loads(line) for line in (seen / f"rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    assert [len(batches) for batches in ranks] == [iters, iters]
    assert all(len(b) == batch // 2 for batches in ranks for b in batches)
    images = [{i for b in batches for i in b} for batches in ranks]
    assert images[0] and images[1] and not images[0] & images[1], images

    # The evaluation covered every validation image exactly once (gathered from both ranks).
    predictions = torch.load(out / "inference" / "shapes_val" / "instances_predictions.pth", weights_only=True)
    ids = sorted(p["image_id"] for p in predictions)
    register_builtin_datasets()
    with open(DatasetCatalog.metadata("shapes_val")["json_file"], encoding="utf-8") as f:
        val_ids = sorted(im["id"] for im in json.load(f)["images"])
    assert ids == val_ids

    # Only rank 0 wrote checkpoints (rank 1's log has no save), and the files of a one-process run are there.
    log0, log1 = (out / "log.txt").read_text(), (out / "log.txt.rank1").read_text()
    assert "Saving checkpoint to" in log0 and "Saving checkpoint to" not in log1
    for name in ("model_0000001.pth", "model_final.pth", "last_checkpoint", "metrics.json", "config.yaml",
                 "inference/shapes_val/coco_eval_results.json", "vis/shapes_val"):
        assert (out / name).exists(), name
    results = json.loads((out / "inference" / "shapes_val" / "coco_eval_results.json").read_text())
    assert "AP" in results["bbox"]

