"""The layout as tests: which package, and which part of audiostory_core, may import which; no long functions.

Read from the source with ``ast`` (nothing is imported or run): every ``import``/``from ... import`` in a module,
wherever it stands (top level, inside a function, under ``TYPE_CHECKING``), and ``importlib.import_module`` with
a literal name. A failure lists every offender, so one run shows the whole of what is to be fixed.
"""
from __future__ import annotations

import ast
import fnmatch
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("audiostory_core", "dubkit", "workflows")

#: package -> the other packages it may import (workflows -> dubkit -> audiostory_core).
PACKAGE_MAY_IMPORT = {
    "audiostory_core": set(),
    "dubkit": {"audiostory_core"},
    "workflows": {"dubkit", "audiostory_core"},
}

#: Inside audiostory_core: module (relative to the package, "" is the package itself) -> group; the first
#: pattern that matches wins, so the exact names come before the wildcards of their folder.
CORE_GROUPS = [
    ("errors", "foundation"), ("timing", "foundation"), ("tracks", "foundation"), ("audio", "foundation"), ("request", "foundation"),
    ("embeddings", "foundation"), ("minilm", "foundation"), ("plan.types", "foundation"), ("cache", "foundation"), ("device", "foundation"),
    ("plan.base", "seams"), ("render.base", "seams"),
    ("models", "models"), ("models.*", "models"),
    ("analysis", "analysis"),
    ("music.types", "foundation"), ("music", "music"), ("music.*", "music"),
    ("render", "render"), ("render.*", "render"),
    ("assemble", "assembly"),
    ("plan", "planners"), ("plan.*", "planners"),
    ("continuation", "continuation"),
    ("pipeline", "pipeline"),
    ("train", "training"), ("train.*", "training"),
    ("", "package"),
]

#: group -> the groups its modules may import besides their own: the allowed directions, low layers first.
#: foundation = audio helpers, timing, errors, request and plan types; seams = the Planner/Renderer protocols.
CORE_MAY_IMPORT = {
    "foundation": set(),
    "seams": {"foundation"},
    "models": {"foundation"},
    "analysis": {"foundation"},
    "music": {"foundation"},
    "render": {"foundation", "seams", "models", "music"},
    "assembly": {"foundation", "seams"},
    "planners": {"foundation", "seams", "models", "analysis", "music"},
    "continuation": {"foundation", "seams", "models", "analysis", "music", "render", "assembly", "planners"},
    "pipeline": {"foundation", "seams", "models", "analysis", "music", "render", "assembly", "planners",
                 "continuation"},
    "training": {"foundation", "models", "render"},
    "package": {"foundation", "seams", "models", "analysis", "music", "render", "assembly", "planners",
                "continuation", "pipeline"},
}

MAX_FUNCTION_LINES = 60  # every function must be shorter than this


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=None)
def _modules() -> dict[str, Path]:
    """Every module of the three packages, by dotted name."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out[_module_name(path)] = path
    return out


def _imports_of(source: str, module: str, *, is_package: bool, known: set[str] | frozenset = frozenset()) -> set[str]:
    """The dotted names ``module`` imports. ``from a import b`` counts as ``a.b`` when that is a module in
    ``known`` (a submodule), else as ``a``; relative imports are resolved against ``module``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                here = here[: len(here) - (node.level - 1)]
                base = ".".join(here + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    return found


@lru_cache(maxsize=None)
def _graph() -> dict[str, frozenset[str]]:
    """module -> the modules of the three packages it imports."""
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        deps = _imports_of(path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py",
                           known=known)
        graph[name] = frozenset(d for d in deps if d.split(".")[0] in PACKAGES and d != name)
    return graph


def _core_group(module: str) -> str | None:
    rel = module[len("audiostory_core"):].lstrip(".")
    return next((group for pattern, group in CORE_GROUPS if fnmatch.fnmatchcase(rel, pattern)), None)


def test_the_import_reader_resolves_relative_and_submodule_imports():
    known = {"audiostory_core.models.dit", "audiostory_core.errors"}
    src = ("from ..errors import CheckpointError\nfrom . import dit\nimport numpy\n"
           "def f():\n    from audiostory_core.models import nothing_here\n"
           "    return importlib.import_module('dubkit.api')\n")
    assert _imports_of(src, "audiostory_core.models.audiostory", is_package=False, known=known) == {
        "audiostory_core.errors", "audiostory_core.models.dit", "audiostory_core.models", "numpy", "dubkit.api"}
    assert _imports_of("from .dit import X", "audiostory_core.models", is_package=True) == {
        "audiostory_core.models.dit"}


def test_packages_import_only_downwards():
    graph = _graph()
    assert {m.split(".")[0] for m in graph} == set(PACKAGES)
    uses = {(m.split(".")[0], d.split(".")[0]) for m, deps in graph.items() for d in deps}
    assert ("dubkit", "audiostory_core") in uses and ("workflows", "dubkit") in uses  # the reader sees imports
    bad = sorted(f"{m} imports {d}" for m, deps in graph.items() for d in deps
                 if d.split(".")[0] != m.split(".")[0] and d.split(".")[0] not in PACKAGE_MAY_IMPORT[m.split(".")[0]])
    assert not bad, "imports against workflows -> dubkit -> audiostory_core:\n  " + "\n  ".join(bad)


def test_the_layer_table_is_consistent():
    groups = {g for _, g in CORE_GROUPS}
    assert groups == set(CORE_MAY_IMPORT)
    for group, allowed in CORE_MAY_IMPORT.items():
        assert allowed <= groups and group not in allowed
        for other in allowed:  # a direction, not a cycle
            assert group not in CORE_MAY_IMPORT[other], f"{group} and {other} may import each other"


def test_audiostory_core_layers_import_only_downwards():
    graph = _graph()
    core = sorted(m for m in graph if m.split(".")[0] == "audiostory_core")
    unplaced = [m for m in core if _core_group(m) is None]
    assert not unplaced, f"modules with no group in CORE_GROUPS (add them): {unplaced}"
    bad = []
    for module in core:
        group = _core_group(module)
        for dep in sorted(graph[module]):
            if dep.split(".")[0] != "audiostory_core":
                continue
            dep_group = _core_group(dep)
            if dep_group != group and dep_group not in CORE_MAY_IMPORT[group]:
                bad.append(f"{module} ({group}) imports {dep} ({dep_group})")
    assert not bad, "imports up the layers of audiostory_core:\n  " + "\n  ".join(bad)


def test_every_function_is_shorter_than_60_lines():
    """From the ``def`` line to the last line of the body (decorators not counted), methods and nested ones too."""
    seen, long = 0, []
    for path in _modules().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                seen += 1
                lines = node.end_lineno - node.lineno + 1
                if lines >= MAX_FUNCTION_LINES:
                    long.append((lines, f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)"))
    assert seen > 100  # the walk reached the code
    assert not long, (f"functions of {MAX_FUNCTION_LINES} lines or more:\n  "
                      + "\n  ".join(text for _, text in sorted(long, reverse=True)))
