"""The top-level API: ``from hypernode import Feed, Corestore, ...`` and every error type, loaded lazily
(``import hypernode`` alone imports no subpackage), with no import cycle through the package."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import hypernode
from tests.test_import_cycles import all_modules, import_graph, module_imports, strongly_connected


def test_every_name_in_all_imports():
    assert set(hypernode.__all__) == set(hypernode._EXPORTS)
    assert len(hypernode.__all__) == len(set(hypernode.__all__))
    for name in hypernode.__all__:
        value = getattr(hypernode, name)
        module, _, attribute = hypernode._EXPORTS[name].partition(":")  # a name exported under another
        assert value.__name__ == (attribute or name)
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


def test_every_public_error_class_is_exported():
    """Each exception class a hypernode module defines (public name) is importable from hypernode."""
    found = {}
    for name in all_modules():
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


def test_no_import_cycle_through_the_package_or_the_codec():
    """The lazy top level imports nothing at run time, so it closes no cycle; neither do the message
    codec's modules. (Every other cycle: tests/test_import_cycles.py.)"""
    graph = import_graph()
    assert "hypernode.varint" in graph and "hypernode.messages.hypercore_protocol" in graph
    assert module_imports("hypernode") == set()
    codec_imports = module_imports("hypernode.messages.hypercore_protocol")
    assert codec_imports == {"hypernode.protobuf", "hypernode.varint"}
    codec = {"hypernode", "hypernode.errors", "hypernode.varint", "hypernode.protobuf", "hypernode.messages"}
    codec |= {m for m in graph if m.startswith("hypernode.messages.")}
    for cycle in strongly_connected(graph):
        assert not codec & cycle, sorted(cycle)
