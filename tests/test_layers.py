"""The house's arrows point one way: no import cycle between robustinv's packages, the light layers stay light.

Counted as `../shared/tools/import_cycles.py` counts: every import at any depth (inside
functions too) except under `if TYPE_CHECKING:`; a unit is a top-level package or module of
robustinv.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "robustinv"
# Units whose modules must never import the torch-bound layers (the gate, the reports, the store read records only).
LIGHT = {"records", "store", "gating", "report", "stats", "sequential", "tomlfile", "files", "text", "errors"}
HEAVY = {"attacks", "models", "training", "run", "measures", "interpret", "inversion", "data", "jobs", "api",
         "gradient", "runtime", "metrics"}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(node) for branch in ast.walk(tree)
               if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
               for statement in branch.body for node in ast.walk(statement)}
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("robustinv.")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            if base.startswith("robustinv"):
                found.add(base)
                found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name != "robustinv"}


def _graph() -> dict[str, dict[str, str]]:
    """unit → {unit it imports: one file that does}."""
    units = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    graph: dict[str, dict[str, str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _unit(_module(path))
        for target in map(_unit, _imports(path)):
            if source != target and "__init__" not in (source, target) and target in units:
                graph.setdefault(source, {}).setdefault(target, str(path.relative_to(PACKAGE.parent)))
    return graph


def _reaches(graph: dict[str, dict[str, str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        unit = todo.pop()
        for nxt in graph.get(unit, {}):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def test_no_import_cycle_between_packages() -> None:
    graph = _graph()
    cycles = sorted(f"{a} -> {b} ({file}) and back" for a, targets in graph.items() for b, file in targets.items()
                    if _reaches(graph, b, a))
    assert cycles == []


def test_light_layers_import_no_torch_bound_layer() -> None:
    graph = _graph()
    crossings = sorted(f"{unit} -> {target} ({file})" for unit in LIGHT for target, file in graph.get(unit, {}).items()
                       if target in HEAVY)
    assert crossings == []


def test_no_library_imports_a_job_or_a_command() -> None:
    graph = _graph()
    callers = sorted(f"{unit} -> {target}" for unit, targets in graph.items() for target in targets
                     if target in {"jobs", "commands", "cli"} and unit not in {"commands", "cli", "jobs"})
    assert callers == []
