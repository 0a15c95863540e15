"""tools/reproduce.py: identical settings for both runs, the launcher per engine, skipping finished
runs, --resume for started ones, and the table at the end (commands faked: no training here)."""
import argparse
import json
import os
import shutil
import subprocess
import sys

import pytest

from res2net_det import engines
from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.engines import reproduce
from res2net_det.engines.reproduce import (
    CAM_EVAL,
    FINISHED_MARKER,
    TASKS,
    TRAIN_NET,
    add_arguments,
    parse_args,
    plan_runs,
)
from res2net_det.model_zoo import get_config_file
from tests.helpers import REPO, shipped_config


def _args(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parse_args(parser, list(argv))


# Keys allowed to differ between the two runs of a comparison: the backbone and its weights.
BACKBONE_KEYS = {"MODEL.RES2NET.WIDTH_PER_GROUP", "MODEL.RES2NET.SCALE", "MODEL.WEIGHTS", "OUTPUT_DIR",
                 "MODEL.RES2NET.DEEP_STEM", "MODEL.RES2NET.AVG_DOWN"}  # ResNet-101 has the plain stem


def _flat(cfg, prefix=""):
    for k, v in cfg.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _merged(plan):
    return dict(_flat(shipped_config(plan.config, *plan.opts)))  # Panoptic FPN: Detectron2's tree, or skipped


PAPER_TASKS = [name for name in TASKS if name != "engines"]


@pytest.mark.parametrize("task", PAPER_TASKS)
@pytest.mark.parametrize("quick", [False, True])
def test_both_runs_differ_only_in_the_backbone(task, quick, tmp_path):
    argv = [task, "--output-root", str(tmp_path), "SOLVER.MAX_ITER", "7"] + (["--quick"] if quick else [])
    base, res2 = plan_runs(TASKS[task], _args(*argv))
    a, b = _merged(base), _merged(res2)
    differ = {k for k in a if a[k] != b[k]}
    assert differ <= BACKBONE_KEYS, differ
    assert a["SOLVER.MAX_ITER"] == b["SOLVER.MAX_ITER"] == 7  # trailing overrides reach both runs
    assert a["SEED"] == b["SEED"] == 0
    assert (a["MODEL.RES2NET.SCALE"], b["MODEL.RES2NET.SCALE"]) in ((1, 4),)
    assert base.output_dir != res2.output_dir and os.path.dirname(base.output_dir) == os.path.dirname(res2.output_dir)
    if quick:
        assert a["MODEL.DEVICE"] == "cpu" and a["MODEL.WEIGHTS"] == "" and a["MODEL.RES2NET.NORM"] == "BN"
        assert a["MODEL.BACKBONE.FREEZE_AT"] == 0


@pytest.mark.parametrize("quick", [False, True])
def test_engines_runs_differ_only_in_the_engine(quick, tmp_path, monkeypatch):
    """`reproduce.py engines --seeds K`: the detection quickstart as shipped on each engine (planned
    as if Detectron2 were installed; without it the plan stops, naming what to install)."""
    monkeypatch.setattr(engines, "detectron2_available", lambda: True)
    argv = ["engines", "--output-root", str(tmp_path), "--seeds", "2"] + (["--quick"] if quick else [])
    plans = plan_runs(TASKS["engines"], _args(*argv))
    assert [(p.label, p.seed) for p in plans] == [("torchvision", 0), ("detectron2", 0), ("torchvision", 1),
                                                  ("detectron2", 1)]
    tv, d2 = plans[0], plans[1]
    assert tv.config == d2.config == get_config_file("quickstart.yaml")
    assert [d2.opts[i] if d2.opts[i - 1] != "ENGINE" else "torchvision" for i in range(len(d2.opts))] == tv.opts
    assert d2.opts[d2.opts.index("ENGINE") + 1] == "detectron2"
    a, shipped = _merged(tv), dict(_flat(shipped_config(get_config_file("quickstart.yaml"))))
    assert {k for k in a if a[k] != shipped[k]} <= {"SEED", "OUTPUT_DIR"}  # the quickstart as shipped


def test_quick_detection_voc_trains_and_tests_on_the_voc_copy(tmp_path):
    _, res2 = plan_runs(TASKS["detection-voc"], _args("detection-voc", "--quick", "--output-root", str(tmp_path)))
    cfg = _merged(res2)
    assert cfg["DATASETS.TRAIN"] == ("shapes_voc_train",) and cfg["DATASETS.TEST"] == ("shapes_voc_val",)


def test_quick_baseline_matches_the_res2net_parameter_count():
    """ResNet-50 and Res2Net-50 have the same size; so do the quick pair (within 2 %)."""
    import res2net_det.engines.torchvision  # noqa: F401  (registers the tasks)
    from res2net_det.engines.torchvision.registry import get_task

    for name in ("detection-coco", "saliency", "cam"):
        sizes = []
        for run in TASKS[name].quick_runs:
            cfg = merge_config_list(merge_config_file(get_cfg(), get_config_file(run.config)),
                                    ["MODEL.DEVICE", "cpu", *run.opts])
            model = get_task(cfg.MODEL.META_ARCHITECTURE).build_model(cfg)
            sizes.append(sum(p.numel() for p in model.parameters()))
        assert abs(sizes[0] / sizes[1] - 1) < 0.02, (name, sizes)


def test_launcher_follows_the_engine(tmp_path, monkeypatch):
    args = _args("detection-coco", "--num-gpus", "8", "--num-machines", "2", "--machine-rank", "1",
                 "--dist-url", "tcp://10.0.0.1:1234", "--output-root", str(tmp_path), "ENGINE", "torchvision")
    (cmd,) = plan_runs(TASKS["detection-coco"], args)[0].commands
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--nproc_per_node=8"]
    assert "--nnodes=2" in cmd and "--node_rank=1" in cmd
    assert "--master_addr=10.0.0.1" in cmd and "--master_port=1234" in cmd
    assert cmd[cmd.index("--config-file") - 2:cmd.index("--config-file")] == ["-m", TRAIN_NET]  # torchrun -m

    monkeypatch.setattr(reproduce, "select_engine", lambda _: "detectron2")
    (cmd,) = plan_runs(TASKS["detection-coco"], args)[0].commands
    assert cmd[:3] == [sys.executable, "-m", TRAIN_NET]
    assert {"--num-gpus=8", "--num-machines=2", "--machine-rank=1", "--dist-url=tcp://10.0.0.1:1234"} <= set(cmd)


def test_cam_trains_then_evaluates_the_cams(tmp_path):
    plan = plan_runs(TASKS["cam"], _args("cam", "--quick", "--output-root", str(tmp_path)))[1]
    train, evaluate = plan.commands
    assert train[:3] == [sys.executable, "-m", TRAIN_NET] and train[-2:] == ["OUTPUT_DIR", plan.output_dir]
    assert evaluate[:3] == [sys.executable, "-m", CAM_EVAL] and evaluate[-2:] == ["OUTPUT_DIR", plan.output_dir]
    assert evaluate[evaluate.index("--output") + 1] == os.path.join(plan.output_dir, "cam_results.json")
    assert evaluate[evaluate.index("--config-file") + 1] == train[train.index("--config-file") + 1]
    assert "--threads=1" in evaluate  # the quick runs' NUM_THREADS


def test_bad_trailing_options_are_refused(capsys):
    with pytest.raises(SystemExit):
        _args("saliency", "SOLVER.MAX_ITER")
    with pytest.raises(SystemExit):
        _args("saliency", "--quik", "1")
    assert "unknown option --quik" in capsys.readouterr().err


class FakeRuns:
    """Stands in for the training subprocesses: writes the results a finished run has."""

    def __init__(self, fail=False):
        self.commands, self.fail = [], fail

    def __call__(self, cmd, env=None):
        self.commands.append(cmd)
        out = cmd[cmd.index("OUTPUT_DIR") + 1]
        ap = 30.0 if "MODEL.RES2NET.SCALE" in cmd else 32.5
        path = os.path.join(out, "inference", "shapes_voc_val", "voc_eval_results.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"bbox": {"AP50": ap, "AP50_allpoint": ap + 1, "AP": ap / 2, "AP75": ap / 3}}, f)
        with open(os.path.join(out, "last_checkpoint"), "w") as f:
            f.write("model_final.pth")
        return argparse.Namespace(returncode=1 if self.fail else 0)


def test_runs_then_table_then_skips_finished_runs(tmp_path, monkeypatch, capsys):
    fake = FakeRuns()
    monkeypatch.setattr(reproduce.subprocess, "run", fake)
    argv = ["detection-voc", "--quick", "--output-root", str(tmp_path)]
    assert reproduce.main(argv) == 0
    out = capsys.readouterr().out
    assert len(fake.commands) == 2
    assert "| mAP | 30.0 | 32.5 | +2.5 |" in out
    assert "figure: " + str(tmp_path / "detection-voc-quick" / "comparison" / "comparison.png") in out
    assert (tmp_path / "detection-voc-quick" / "comparison" / "comparison.png").is_file()
    for run in ("resnet-24w1s", "res2net-8w4s"):
        marker = json.loads((tmp_path / "detection-voc-quick" / run / FINISHED_MARKER).read_text())
        assert marker["label"] == run and marker["seconds"] >= 0

    # again: both finished, nothing runs, the same table
    assert reproduce.main(argv) == 0
    assert len(fake.commands) == 2 and "finished earlier, skipped" in capsys.readouterr().out

    # other settings in the same folders: refused rather than mixed up
    assert reproduce.main(argv + ["SOLVER.MAX_ITER", "5"]) == 1
    assert "holds a finished run with other settings" in capsys.readouterr().err


def test_started_run_needs_resume(tmp_path, monkeypatch, capsys):
    fake = FakeRuns()
    monkeypatch.setattr(reproduce.subprocess, "run", fake)
    started = tmp_path / "detection-voc-quick" / "resnet-24w1s"
    started.mkdir(parents=True)
    (started / "last_checkpoint").write_text("model_0000099.pth")
    argv = ["detection-voc", "--quick", "--output-root", str(tmp_path)]
    assert reproduce.main(argv) == 1
    err = capsys.readouterr().err
    assert str(started) in err and "--resume" in err and not fake.commands
    assert reproduce.main(argv + ["--resume"]) == 0
    assert all("--resume" in cmd for cmd in fake.commands) and len(fake.commands) == 2


def test_a_failed_run_is_reported_and_not_marked_finished(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reproduce.subprocess, "run", FakeRuns(fail=True))
    assert reproduce.main(["saliency", "--quick", "--output-root", str(tmp_path)]) == 1
    assert "failed with exit code 1" in capsys.readouterr().err
    assert not (tmp_path / "saliency-quick" / "resnet-24w1s" / FINISHED_MARKER).exists()


def test_seeds_plan_a_folder_and_a_seed_per_run(tmp_path):
    plans = plan_runs(TASKS["detection-coco"], _args("detection-coco", "--quick", "--seeds", "3", "--seed", "5",
                                                     "--output-root", str(tmp_path)))
    root = tmp_path / "detection-coco-quick"
    assert [(p.label, p.seed, p.output_dir) for p in plans] == [
        (label, seed, str(root / f"{label}-seed{seed}"))
        for seed in (5, 6, 7) for label in ("resnet-24w1s", "res2net-8w4s")]
    for p in plans:
        (cmd,) = p.commands
        assert cmd[cmd.index("SEED") + 1] == str(p.seed) and cmd[cmd.index("OUTPUT_DIR") + 1] == p.output_dir
    # one seed keeps today's folders, so runs finished before --seeds existed are still found
    single = plan_runs(TASKS["detection-coco"], _args("detection-coco", "--quick", "--output-root", str(tmp_path)))
    assert [p.output_dir for p in single] == [str(root / "resnet-24w1s"), str(root / "res2net-8w4s")]
    with pytest.raises(ValueError, match="--seeds must be at least 1"):
        plan_runs(TASKS["detection-coco"], _args("detection-coco", "--seeds", "0"))


class SeededFakeRuns(FakeRuns):
    """FakeRuns whose AP moves with SEED (training noise): seed s adds s to the baseline, 2 s to Res2Net."""

    def __call__(self, cmd, env=None):
        result = super().__call__(cmd, env)
        out, seed = cmd[cmd.index("OUTPUT_DIR") + 1], int(cmd[cmd.index("SEED") + 1])
        path = os.path.join(out, "inference", "shapes_voc_val", "voc_eval_results.json")
        data = json.loads(open(path).read())
        data["bbox"]["AP50"] += seed * (1 if "MODEL.RES2NET.SCALE" in cmd else 2)
        with open(path, "w") as f:
            json.dump(data, f)
        return result


def test_seeds_run_once_each_then_summarise_mean_std_and_delta(tmp_path, monkeypatch, capsys):
    fake = SeededFakeRuns()
    monkeypatch.setattr(reproduce.subprocess, "run", fake)
    argv = ["detection-voc", "--quick", "--output-root", str(tmp_path), "--bootstrap", "0"]
    assert reproduce.main(argv + ["--seeds", "2"]) == 0
    assert len(fake.commands) == 4
    out = capsys.readouterr().out
    # baseline AP50 30 + s, Res2Net 32.5 + 2 s over seeds 0, 1: means 30.5 / 33.5, Δ 2.5 and 3.5
    assert "| mAP | 30.5 ± 0.7 | 33.5 ± 1.4 | +3.0 ± 0.7 | - - |" in out
    summary = json.loads((tmp_path / "detection-voc-quick" / "comparison" / "seeds.json").read_text())
    (table,) = summary["tables"]
    assert summary["seeds"] == [0, 1] and table["delta_per_seed"]["res2net-8w4s"]["mAP"] == [2.5, 3.5]
    assert (tmp_path / "detection-voc-quick" / "comparison" / "seed1" / "comparison.md").is_file()
    # a third seed: the four finished runs are skipped, only seed 2's two run
    assert reproduce.main(argv + ["--seeds", "3"]) == 0
    assert len(fake.commands) == 6 and capsys.readouterr().out.count("finished earlier, skipped") == 4
    assert all("-seed2" in cmd[cmd.index("OUTPUT_DIR") + 1] for cmd in fake.commands[4:])


# Plans every run of every task (quick and full, and the torchvision engine under torchrun) with the
# package imported from wherever PYTHONPATH says; prints the package's file and the runs as JSON.
_PLAN_EVERYTHING = """
import argparse, json, sys
import res2net_det
from res2net_det import engines
from res2net_det.engines import reproduce
# Plan the Detectron2 runs too where it is not installed (planning it there stops, naming it).
engines.detectron2_available = lambda: True
runs = []
for name, task in reproduce.TASKS.items():
    for extra in ([], ["--quick"], ["--num-gpus", "2", "ENGINE", "torchvision"]):
        parser = argparse.ArgumentParser()
        reproduce.add_arguments(parser)
        args = reproduce.parse_args(parser, [name, "--output-root", sys.argv[1], *extra])
        runs += [{"commands": p.commands, "config": p.config, "env": p.env} for p in reproduce.plan_runs(task, args)]
print(json.dumps({"package": res2net_det.__file__, "runs": runs}))
"""


def test_runs_go_through_the_package_not_a_checkout(tmp_path):
    """A copy of the package outside the repository, as ``pip install .`` leaves it (the configs
    copied in, no ``tools/``), plans every run: each is ``python -m`` of a module of that copy, and
    nothing names a path of the checkout; the modules it names start there, and so does
    ``python -m res2net_det.engines.reproduce``."""
    site = tmp_path / "site"
    shutil.copytree(REPO / "res2net_det", site / "res2net_det", ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(site), PYTHONSAFEPATH="1")
    proc = subprocess.run([sys.executable, "-c", _PLAN_EVERYTHING, str(work / "out")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    planned = json.loads(proc.stdout)
    assert planned["package"].startswith(str(site))
    modules = set()
    for run in planned["runs"]:
        assert run["config"].startswith(str(site)), run["config"]
        assert run["env"]["PYTHONPATH"].split(os.pathsep)[0] == str(site)
        for cmd in run["commands"]:
            # The interpreter may live in the checkout (CI's .venv); nothing after it may.
            assert cmd[0] == sys.executable and not [a for a in cmd[1:] if str(REPO) in a], cmd
            module = cmd[cmd.index("-m", 3 if "torch.distributed.run" in cmd else 0) + 1]
            modules.add(module)
    assert modules == {TRAIN_NET, CAM_EVAL}
    for module in sorted(modules):  # the entry points run from the copy
        out = subprocess.run([sys.executable, "-m", module, "--help"], cwd=work, env=planned["runs"][0]["env"],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and "--config-file" in out.stdout, out.stderr[-3000:]
    dry = subprocess.run([sys.executable, "-m", "res2net_det.engines.reproduce", "cam", "--quick", "--dry-run"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0 and f"-m {CAM_EVAL} --config-file {site}" in dry.stdout, dry.stderr[-3000:]



def test_an_installed_package_is_not_put_on_pythonpath(monkeypatch):
    """Installed (in site-packages), the runs find the package as this process did; site-packages on
    PYTHONPATH would rank above the standard library. A checkout goes first on PYTHONPATH."""
    import site

    monkeypatch.setattr(reproduce, "PACKAGE_PARENT", site.getsitepackages()[0])
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = reproduce.run_environment()
    assert env["PYTHONPATH"] == "/elsewhere" and env["PYTHONSAFEPATH"] == "1"
    monkeypatch.setattr(reproduce, "PACKAGE_PARENT", str(REPO))
    assert reproduce.run_environment()["PYTHONPATH"] == os.pathsep.join([str(REPO), "/elsewhere"])
