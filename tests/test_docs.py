"""The README and docs/*.md stay true: every relative link points at a file, every
`tools/X.py --flag` is a flag that the tool's --help lists, and every config they name ships."""
import contextlib
import io
import re
import runpy
import sys
from functools import lru_cache

import pytest

from res2net_det.model_zoo import list_configs
from tests.helpers import REPO

DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
TOOL_CALL = re.compile(r"(?<![\w$/.-])tools/(\w+)\.py((?:[ \t]+(?:\\\n)?[^\s`|;#)]+)*)")
CONFIG = re.compile(r"(?<![\w/.-])configs/([\w/.-]+\.yaml)")
FLAG = re.compile(r"(?<![\w-])(--[a-z][\w-]*)")


@lru_cache(maxsize=None)
def tool_help(tool: str, subcommand: str = "") -> str:
    """What ``python tools/<tool>.py [subcommand] --help`` prints (run in this process: fast)."""
    path = REPO / "tools" / f"{tool}.py"
    out = io.StringIO()
    argv = sys.argv
    sys.argv = [str(path), *([subcommand] if subcommand else []), "--help"]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            runpy.run_path(str(path), run_name="__main__")
    except SystemExit as e:
        if e.code not in (0, None):
            return ""
    finally:
        sys.argv = argv
    return out.getvalue()


def _calls(text: str):
    """``(tool, arguments)`` of every ``tools/X.py ...`` on one line (a backslash continues it)."""
    for match in TOOL_CALL.finditer(text):
        yield match.group(1), match.group(2).replace("\\\n", " ").split()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_at_files(doc):
    broken = []
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        if not (doc.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{doc.name} links to missing files: {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_tool_flags_are_in_the_tools_help(doc):
    problems = []
    for tool, args in _calls(doc.read_text(encoding="utf-8")):
        if not (REPO / "tools" / f"{tool}.py").is_file():
            problems.append(f"tools/{tool}.py does not exist")
            continue
        subcommand = args[0] if args and re.fullmatch(r"[a-z][\w-]*", args[0]) else ""
        helptext = tool_help(tool, subcommand) if subcommand and tool_help(tool, subcommand) else tool_help(tool)
        for flag in (f for a in args for f in FLAG.findall(a.split("=")[0])):
            if flag not in helptext:
                problems.append(f"tools/{tool}.py {subcommand} {flag}".replace("  ", " "))
    assert not problems, f"{doc.name} names flags the tools' --help does not list: {sorted(set(problems))}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_named_configs_ship(doc):
    shipped = set(list_configs())
    missing = sorted({name for name in CONFIG.findall(doc.read_text(encoding="utf-8"))
                      if name not in shipped and not (REPO / "configs" / name).is_file()})
    assert not missing, f"{doc.name} names configs that are not shipped: {missing}"


def test_the_checks_see_what_they_check(tmp_path):
    """The patterns find links, tool flags and configs (so an empty result means a clean doc)."""
    text = ("see [x](docs/missing.md) and `python tools/train_net.py --config-file configs/quickstart.yaml "
            "--no-such-flag` or tools/benchmark.py backbone --batch 2")
    assert LINK.findall(text) == ["docs/missing.md"]
    calls = list(_calls(text))
    assert calls[0][0] == "train_net" and "--no-such-flag" in calls[0][1]
    assert "--no-such-flag" not in tool_help("train_net") and "--config-file" in tool_help("train_net")
    assert "--batch" in tool_help("benchmark", "backbone")
    assert CONFIG.findall(text) == ["quickstart.yaml"]
