"""The top-level API: ``from hypernode import Feed, Corestore, ...`` and every error type, loaded lazily
(``import hypernode`` alone imports no subpackage), with no import cycle through the package."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import hypernode

PACKAGE = Path(hypernode.__file__).parent


def test_every_name_in_all_imports():
    assert set(hypernode.__all__) == set(hypernode._EXPORTS)
    assert len(hypernode.__all__) == len(set(hypernode.__all__))
    for name in hypernode.__all__:
        value = getattr(hypernode, name)
        assert value.__name__ == name
        assert value.__module__.startswith("hypernode.")
    namespace: dict[str, object] = {}
    exec("from hypernode import *", namespace)
    assert set(hypernode.__all__) <= set(namespace)
    assert set(hypernode.__all__) <= set(dir(hypernode))
    with pytest.raises(AttributeError):
        hypernode.NoSuchThing  # noqa: B018


def test_the_names_the_readme_promises():
    from hypernode import (  # noqa: F401
        Corestore,
        CorruptStorageError,
        DecodeError,
        DHTNode,
        Feed,
        FileNotFound,
        Hyperdrive,
        MultiDrive,
        Node,
        Swarm,
        VerificationError,
    )
    assert issubclass(FileNotFound, FileNotFoundError) and issubclass(FileNotFound, hypernode.HypernodeError)
    assert issubclass(CorruptStorageError, OSError) and issubclass(DecodeError, ValueError)


def test_import_hypernode_alone_imports_no_subpackage():
    code = ("import sys, hypernode; "
            "print(sorted(m for m in sys.modules if m.startswith(('hypernode', 'trio', 'nacl', 'noise'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['hypernode']"


def _all_modules() -> list[str]:
    return ["hypernode"] + [m.name for m in pkgutil.walk_packages([str(PACKAGE)], "hypernode.")]


def test_every_public_error_class_is_exported():
    """Each exception class a hypernode module defines (public name) is importable from hypernode."""
    found = {}
    for name in _all_modules():
        if name == "hypernode.cli":
            continue  # the command's own usage errors end in its exit code, not in a caller's except
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and not attr.startswith("_") \
                    and value.__module__ == name:
                found[attr] = value
    assert "DecodeError" in found and "FileNotFound" in found
    missing = {n for n, cls in found.items() if getattr(hypernode, n, None) is not cls}
    assert not missing, f"not exported from hypernode: {sorted(missing)}"


def _module_imports(name: str) -> set[str]:
    """The hypernode modules ``name`` needs when it is executed (module level, not under
    TYPE_CHECKING, not inside functions): the module each import statement names, or the submodule a
    ``from package import submodule`` names. (A parent package being initialised is no cycle.)"""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    is_package = spec.origin.endswith("__init__.py")
    out: set[str] = set()

    def add(target: str) -> None:
        out.add(target)

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("hypernode"):
                        add(alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = name if is_package else name.rsplit(".", 1)[0]
                    pkg = ".".join(pkg.split(".")[:len(pkg.split(".")) - node.level + 1])
                    base = f"{pkg}.{base}" if base else pkg
                if not base.startswith("hypernode"):
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    add(sub if _is_module(sub) else base)
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(node, block, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
    visit(tree.body)
    out.discard(name)
    return out


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def import_cycles(graph: dict[str, set[str]] | None = None) -> list[list[str]]:
    """The import cycles among hypernode's modules (strongly connected components of the module-level
    import graph, Tarjan's algorithm)."""
    if graph is None:
        graph = {name: _module_imports(name) for name in _all_modules()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                strong(w)
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

    for v in graph:
        if v not in index:
            strong(v)
    return cycles


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c", "x"}, "c": {"a"}, "d": {"d2"}, "d2": {"d"}, "e": {"a"}}
    assert sorted(import_cycles(graph)) == [["a", "b", "c"], ["d", "d2"]]


def test_no_import_cycle_through_the_package_or_the_codec():
    """The lazy top level imports nothing at run time, so it closes no cycle; neither do the message
    codec's modules. (Every other cycle: tests/test_import_cycles.py.)"""
    graph_modules = set(_all_modules())
    assert "hypernode.varint" in graph_modules and "hypernode.messages.hypercore_protocol" in graph_modules
    assert _module_imports("hypernode") == set()
    codec_imports = _module_imports("hypernode.messages.hypercore_protocol")
    assert codec_imports == {"hypernode.protobuf", "hypernode.varint"}
    codec = {"hypernode", "hypernode.errors", "hypernode.varint", "hypernode.protobuf", "hypernode.messages"}
    codec |= {m for m in graph_modules if m.startswith("hypernode.messages.")}
    for cycle in import_cycles():
        assert not codec & set(cycle), cycle
