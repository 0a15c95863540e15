"""The package's layers, read from the code: every import runs down the order written in the
README's Layout section, no import of our own hides inside a function, no module loads another
by a string, and no two modules import each other (directly or round a circle).

The test reads the source with ``ast`` and runs nothing, so a violation fails here, naming the
file and line, before it can fail anywhere else.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "res2net_det"

# Bottom to top. A module may import its own layer or one below. The package root and the model
# zoo build models and find configs by name, so they stand with config/.
LAYERS: List[Tuple[str, ...]] = [
    ("utils",),
    ("modeling",),
    ("data",),
    ("evaluation",),
    ("config", "<root>", "model_zoo"),
    ("engines",),
]
RANK: Dict[str, int] = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
ENGINES = ("engines.detectron2", "engines.torchvision")
# (importer, imported): the only imports of ours allowed inside a function, each with its reason.
DEFERRED_IMPORTS = {
    # The one place that picks the engine imports it once chosen: Detectron2 is optional, and a
    # torchvision run should not pay for importing Detectron2's adapters (nor the reverse).
    (f"{PACKAGE}.engines", f"{PACKAGE}.engines.detectron2.train_net"),
    (f"{PACKAGE}.engines", f"{PACKAGE}.engines.torchvision.train_net"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> str:
    """``res2net_det.data.coco`` -> ``data``; the package itself -> ``<root>``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> Optional[str]:
    if node.level == 0:
        return node.module
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path) -> Iterator[Tuple[str, int, bool]]:
    """``(imported module, line, inside a function)`` for every import of our package in ``path``;
    ``from pkg import name`` yields ``pkg.name`` when that is a module of ours."""
    importer = _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
    nested = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(importer, path.name == "__init__.py", node)
            if base is None:
                continue
            targets = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if _is_module(sub) else base)
        else:
            continue
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                yield target, node.lineno, id(node) in nested


def _is_module(dotted: str) -> bool:
    path = REPO.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _package_files() -> List[Path]:
    return sorted((REPO / PACKAGE).rglob("*.py"))


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(REPO)}:{line}"


def layer_violations(files: Optional[List[Path]] = None) -> List[str]:
    """Every import that runs against the layers, hides in a function, or crosses engines."""
    problems = []
    for path in files or _package_files():
        importer = _module_name(path)
        src_layer = _layer(importer)
        for target, line, in_function in _imports(path):
            dst_layer = _layer(target)
            if in_function and (importer, target) not in DEFERRED_IMPORTS:
                problems.append(f"{_where(path, line)}: imports {target} inside a function (import it at the top)")
            if src_layer == "utils" and dst_layer != "utils":
                problems.append(f"{_where(path, line)}: utils/ holds leaves only, but this imports {target}")
            elif RANK.get(dst_layer, 0) > RANK.get(src_layer, 0):
                problems.append(
                    f"{_where(path, line)}: {src_layer} imports {target} ({dst_layer}), a layer above it"
                )
            for engine in ENGINES:
                other = [e for e in ENGINES if e != engine][0]
                if importer.startswith(f"{PACKAGE}.{engine}") and target.startswith(f"{PACKAGE}.{other}"):
                    problems.append(f"{_where(path, line)}: {engine} imports the other engine ({target})")
    return problems


def string_imports(files: Optional[List[Path]] = None) -> List[str]:
    """Modules loaded by name at run time (``importlib.import_module``, ``__import__``)."""
    problems = []
    for path in files or _package_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in ("import_module", "__import__"):
                    problems.append(f"{_where(path, node.lineno)}: loads a module by name ({name}); import it")
    return problems


def import_cycles(files: Optional[List[Path]] = None) -> List[str]:
    """Circles of modules importing each other (package ``__init__`` files excluded: importing a
    submodule always runs its package's ``__init__`` first, which is not a cycle of ours)."""
    files = files or _package_files()
    graph: Dict[str, Set[str]] = {}
    for path in files:
        if path.name == "__init__.py":
            continue
        graph[_module_name(path)] = {t for t, _, _ in _imports(path)}
    cycles, state = [], {}

    def visit(node: str, stack: List[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_imports_follow_the_layers():
    problems = layer_violations()
    assert not problems, "imports against the layer order (README, Layout):\n" + "\n".join(problems)


def test_no_module_is_loaded_by_name():
    problems = string_imports()
    assert not problems, "\n".join(problems)


def test_no_import_cycles():
    cycles = import_cycles()
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


# (importer, Detectron2 module): the only imports of Detectron2 outside engines/detectron2, each
# inside a function (only when called), with its reason.
DETECTRON2_OUTSIDE_ENGINE = {
    # model_zoo.get_config("lazy/NAME.py") returns the loaded LazyConfig as Detectron2's own
    # model_zoo.get_config does: LazyConfig.load is the only reader of those files. It needs nothing
    # of our engine (the file imports it), and says that Detectron2 is missing otherwise.
    (f"{PACKAGE}.model_zoo", "detectron2.config"),
}


def test_only_the_detectron2_engine_imports_detectron2():
    problems = []
    for path in _package_files():
        importer = _module_name(path)
        if importer.startswith(f"{PACKAGE}.engines.detectron2"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        deferred = {id(n) for f in functions for n in ast.walk(f) if n is not f}
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            problems += [f"{_where(path, node.lineno)}: imports {n}" for n in names if n.split(".")[0] == "detectron2"
                         and not (id(node) in deferred and (importer, n) in DETECTRON2_OUTSIDE_ENGINE)]
    assert not problems, "Detectron2 is optional; only engines/detectron2 may import it:\n" + "\n".join(problems)


# ------------------------------------------------------------------ the checks can fail
@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A throw-away copy of the layout with one file per layer, to show each check failing."""
    root = tmp_path / PACKAGE
    for sub in ("utils", "modeling", "data", "engines", "engines/torchvision", "engines/detectron2"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    monkeypatch.setitem(globals(), "REPO", tmp_path)
    return root


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.write_text(text)
    return path


def test_an_upward_import_fails_naming_file_and_line(fake_package):
    _write(fake_package, "data/reader.py", "")
    bad = _write(fake_package, "modeling/net.py", "import os\n\nfrom ..data import reader\n")
    problems = layer_violations([bad])
    assert problems == [f"{PACKAGE}/modeling/net.py:3: modeling imports {PACKAGE}.data.reader (data), a layer above it"]


def test_a_utils_import_of_the_package_fails(fake_package):
    _write(fake_package, "modeling/net.py", "")
    bad = _write(fake_package, "utils/helper.py", "from ..modeling.net import x\n")
    assert "utils/ holds leaves only" in layer_violations([bad])[0]


def test_an_import_inside_a_function_fails(fake_package):
    _write(fake_package, "utils/helper.py", "")
    bad = _write(fake_package, "data/reader.py", "def f():\n    from ..utils import helper\n")
    assert layer_violations([bad]) == [
        f"{PACKAGE}/data/reader.py:2: imports {PACKAGE}.utils.helper inside a function (import it at the top)"
    ]


def test_a_cross_engine_import_fails(fake_package):
    _write(fake_package, "engines/detectron2/trainer.py", "")
    bad = _write(fake_package, "engines/torchvision/trainer.py", "from ..detectron2 import trainer\n")
    assert "imports the other engine" in layer_violations([bad])[0]


def test_a_cycle_and_a_string_import_fail(fake_package):
    a = _write(fake_package, "data/a.py", "from . import b\n")
    b = _write(fake_package, "data/b.py", "from . import a\nimport importlib\nimportlib.import_module('x')\n")
    assert import_cycles([a, b]) == [f"{PACKAGE}.data.a -> {PACKAGE}.data.b -> {PACKAGE}.data.a"]
    assert len(string_imports([b])) == 1


def test_a_downward_import_passes(fake_package):
    _write(fake_package, "modeling/net.py", "")
    good = _write(fake_package, "data/reader.py", "from ..modeling import net\nfrom ..utils import helper\n")
    _write(fake_package, "utils/helper.py", "")
    assert layer_violations([good]) == []
