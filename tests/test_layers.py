"""The import graph keeps its shape: every import points down a layer, and no modules import each other.

Layers, bottom to top (README "Architecture", issue 16):
- core (`monitor.core`): imports nothing else of ours;
- `connectors`, `models`, `alerts`, `monitor.detection`: core and their own package only;
- `monitor.reports`: core and detection;
- the top (`monitor.config`, `daemon`, `pipeline`, `polling`, `replay`, `demo*`, `logs`, `web`,
  `cli`): anything below; these are the only places that wire parts together.

Imports are read from the source with `ast`, so the test needs nothing imported and names the file
and line of each offending import. Function-local imports count for both checks; imports under
`if TYPE_CHECKING:` count for the layers but not for cycles (they never run).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("monitor", "connectors", "models", "alerts")

# group -> the groups it may import (besides itself)
CORE = "monitor.core"
ALLOWED: dict[str, set[str]] = {
    CORE: set(),
    "connectors": {CORE},
    "models": {CORE},
    "alerts": {CORE},
    "monitor.detection": {CORE},
    "monitor.reports": {CORE, "monitor.detection"},
    "top": {CORE, "connectors", "models", "alerts", "monitor.detection", "monitor.reports"},
}


def group(module: str) -> str:
    if module == "monitor" or module == CORE or module.startswith(CORE + "."):
        return CORE  # `monitor/__init__.py` is empty: importing `monitor.core.x` runs it
    for name in ("connectors", "models", "alerts", "monitor.detection", "monitor.reports"):
        if module == name or module.startswith(name + "."):
            return name
    return "top"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: Path
    line: int
    typing_only: bool = False  # under `if TYPE_CHECKING:`: never runs, so it cannot make an import cycle

    def __str__(self) -> str:
        where = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{where}:{self.line}: {self.source} -> {self.target}"


def module_files() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imports(module: str, path: Path, known: set[str]) -> list[Edge]:
    """Our modules that `module` imports; `from a import b` names a.b when b is a module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    edges: list[Edge] = []
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    typing_lines = {n.lineno for block in ast.walk(tree) if isinstance(block, ast.If)
                    and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                    for stmt in block.body for n in ast.walk(stmt) if hasattr(n, "lineno")}
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != module:
                edges.append(Edge(module, target, path, node.lineno, node.lineno in typing_lines))
    return edges


def graph() -> list[Edge]:
    modules = module_files()
    known = set(modules)
    return [edge for module, path in modules.items() for edge in imports(module, path, known)]


def test_every_import_points_down_a_layer() -> None:
    upward = [str(e) for e in graph()
              if (src := group(e.source)) != (dst := group(e.target)) and dst not in ALLOWED[src]]
    assert not upward, "imports that go up a layer or across to a sibling:\n" + "\n".join(upward)


def edges_with_packages() -> list[Edge]:
    """The graph plus, for `import a.b.c`, the packages a and a.b it runs first (unless the importer is inside them)."""
    edges = [e for e in graph() if not e.typing_only]
    known = set(module_files())
    extra = []
    for e in edges:
        parent = e.target.rpartition(".")[0]
        while parent:
            if parent in known and parent != e.source and not e.source.startswith(parent + "."):
                extra.append(Edge(e.source, parent, e.path, e.line))
            parent = parent.rpartition(".")[0]
    return edges + extra


def cycles(edges: list[Edge]) -> list[list[Edge]]:
    """The edges inside each group of modules that import each other (Tarjan's strongly connected components)."""
    out: dict[str, set[str]] = {}
    for e in edges:
        out.setdefault(e.source, set()).add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(out.get(module, ())):
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(component)

    for module in sorted(out):
        if module not in index:
            connect(module)
    return [sorted({e for e in edges if e.source in c and e.target in c}, key=str) for c in components]


def test_no_import_cycles() -> None:
    found = cycles(edges_with_packages())
    report = "\n\n".join("\n".join(str(e) for e in cycle) for cycle in found)
    assert not found, f"modules that import each other (file:line: importer -> imported):\n{report}"


def test_the_checker_sees_an_upward_import_and_a_cycle(tmp_path: Path) -> None:
    """The graph reader resolves `from a import b` to the module a.b, so the checks above can fail."""
    edges = imports("monitor.core.queue", ROOT / "monitor/core/queue.py", set(module_files()))
    assert all(group(e.target) == CORE for e in edges)
    fake = tmp_path / "x.py"
    fake.write_text("from monitor.web import app\nimport alerts.routing\n", encoding="utf-8")
    targets = {e.target for e in imports("monitor.core.x", fake, set(module_files()))}
    assert targets == {"monitor.web.app", "alerts.routing"}
    assert "monitor.web.app" not in ALLOWED[CORE] and group("monitor.web.app") == "top"
    a, b = (Edge("p.a", "p.b", fake, 1), Edge("p.b", "p.a", fake, 2))
    assert cycles([a, b, Edge("p.b", "p.c", fake, 3)]) == [[a, b]]
