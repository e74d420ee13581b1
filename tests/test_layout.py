"""The package's layout (DESIGN.md "Layout", issue 25): every import, at module level or inside a
function, runs one way.

- No import cycle between modules (a module pair importing each other is the smallest cycle).
- Layers: the foundation (``errors``, ``urls``, ``progress``, ``model``, ``transcript``) imports only
  itself; ``codec`` the foundation and itself; the comparison (``volatile``, ``diff``) those and itself;
  the stages (``sources``, ``render``, ``record``, ``replay``) anything below the front ends, with no
  cycle between stage packages; the front ends (``cli``, ``pytest_plugin``, ``addons``, ``__main__``)
  anything.
- Third-party packages where they belong: click only in ``cli``, mitmproxy only in ``record`` (and the
  recorder script in ``addons``), pytest only in the pytest plugin.
- No module at the package root that belongs to a stage.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "chanlog"

#: The rank of each top-level part: a module may import parts of a rank no higher than its own.
LAYERS = {
    "__init__": 0, "errors": 0, "urls": 0, "progress": 0, "model": 0, "transcript": 0,
    "codec": 1,
    "volatile": 2, "diff": 2,
    "sources": 3, "render": 3, "record": 3, "replay": 3,
    "cli": 4, "pytest_plugin": 4, "addons": 4, "__main__": 4,
}
STAGES = {"sources", "render", "record", "replay"}
#: Third-party packages that only some parts may import.
CONFINED = {"click": {"cli"}, "mitmproxy": {"record", "addons"}, "wsproto": {"record", "addons"},
            "pytest": {"pytest_plugin"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, modules: set[str] | frozenset[str] = frozenset()) -> list[tuple[str, int]]:
    """Every absolute module an import statement in ``path`` names, with its line: ``from a import b``
    names ``a.b`` when that is one of ``modules``, else ``a``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((sub if sub in modules else base, node.lineno))
    return out


def graph() -> dict[str, dict[str, int]]:
    """``{module: {imported chanlog module: line}}`` over every module of the package."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges[name] = {}
        for target, line in imports_of(path, set(modules)):
            if target in modules and target != name and target != "chanlog":
                edges[name].setdefault(target, line)
    return edges


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def cycles(edges: dict[str, dict[str, int]] | dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_every_part_has_a_layer() -> None:
    parts = {part(m) for m in graph()}
    assert parts <= set(LAYERS), f"parts without a layer (add them to LAYERS): {sorted(parts - set(LAYERS))}"


def test_no_module_cycle() -> None:
    found = cycles(graph())
    assert not found, "modules that import each other (directly or around a cycle): " + "; ".join(
        " -> ".join(c) for c in found)


def test_imports_run_down_the_layers() -> None:
    wrong = [f"{m}:{line} imports {t}" for m, targets in graph().items() for t, line in targets.items()
             if LAYERS[part(t)] > LAYERS[part(m)]]
    assert not wrong, "reverse imports:\n" + "\n".join(wrong)


def test_stage_packages_import_one_way() -> None:
    packages: dict[str, set[str]] = {s: set() for s in STAGES}
    for m, targets in graph().items():
        for t in targets:
            if part(m) in STAGES and part(t) in STAGES and part(t) != part(m):
                packages[part(m)].add(part(t))
    assert not cycles(packages), f"stage packages import each other: {packages}"


@pytest.mark.parametrize("library", sorted(CONFINED))
def test_third_party_packages_stay_in_their_part(library: str) -> None:
    wrong = [f"{module_name(p)}:{line}" for p in PACKAGE.rglob("*.py") for target, line in imports_of(p)
             if target.split(".")[0] == library and part(module_name(p)) not in CONFINED[library]]
    assert not wrong, f"{library} imported outside {sorted(CONFINED[library])}: {wrong}"


def test_root_holds_no_stage() -> None:
    root = {p.stem for p in PACKAGE.glob("*.py")}
    assert root <= {k for k, v in LAYERS.items() if v != 3}, sorted(root)


def test_the_checks_see_a_cycle() -> None:
    """The cycle finder finds the smallest cycle (two modules importing each other) and a longer one."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
