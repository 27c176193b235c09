"""No import cycle among hypernode's modules (issue 17): the layers import downwards only.

Every import statement of a hypernode module counts, wherever it is: at module level, inside a
function or a class (an import deferred into a function is a cycle put off, not removed). Imports under
``if TYPE_CHECKING:`` do not count: they never run. ``from package import name`` counts as importing
the submodule ``package.name`` when there is one, else the package. A module importing its own parent
package is no edge (the parent is initialised before any of its submodules runs).

The cycles that remain are listed in :data:`ALLOWED`, each with the step that removes it; the test fails
on any other cycle, and also when an allowed one is gone, so that the list only shrinks.

A second, stricter check counts the ``TYPE_CHECKING`` imports too: a module naming another's types
depends on it as much as one calling it (the feed <-> replication tie of issue 17 was made only of such
imports and attribute reaches). Its cycles are in :data:`ALLOWED_WITH_TYPES`, under the same rule.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from collections import deque
from pathlib import Path

import hypernode

PACKAGE = Path(hypernode.__file__).parent

# Cycles (as the sets of modules of a strongly connected component) still to be broken. Each entry is
# removed by the change that breaks it; the lists end empty.
ALLOWED: list[frozenset[str]] = []
ALLOWED_WITH_TYPES: list[frozenset[str]] = []


def all_modules() -> list[str]:
    return ["hypernode"] + sorted(m.name for m in pkgutil.walk_packages([str(PACKAGE)], "hypernode."))


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ModuleNotFoundError, ValueError):
        return False


def module_imports(name: str, *, type_checking: bool = False) -> set[str]:
    """The hypernode modules ``name`` imports anywhere in its source (under TYPE_CHECKING only with
    ``type_checking``)."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, name
    tree = ast.parse(Path(spec.origin).read_text(), spec.origin)
    package = name if spec.origin.endswith("__init__.py") else name.rpartition(".")[0]
    out: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if "TYPE_CHECKING" in ast.unparse(node.test) and not type_checking:
                for stmt in node.orelse:
                    self.visit(stmt)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            out.update(alias.name for alias in node.names if alias.name.split(".")[0] == "hypernode")

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            if base.split(".")[0] != "hypernode":
                return
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if _is_module(sub) else base)

    Visitor().visit(tree)
    parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    return out - parents - {name}


def import_graph(*, type_checking: bool = False) -> dict[str, set[str]]:
    modules = all_modules()
    return {m: module_imports(m, type_checking=type_checking) & set(modules) for m in modules}


def strongly_connected(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, edges = work[-1]
            for w in edges:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.add(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def a_cycle(graph: dict[str, set[str]], component: frozenset[str]) -> list[str]:
    """One shortest cycle through the first module of ``component``: ``[a, b, ..., a]``."""
    start = min(component)
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(graph[v] & component):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if w not in previous:
                previous[w] = v
                queue.append(w)
    raise AssertionError(f"no cycle in {sorted(component)}")


def describe(graph: dict[str, set[str]], component: frozenset[str]) -> str:
    return " -> ".join(a_cycle(graph, component)) + f"   (modules: {', '.join(sorted(component))})"


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c", "x"}, "c": {"a"}, "x": set(), "d": {"d2"}, "d2": {"d"}, "e": {"a"}}
    assert sorted(sorted(c) for c in strongly_connected(graph)) == [["a", "b", "c"], ["d", "d2"]]
    assert a_cycle(graph, frozenset({"a", "b", "c"})) == ["a", "b", "c", "a"]


def test_imports_are_found_in_functions_and_not_under_type_checking() -> None:
    graph = import_graph()
    # the node imports seeds inside a function (Node.forget_drive) ...
    assert "hypernode.seeds" in graph["hypernode.node"]
    # ... and the trie names Feed only under TYPE_CHECKING
    assert "hypernode.feed" not in graph["hypernode.trie.trie"]
    assert "hypernode.feed" in import_graph(type_checking=True)["hypernode.trie.trie"]


def _check(graph: dict[str, set[str]], allowed_list: list[frozenset[str]], name: str) -> None:
    found = set(strongly_connected(graph))
    allowed = set(allowed_list)
    new = [describe(graph, c) for c in found - allowed]
    gone = [", ".join(sorted(c)) for c in allowed - found]
    assert not new, "import cycles:\n" + "\n".join(new)
    assert not gone, f"cycles no longer there: remove them from {name}:\n" + "\n".join(gone)


def test_no_import_cycle() -> None:
    _check(import_graph(), ALLOWED, "ALLOWED")


def test_no_import_cycle_counting_type_imports() -> None:
    _check(import_graph(type_checking=True), ALLOWED_WITH_TYPES, "ALLOWED_WITH_TYPES")


def test_the_feed_knows_nothing_of_peers() -> None:
    """Feed is a verified log: it imports nothing from replication or the wire, not even for types."""
    deps = module_imports("hypernode.feed", type_checking=True)
    assert not {d for d in deps if d.startswith(("hypernode.replication", "hypernode.wire"))}, deps


def test_replication_knows_nothing_of_the_store():
    """The session sees the store as a FeedSource protocol: nothing in replication (or the wire)
    imports corestore, not even for types; and the store imports nothing of the network."""
    for name in all_modules():
        if name.startswith(("hypernode.replication", "hypernode.wire")):
            assert "hypernode.corestore" not in module_imports(name, type_checking=True), name
    deps = module_imports("hypernode.corestore", type_checking=True)
    assert not {d for d in deps if d.startswith(("hypernode.replication", "hypernode.wire"))}, deps
