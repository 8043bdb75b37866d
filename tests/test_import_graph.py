"""The import graph of finrl_lite: layers import only downwards, and no module imports itself in a circle.

Imports are read with ``ast`` from every module, function-local ones included (they run when the function
does); an import of a package's name that is a submodule counts as an import of that submodule. Imports
under ``if TYPE_CHECKING:`` never run, so they count for the layering but not for the circles.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "finrl_lite"


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module (a package is its ``__init__.py``)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` blocks."""
    nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                nodes.update(id(n) for n in ast.walk(stmt))
    return nodes


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module ``name`` is in (``name`` itself, or its nearest parent that is a module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(runtime_only: bool) -> dict[str, set[str]]:
    """Module -> the finrl_lite modules it imports (without TYPE_CHECKING imports when ``runtime_only``)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _type_checking_nodes(tree) if runtime_only else set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str | None] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                deps.update(_owner(a.name, modules) for a in node.names if a.name.split(".")[0] == "finrl_lite")
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.split(".")[0] != "finrl_lite":
                    continue
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    deps.add(sub if sub in modules else _owner(source, modules))
        deps.discard(name)
        deps.discard(None)
        graph[name] = {d for d in deps if d is not None}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_function_local_and_relative_imports() -> None:
    graph = import_graph(runtime_only=True)
    assert "finrl_lite.envs.fused_kernel" in graph["finrl_lite.envs.fused_step"]  # imported inside _kernel()
    assert "finrl_lite.train.melo" in graph["finrl_lite.cli.melo"]  # imported inside the command
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_envs_import_nothing_from_agents_or_train() -> None:
    graph = import_graph(runtime_only=False)
    upward = sorted(
        (module, dep)
        for module, deps in graph.items()
        if module.startswith("finrl_lite.envs")
        for dep in deps
        if dep.startswith(("finrl_lite.agents", "finrl_lite.train", "finrl_lite.trade", "finrl_lite.cli"))
    )
    assert upward == []


def test_no_import_cycle() -> None:
    assert cycles(import_graph(runtime_only=True)) == []
