"""``tools/reproduce.py TASK``: the paper's comparison of a task, ResNet-50 against Res2Net-50,
under identical settings, then the table.

Each run is a subprocess of the task's command (:data:`COMMANDS`: ``python -m
res2net_det.engines.train_net``, for CAM then ``python -m res2net_det.engines.cam_eval``; the
package's modules, not a checkout's ``tools/``, so it works after ``pip install .``), in its own
``OUTPUT_DIR`` (``<output root>/<task>/<run>``), with the same data, schedule and ``SEED``; trailing
``KEY VALUE`` overrides go to both runs. A run that finished (``reproduce_run.json`` written after
its command succeeded) is skipped, so an interrupted reproduction picks up where it stopped; a run
that started but did not finish needs ``--resume`` (continue from its last checkpoint) or a deleted
folder. At the end the runs go through :func:`res2net_det.evaluation.compare.compare_runs`.

``--quick`` runs the same pipeline on the embedded generated data (shapes for detection, in COCO
or VOC format; the generated saliency and CAM sets) with the tasks' quickstart models on the
CPU: narrow Res2Net blocks (8w x 4s), trainable batch norm, from scratch, a few hundred
iterations; the baseline is the same network at scale 1 with the width (24) that matches its
parameter count, as ResNet-50 matches Res2Net-50.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import site
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlparse

from ..evaluation.bootstrap import DEFAULT_RESAMPLES
from ..evaluation.compare import compare_runs, format_markdown, format_seed_markdown, summarize_seeds, write_comparison
from ..model_zoo import get_config_file
from ..utils.io import write_json_file
from . import select_engine

logger = logging.getLogger(__name__)

__all__ = ["TASKS", "COMMANDS", "ReproTask", "RunPlan", "plan_runs", "reproduce", "run_environment", "FINISHED_MARKER"]

# Written into a run's folder once its command succeeded: the run is skipped next time.
FINISHED_MARKER = "reproduce_run.json"
# The folder this res2net_det was imported from (a checkout, a worktree or site-packages).
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The modules the runs execute (python -m): tools/train_net.py's and tools/cam_eval.py's jobs.
TRAIN_NET = "res2net_det.engines.train_net"
CAM_EVAL = "res2net_det.engines.cam_eval"


@dataclass(frozen=True)
class Run:
    """One side of a comparison: a label, its config and its own overrides."""

    label: str
    config: str
    opts: Tuple[str, ...] = ()


@dataclass(frozen=True)
class ReproTask:
    """A comparison of two runs under identical settings, the reference first (the Δ reference):
    the paper's (a baseline, then Res2Net), or one config on both engines."""

    name: str
    runs: Tuple[Run, Run]
    quick_runs: Tuple[Run, Run]
    command: str  # a key of COMMANDS
    quick_opts: Tuple[str, ...] = ()  # both quick runs (CPU, shortened schedule)
    anchors: str = ""  # what the full runs should reach on real data


# The quick baseline: the quickstart network at scale 1, width 24 (its parameter count is within
# 2% of the 8w x 4s Res2Net's for each task's quickstart model, as ResNet-50's is of Res2Net-50's).
_QUICK_RESNET = ("MODEL.RES2NET.SCALE", "1", "MODEL.RES2NET.WIDTH_PER_GROUP", "24")
_QUICK_DETECTION = ("MODEL.DEVICE", "cpu", "SOLVER.MAX_ITER", "300", "SOLVER.STEPS", "(240,)",
                    "SOLVER.CHECKPOINT_PERIOD", "100", "TEST.VIS_IMAGES", "4")  # NUM_THREADS 1: the config's
# One CPU thread (the detection quickstart's setting): on a loaded machine two OpenMP threads of a
# small model wait on each other (an SOD step went from 1.5 s to 15 s at load 13 on 2 cores).
_ONE_THREAD = ("NUM_THREADS", "1")

# Quick Cascade / Panoptic runs (Detectron2 engine): their shipped R2-101 config made the quickstart's
# size: the narrow 8w x 4s Res2Net-50 from scratch, small FPN and heads, Adam, shapes data at 128 px.
_QUICK_SMALL_RCNN = (
    "MODEL.WEIGHTS", "", "MODEL.RES2NET.NORM", "BN", "MODEL.BACKBONE.FREEZE_AT", "0", "MODEL.RES2NET.DEPTH", "50",
    "MODEL.RES2NET.WIDTH_PER_GROUP", "8", "MODEL.RES2NET.DEEP_STEM", "False", "MODEL.RES2NET.AVG_DOWN", "False",
    "MODEL.FPN.OUT_CHANNELS", "64", "MODEL.ANCHOR_GENERATOR.SIZES", "[[16], [32], [64], [128], [256]]",
    "MODEL.ROI_BOX_HEAD.FC_DIM", "256", "MODEL.ROI_MASK_HEAD.CONV_DIM", "64", "MODEL.ROI_HEADS.NUM_CLASSES", "3",
    "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MAX_SIZE_TRAIN", "256", "INPUT.MIN_SIZE_TEST", "128",
    "INPUT.MAX_SIZE_TEST", "256", "SOLVER.OPTIMIZER", "Adam", "SOLVER.BASE_LR", "0.001", "SOLVER.IMS_PER_BATCH", "4",
    "SOLVER.WARMUP_ITERS", "50", "DATALOADER.NUM_WORKERS", "1", *_QUICK_DETECTION, *_ONE_THREAD,
)
_QUICK_SHAPES = ("DATASETS.TRAIN", "('shapes_train',)", "DATASETS.TEST", "('shapes_val',)")
_QUICK_PANOPTIC = ("MODEL.SEM_SEG_HEAD.NUM_CLASSES", "3", "MODEL.SEM_SEG_HEAD.CONVS_DIM", "64",
                   "DATASETS.TRAIN", "('shapes_panoptic_train_separated',)",
                   "DATASETS.TEST", "('shapes_panoptic_val_separated',)")


def _quick_pair(config: str) -> Tuple[Run, Run]:
    return (Run("resnet-24w1s", config, _QUICK_RESNET), Run("res2net-8w4s", config))


# The detection quickstart as shipped on each engine: the same runs with and without --quick.
_ENGINE_PAIR = (Run("torchvision", "quickstart.yaml", ("ENGINE", "torchvision")),
                Run("detectron2", "quickstart.yaml", ("ENGINE", "detectron2")))

TASKS: Dict[str, ReproTask] = {
    "detection-coco": ReproTask(
        "detection-coco",
        (Run("R-50", "faster_rcnn_r_50.yaml"), Run("R2-50", "faster_rcnn_r2_50.yaml")),
        (Run("resnet-24w1s", "quickstart.yaml", _QUICK_RESNET), Run("res2net-8w4s", "quickstart.yaml")),
        "train_net", _QUICK_DETECTION,
        anchors="Faster R-CNN on COCO (paper): AP 31.1 (R-50) vs 33.7 (R2-50); FPN 1x box AP of Detectron2's "
                "R50-FPN: 37.9",
    ),
    "detection-voc": ReproTask(
        "detection-voc",
        (Run("R-50", "faster_rcnn_r_50_voc.yaml"), Run("R2-50", "faster_rcnn_r2_50_voc.yaml")),
        (Run("resnet-24w1s", "quickstart.yaml", _QUICK_RESNET), Run("res2net-8w4s", "quickstart.yaml")),
        "train_net",
        _QUICK_DETECTION + ("DATASETS.TRAIN", "('shapes_voc_train',)", "DATASETS.TEST", "('shapes_voc_val',)"),
        anchors="Faster R-CNN on VOC07 test (paper): mAP 74.4 (R2-50)",
    ),
    "cascade-coco": ReproTask(
        "cascade-coco",
        (Run("R-101", "cascade_rcnn_r_101.yaml"), Run("R2-101", "cascade_rcnn_r2_101.yaml")),
        _quick_pair("cascade_rcnn_r2_101.yaml"), "train_net", _QUICK_SMALL_RCNN + _QUICK_SHAPES,
        anchors="Cascade R-CNN 20e on COCO (mmdetection's Res2Net table): box AP 45.7 (R2-101)",
    ),
    "cascade-mask-coco": ReproTask(
        "cascade-mask-coco",
        (Run("R-101", "cascade_mask_rcnn_r_101.yaml"), Run("R2-101", "cascade_mask_rcnn_r2_101.yaml")),
        _quick_pair("cascade_mask_rcnn_r2_101.yaml"), "train_net", _QUICK_SMALL_RCNN + _QUICK_SHAPES,
        anchors="Cascade Mask R-CNN 20e on COCO (mmdetection's Res2Net table): box AP 46.4, mask AP 40.0 (R2-101)",
    ),
    "panoptic-coco": ReproTask(
        "panoptic-coco",
        (Run("R-101", "panoptic_fpn_r_101_3x.yaml"), Run("R2-101", "panoptic_fpn_r2_101_3x.yaml")),
        _quick_pair("panoptic_fpn_r2_101_3x.yaml"), "train_net", _QUICK_SMALL_RCNN + _QUICK_PANOPTIC,
        anchors="Panoptic FPN 3x on COCO (Res2Net-detectron2): box AP / mask AP / PQ 44.0 / 39.6 / 44.5 (R2-101) vs "
                "42.4 / 38.5 / 43.0 (Detectron2's R-101)",
    ),
    "saliency": ReproTask(
        "saliency",
        (Run("R-50", "sod/poolnet_r_50_duts.yaml"), Run("R2-50", "sod/poolnet_r2_50_duts.yaml")),
        (Run("resnet-24w1s", "sod/quickstart.yaml", _QUICK_RESNET), Run("res2net-8w4s", "sod/quickstart.yaml")),
        "train_net",
        ("MODEL.DEVICE", "cpu", "SOLVER.MAX_ITER", "200", "SOLVER.STEPS", "(150,)", "SOLVER.CHECKPOINT_PERIOD", "100",
         *_ONE_THREAD),
        anchors="PoolNet maxF / MAE, R2-50 vs R-50 (authors): ECSSD .947/.036 vs .940/.042, PASCAL-S .871/.070 vs "
                ".863/.075, DUT-OMRON .837/.052 vs .830/.055, HKU-IS .936/.031 vs .934/.032, SOD .885/.096 vs "
                ".867/.100, DUTS-TE .892/.037 vs .886/.040",
    ),
    "cam": ReproTask(
        "cam",
        (Run("R-50", "cam/resnet50_finetune.yaml"), Run("R2-50", "cam/res2net50_finetune.yaml")),
        (Run("resnet-24w1s", "cam/quickstart.yaml", _QUICK_RESNET), Run("res2net-8w4s", "cam/quickstart.yaml")),
        "cam", ("MODEL.DEVICE", "cpu", *_ONE_THREAD),
        anchors="the paper shows Grad-CAM pictures of ResNet-50 and Res2Net-50 and no numbers",
    ),
    # Not a paper table: one config on both engines (docs/engines.md, "Training parity"). The
    # detection quickstart as shipped, so the table measures what the README's first command runs.
    "engines": ReproTask(
        "engines", _ENGINE_PAIR, _ENGINE_PAIR, "train_net",
        anchors="the engines should agree within the seeds' spread; the quickstart's bar is AP50 >= 70 on every seed",
    ),
}


@dataclass
class RunPlan:
    """What one run executes: its folder, the commands and the settings recorded with it."""

    label: str
    config: str
    output_dir: str
    opts: List[str]
    commands: List[List[str]]
    env: Dict[str, str] = field(default_factory=dict)
    seed: int = 0


def _train_net(plan: RunPlan, args: argparse.Namespace) -> List[List[str]]:
    """``python -m res2net_det.engines.train_net`` under the engine's launcher: Detectron2's own
    ``launch`` takes ``--num-gpus`` / ``--num-machines``; the torchvision engine runs under ``torchrun -m``."""
    world = max(args.num_gpus, 1) * args.num_machines
    cmd = ["--config-file", plan.config]
    if args.resume:
        cmd.append("--resume")
    cmd += [*plan.opts, "OUTPUT_DIR", plan.output_dir]
    engine = select_engine(argparse.Namespace(config_file=plan.config, opts=plan.opts))
    if engine == "torchvision" and world > 1:
        url = urlparse(args.dist_url)
        launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={max(args.num_gpus, 1)}",
                    f"--nnodes={args.num_machines}", f"--node_rank={args.machine_rank}",
                    f"--master_addr={url.hostname or '127.0.0.1'}", f"--master_port={url.port or 29500}"]
        return [launcher + ["-m", TRAIN_NET] + cmd]
    flags = [f"--num-gpus={args.num_gpus}", f"--num-machines={args.num_machines}",
             f"--machine-rank={args.machine_rank}", f"--dist-url={args.dist_url}"]
    return [[sys.executable, "-m", TRAIN_NET, *flags, *cmd]]


def _cam(plan: RunPlan, args: argparse.Namespace) -> List[List[str]]:
    """Train the classifier (:data:`TRAIN_NET`, under the launcher), then evaluate its CAMs on the
    config's test set (:data:`CAM_EVAL`, one process; the published protocol's rows plus the
    aligned-map rows) into ``cam_results.json``."""
    threads = [f"--threads={plan.opts[plan.opts.index('NUM_THREADS') + 1]}"] if "NUM_THREADS" in plan.opts else []
    evaluate = [sys.executable, "-m", CAM_EVAL, "--config-file", plan.config, "--align-cams",
                *(["--faithfulness-images", "16"] if args.quick else []), *threads,
                "--output", os.path.join(plan.output_dir, "cam_results.json"), *plan.opts,
                "OUTPUT_DIR", plan.output_dir]
    return _train_net(plan, args) + [evaluate]


# How a task's run is made: the one place to change when a tool changes.
COMMANDS: Dict[str, Callable[[RunPlan, argparse.Namespace], List[List[str]]]] = {
    "train_net": _train_net,
    "cam": _cam,
}


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_").lower() or "run"


def run_environment() -> Dict[str, str]:
    """The runs' environment: they import the res2net_det this process runs, wherever it lies.

    ``python -m`` puts the working folder first on ``sys.path``, where another checkout's
    ``res2net_det`` may lie: ``PYTHONSAFEPATH`` leaves it out. A package outside the interpreter's
    site-packages (a checkout or worktree on ``PYTHONPATH``) goes on the runs' ``PYTHONPATH``; an
    installed one is found there already (putting site-packages on ``PYTHONPATH`` would rank it
    above the standard library)."""
    env = dict(os.environ, PYTHONSAFEPATH="1")
    if PACKAGE_PARENT not in {*site.getsitepackages(), site.getusersitepackages()}:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p)
    return env


def run_seeds(args: argparse.Namespace) -> List[int]:
    """The training seeds: ``--seed``, ``--seed + 1``, ... (``--seeds`` of them)."""
    count = getattr(args, "seeds", 1)
    if count < 1:
        raise ValueError(f"--seeds must be at least 1, got {count}")
    return [args.seed + i for i in range(count)]


def plan_runs(task: ReproTask, args: argparse.Namespace) -> List[RunPlan]:
    """The runs of ``task`` with the command-line settings of ``args`` (``quick``, ``output_root``,
    ``seed``, ``seeds``, ``opts``, launcher flags): every run of the task for each seed, seed by
    seed. With one seed a run's folder is ``<root>/<run>``; with several, ``<root>/<run>-seed<N>``."""
    runs = task.quick_runs if args.quick else task.runs
    root = os.path.join(args.output_root, task.name + ("-quick" if args.quick else ""))
    env = run_environment()
    seeds = run_seeds(args)
    plans = []
    for seed in seeds:
        for run in runs:
            opts = [*(task.quick_opts if args.quick else ()), *run.opts, "SEED", str(seed), *(args.opts or [])]
            folder = _slug(run.label) + (f"-seed{seed}" if len(seeds) > 1 else "")
            plan = RunPlan(run.label, get_config_file(run.config), os.path.join(root, folder), opts, [], env, seed)
            plan.commands = COMMANDS[task.command](plan, args)
            plans.append(plan)
    return plans


def _settings(plan: RunPlan) -> Dict[str, object]:
    return {"config": plan.config, "opts": plan.opts}


def _status(plan: RunPlan) -> str:
    """``"finished"``, ``"started"`` (a checkpoint but no finished marker) or ``"new"``; a folder that
    finished with other settings raises."""
    marker = os.path.join(plan.output_dir, FINISHED_MARKER)
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            done = json.load(f)
        if done.get("settings") != _settings(plan):
            raise RuntimeError(
                f"{plan.output_dir} holds a finished run with other settings ({done.get('settings')}, now "
                f"{_settings(plan)}); choose another --output-root, or delete the folder to run it again"
            )
        return "finished"
    if os.path.isfile(os.path.join(plan.output_dir, "last_checkpoint")):
        return "started"
    return "new"


def _run_name(plan: RunPlan, plans: Sequence[RunPlan]) -> str:
    return plan.label if len({p.seed for p in plans}) == 1 else f"{plan.label} seed {plan.seed}"


def reproduce(task_name: str, args: argparse.Namespace) -> Dict[str, object]:
    """Runs (or skips) both runs of ``task_name`` and writes the comparison; returns
    ``{"comparison", "paths", "markdown", "seconds": {label: s}}``."""
    if task_name not in TASKS:
        raise KeyError(f"unknown task {task_name!r}; tasks: {', '.join(TASKS)}")
    task = TASKS[task_name]
    plans = plan_runs(task, args)
    seconds: Dict[str, Optional[float]] = {}
    for i, plan in enumerate(plans, 1):
        status = _status(plan)
        head = f"[{i}/{len(plans)}] {task.name} {_run_name(plan, plans)} -> {plan.output_dir}"
        if status == "finished":
            print(f"{head}: finished earlier, skipped", flush=True)
            seconds[_run_name(plan, plans)] = None
            continue
        if status == "started" and not args.resume:
            raise RuntimeError(
                f"{plan.output_dir} holds a started, unfinished run (it has a last_checkpoint); add --resume to "
                "continue it, or delete the folder to start it over"
            )
        for cmd in plan.commands:
            print(f"{head}\n  $ {shlex.join(cmd)}", flush=True)
        if args.dry_run:
            continue
        start = time.perf_counter()
        os.makedirs(plan.output_dir, exist_ok=True)
        for cmd in plan.commands:
            rc = subprocess.run(cmd, env=plan.env).returncode
            if rc != 0:
                raise RuntimeError(f"{task.name} {plan.label}: `{shlex.join(cmd)}` failed with exit code {rc}; its log "
                                   f"is in {plan.output_dir} (fix it, then run the same reproduce command again)")
        seconds[_run_name(plan, plans)] = round(time.perf_counter() - start, 1)
        with open(os.path.join(plan.output_dir, FINISHED_MARKER), "w", encoding="utf-8") as f:
            json.dump({"task": task.name, "label": plan.label, "settings": _settings(plan), "commands": plan.commands,
                       "seconds": seconds[_run_name(plan, plans)]}, f, indent=1)
    if args.dry_run:
        return {"plans": plans}
    bootstrap = getattr(args, "bootstrap", DEFAULT_RESAMPLES)
    seeds = run_seeds(args)
    root = os.path.dirname(plans[0].output_dir)
    if len(seeds) == 1:
        comparison = compare_runs([p.output_dir for p in plans], [p.label for p in plans], bootstrap=bootstrap)
        paths = write_comparison(comparison, os.path.join(root, "comparison"))
        return {"comparison": comparison, "paths": paths, "markdown": format_markdown(comparison),
                "seconds": seconds, "task": task}
    # several seeds: a comparison (with its test-set intervals) per seed, then the summary over seeds
    comparisons = []
    for seed in seeds:
        pair = [p for p in plans if p.seed == seed]
        comparisons.append(compare_runs([p.output_dir for p in pair], [p.label for p in pair], bootstrap=bootstrap))
        write_comparison(comparisons[-1], os.path.join(root, "comparison", f"seed{seed}"))
    summary = summarize_seeds(comparisons, seeds)
    markdown = format_seed_markdown(summary)
    paths = write_comparison(comparisons[0], os.path.join(root, "comparison"))
    paths["markdown"], paths["json"] = (os.path.join(root, "comparison", "seeds.md"),
                                        os.path.join(root, "comparison", "seeds.json"))
    with open(paths["markdown"], "w", encoding="utf-8") as f:
        f.write(markdown)
    write_json_file(paths["json"], summary, indent=1)
    return {"comparison": comparisons[0], "summary": summary, "paths": paths, "markdown": markdown,
            "seconds": seconds, "task": task}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``tools/reproduce.py``'s arguments."""
    parser.add_argument("task", choices=list(TASKS), help="the paper comparison to run")
    parser.add_argument("--quick", action="store_true",
                        help="small models on the embedded generated data, on the CPU, in minutes")
    parser.add_argument("--output-root", default="output/reproduce",
                        help="runs go to OUTPUT_ROOT/TASK[-quick]/<run>, the table to .../comparison")
    parser.add_argument("--resume", action="store_true", help="continue started runs from their last checkpoint")
    parser.add_argument("--seed", type=int, default=0,
                        help="SEED of both runs (the same data order and initialisation)")
    parser.add_argument("--seeds", type=int, default=1, metavar="K",
                        help="train each config K times, with SEED --seed, --seed + 1, ... (folders <run>-seed<N>), "
                             "and report mean ± std over the seeds next to the test-set intervals")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_RESAMPLES, metavar="N",
                        help="paired bootstrap resamples of the test images for each Δ's 95%% interval (0: none)")
    parser.add_argument("--num-gpus", type=int, default=1, help="GPUs per machine (passed to the engine's launcher)")
    parser.add_argument("--num-machines", type=int, default=1, help="machines in all, passed to the engine's launcher")
    parser.add_argument("--machine-rank", type=int, default=0,
                        help="this machine's rank, passed to the engine's launcher")
    parser.add_argument("--dist-url", default="tcp://127.0.0.1:29500", help="the first machine's address")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")


def parse_args(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Flags anywhere; what is left are the config ``KEY VALUE`` pairs for both runs (``args.opts``)."""
    args, opts = parser.parse_known_args(argv)
    if len(opts) % 2:
        parser.error(f"trailing config options must be KEY VALUE pairs, got {opts}")
    for key in opts[0::2]:
        if key.startswith("-"):
            parser.error(f"unknown option {key}")
    args.opts = opts
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Runs the baseline and the Res2Net config of a paper comparison under identical settings, "
                    "then prints the table with a Δ column.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python tools/reproduce.py detection-coco --num-gpus 8\n"
               "  python tools/reproduce.py detection-voc --quick SOLVER.MAX_ITER 100\n"
               "  python tools/reproduce.py panoptic-coco --num-gpus 8          (Detectron2 engine)\n"
               "  python tools/reproduce.py saliency --quick\n"
               "  python tools/reproduce.py cam --quick --output-root output/reproduce_quick",
    )
    add_arguments(parser)
    parser.usage = "%(prog)s TASK [flags] [KEY VALUE ...]"
    args = parse_args(parser, argv)
    try:
        result = reproduce(args.task, args)
    except (RuntimeError, FileNotFoundError, ValueError) as e:
        print(f"reproduce: {e}", file=sys.stderr)
        return 1
    if args.dry_run:
        return 0
    print()
    print(result["markdown"])
    took = ", ".join(f"{k} {v:.0f} s" if v is not None else f"{k} (earlier)" for k, v in result["seconds"].items())
    print(f"runs: {took}")
    if not args.quick and result["task"].anchors:
        print(f"expected on real data: {result['task'].anchors}")
    print(f"table: {result['paths']['markdown']}  json: {result['paths']['json']}  "
          f"figure: {result['paths']['figure']}")
    return 0


if __name__ == "__main__":  # python -m res2net_det.engines.reproduce: tools/reproduce.py without a checkout
    sys.exit(main())
