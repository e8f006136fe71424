"""The layers only point down, and no module imports itself round a circle.

Bottom to top: ``base`` (errors, settings, shared facts); ``models`` (registry, fetch,
sidecars); ``core`` (the engine); the edges ``ui``, ``api``, ``batch``, ``benchmark``,
``serving`` (Ray Serve) and the ``variants`` build tool side by side; ``app.py``. Every import counts, those
inside functions too, so a late import cannot hide a circle. Read from the source
with ``ast``: nothing is imported to check it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from benchmark.server import ROOT

LAYER = {
    "base": 0,
    "models": 1,
    "core": 2,
    "ui": 3,
    "api": 3,
    "batch": 3,
    "benchmark": 3,
    "variants": 3,
    "serving": 3,
    "app": 4,
}
#: Edges that may use another edge: the WebUI's Benchmark tab runs the benchmark (only when enabled).
SIDEWAYS = {("ui", "benchmark")}
#: Entry points sit on top, like app.py: ``python -m models`` builds variants; ``serve run`` imports
#: ``serving.app`` (the REST ingress joins ``api``'s routes to ``serving``'s engine).
ENTRY_POINTS = {"models.__main__", "benchmark.__main__", "serving.app"}


def product_modules() -> dict[str, Path]:
    modules = {"app": ROOT / "app.py"}
    for package in LAYER:
        folder = ROOT / package
        if folder.is_dir():
            for path in folder.rglob("*.py"):
                parts = path.relative_to(ROOT).with_suffix("").parts
                modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports_of(path: Path, name: str, modules: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Every module ``path`` imports, at any depth of the code (absolute names).

    ``from pkg import sub`` counts as importing ``pkg.sub`` where that is one of ``modules``.
    """
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return found


MODULES = product_modules()
GRAPH = {
    name: {m for m in imports_of(path, name, set(MODULES)) if m in MODULES and m != name}
    for name, path in sorted(MODULES.items())
}


def layer_of(module: str) -> tuple[str, int]:
    if module in ENTRY_POINTS:
        return module, LAYER["app"]
    top = module.split(".")[0]
    return top, LAYER[top]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    package, level = layer_of(module)
    for imported in GRAPH[module]:
        other, other_level = layer_of(imported)
        if other == package or imported.split(".")[0] == package:
            continue
        assert other_level < level or (package, other) in SIDEWAYS, f"{module} imports {imported} (a layer up or aside)"


def test_no_import_cycles() -> None:
    """A depth-first search over every import (late ones included) finds no way back."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for imported in sorted(GRAPH[module]):
            assert state.get(imported) != "open", " -> ".join([*path[path.index(imported) :], imported])
            if imported not in state:
                visit(imported)
        path.pop()
        state[module] = "done"

    for module in GRAPH:
        if module not in state:
            visit(module)


def test_product_never_uses_tests() -> None:
    for module, path in MODULES.items():
        assert not any(m == "tests" or m.startswith("tests.") for m in imports_of(path, module)), module
        text = path.read_text()
        for needle in ('"tests"', "'tests'", "tests/"):
            assert needle not in text, f"{module} names {needle}"


def test_the_layers_are_all_there() -> None:
    """Every top-level package of the product has a layer (a new one must be placed)."""
    packages = {name.split(".")[0] for name in MODULES}
    assert packages == set(LAYER), packages
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "research"}
    assert on_disk <= set(LAYER), on_disk - set(LAYER)
