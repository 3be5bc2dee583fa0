"""The house has no import cycles, and its layers import only downwards.

The graph counts every import of a fragsim module, at the top of a file or inside a
function (a late import is still a dependency), except those under ``if
TYPE_CHECKING:`` (annotations only) and imports of the package ``sim`` itself (its
``__init__`` runs before any of its modules anyway).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sim", "workloads")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, modules: set[str]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in PACKAGES:
                found.add(node.module)
                for alias in node.names:  # from sim import metrics: the module
                    if f"{node.module}.{alias.name}" in modules:
                        found.add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] in PACKAGES)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).glob("*.py"))]
    modules = {_module_name(p) for p in paths}
    graph = {}
    for path in paths:
        name = _module_name(path)
        deps = _imports(ast.parse(path.read_text(encoding="utf-8")), modules)
        graph[name] = {d for d in deps if d in modules and d != name and d != "sim"}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_the_graph_sees_late_imports_and_skips_type_checking_ones():
    tree = ast.parse("from typing import TYPE_CHECKING\n"
                     "if TYPE_CHECKING:\n    from sim.buddy import Zone\n"
                     "def f():\n    from sim.runner import run\n"
                     "from sim import metrics\n")
    assert _imports(tree, {"sim.metrics", "sim.runner"}) == {"sim.runner", "sim",
                                                              "sim.metrics"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_sim_and_workloads_have_no_import_cycle():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(("module", "allowed"), [
    ("sim.config", {"sim.units", "sim.errors"}),
    ("sim.units", set()),
    ("sim.stats", set()),
    ("sim.plots", {"sim.results", "sim.stats", "sim.units", "sim.errors"}),
    ("sim.buddy", {"sim.migratetype", "sim.native"}),
    ("sim.readahead", set()),
])
def test_a_layer_imports_only_what_is_below_it(module, allowed):
    assert import_graph()[module] <= allowed, import_graph()[module] - allowed
