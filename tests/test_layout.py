"""The import graph of yololab: no cycle, and every import runs down the chain of docs/design.md.

Every ``import`` statement counts, those inside functions too: an import moved into a function still ties the
two modules together (it only hides the cycle from Python at import time).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Layers, lowest first: a module may import modules of a lower layer, and modules of its own package.
LAYERS = [
    {"yololab", "yololab.errors", "yololab.fileio", "yololab.progress", "yololab._cli_group"},  # import nothing of ours
    {"yololab.nn", "yololab.ops"},
    {"yololab.models", "yololab.data"},
    {"yololab.checkpoint"},
    {"yololab.engine"},
    {"yololab.detect", "yololab.classify", "yololab.video", "yololab.translate"},
    {"yololab.deploy", "yololab.analysis", "yololab.study"},
    {"yololab.cli", "yololab.demo"},  # and every <package>.cli module
]
# The one import up the chain: yololab.models.build_model (a facade in the package's __init__) is the
# checkpoint-aware builder, resolved on first use (docs/design.md, "Dependency rules").
ALLOWED_UP = {("yololab.models", "yololab.checkpoint.load")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "yololab").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    """module -> the yololab modules it imports (a name imported from a package that is a module counts as it)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        targets = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    targets.add(sub if sub in modules else node.module)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def layer(module: str) -> int:
    if module.endswith(".cli"):
        return len(LAYERS) - 1
    for i, packages in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in packages if p != "yololab") or module == "yololab":
            return i
    raise AssertionError(f"{module}: its package has no layer; add it to LAYERS here and to docs/design.md")


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_every_module_has_a_layer():
    for module in import_graph():
        layer(module)


def test_imports_run_down_the_chain():
    wrong = []
    for module, targets in import_graph().items():
        for target in targets:
            same_package = _package(module) == _package(target) and module != "yololab"
            if not (same_package or layer(target) < layer(module) or (module, target) in ALLOWED_UP):
                wrong.append(f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})")
    assert not wrong, "imports against the chain of docs/design.md:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle():
    graph = import_graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checks_see_what_they_check():
    """The graph is real: known edges are found, function-level imports included, TYPE_CHECKING ones not."""
    graph = import_graph()
    assert "yololab.checkpoint.load" in graph["yololab.models"]  # inside __getattr__
    assert "yololab.models.registry" in graph["yololab.checkpoint.load"]
    assert "yololab.analysis.summary" in graph["yololab.models.cli"]  # inside a command function
    assert "yololab.models.base" not in graph["yololab.models.registry"]  # TYPE_CHECKING only
    assert layer("yololab.data.cli") == layer("yololab.cli") > layer("yololab.deploy.runtime")
