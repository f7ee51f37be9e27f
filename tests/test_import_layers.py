"""The import layers hold, and no project module imports itself back through others.

Layers (every import counts, also one inside a function body):

* ``models`` imports nothing from ``toolchain`` or ``backends``;
* ``toolchain.ir`` imports only ``models`` and itself;
* ``backends`` import only ``models`` and ``toolchain.ir`` from the project;
* the rest of ``toolchain`` may import all three.

And the graph of project modules (an edge for every import of one module by another;
importing ``a.b`` is an edge to ``a.b``, not to the package ``a``) has no cycle.
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "toolchain", "backends")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The project module an imported name refers to (``a.b.c`` may be a module or a name in ``a.b``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str) -> set[str]:
    """Project modules that ``module`` imports anywhere in its source."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {m for m in map(_resolve, names) if m is not None and m != module}
    return found


GRAPH = nx.DiGraph([(m, dep) for m in MODULES for dep in _imports(m)])
GRAPH.add_nodes_from(MODULES)


def _layer(module: str) -> str:
    if module == "toolchain.ir" or module.startswith("toolchain.ir."):
        return "toolchain.ir"
    return module.split(".")[0]


ALLOWED = {"models": {"models"}, "toolchain.ir": {"models", "toolchain.ir"},
           "backends": {"models", "toolchain.ir", "backends"},
           "toolchain": {"models", "toolchain.ir", "toolchain", "backends"}}


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(layer):
    bad = sorted(f"{a} imports {b}" for a, b in GRAPH.edges
                 if _layer(a) == layer and _layer(b) not in ALLOWED[layer])
    assert not bad, "; ".join(bad)


def test_no_project_module_imports_itself_back_through_others():
    cycles = list(nx.simple_cycles(GRAPH))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c + [c[0]]) for c in cycles[:10])


def test_the_checker_sees_imports_inside_function_bodies():
    assert "toolchain.checkpoint" in _imports("toolchain.methods")  # imported inside for_file
