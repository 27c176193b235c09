"""Drive paths: the one place that validates and normalizes them.

A drive path is absolute and POSIX (``/a/b.txt``); Windows separators become ``/``; ``.`` and empty
segments are dropped. ``..`` and NUL are refused (:class:`~hypernode.drive.errors.InvalidArgument`):
a drive entry written by a peer can never climb out of a folder it is cloned into. The trie stores keys
without the leading slash (:func:`trie_key`).
"""

from __future__ import annotations

from hypernode.drive.errors import InvalidArgument

MAX_PATH = 4096


def normalize(path: str) -> str:
    """``/a/b`` for ``a/b``, ``/a//b/``, ``\\a\\b``, ``/a/./b``; raises InvalidArgument for ``..``/NUL."""
    if isinstance(path, bytes):
        path = path.decode()
    if not isinstance(path, str):
        raise InvalidArgument(f"a path is a string, not {type(path).__name__}")
    if "\x00" in path:
        raise InvalidArgument("a path cannot contain NUL", path.replace("\x00", "\\0"))
    if len(path) > MAX_PATH:
        raise InvalidArgument(f"a path is at most {MAX_PATH} characters")
    parts = []
    for seg in path.replace("\\", "/").split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            raise InvalidArgument(f"a path cannot contain '..': {path!r}", path)
        parts.append(seg)
    return "/" + "/".join(parts)


def trie_key(path: str) -> str:
    """The hypertrie key of a normalized path (no leading slash; the root is '')."""
    return path[1:]


def join(*parts: str) -> str:
    return normalize("/".join(parts))


def dirname(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


def basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def relative(base: str, path: str) -> str:
    """``path`` relative to the folder ``base`` (both normalized; ``path`` inside ``base``)."""
    if base == "/":
        return path[1:]
    if path == base:
        return ""
    return path[len(base) + 1:]


def is_inside(base: str, path: str) -> bool:
    """Is ``path`` the folder ``base`` or below it?"""
    return base == "/" or path == base or path.startswith(base + "/")


def resolve_link(link_path: str, target: str) -> str:
    """The absolute path a symlink at ``link_path`` pointing at ``target`` names (``..`` resolved
    lexically, never above the root)."""
    base = [] if target.startswith("/") else [s for s in dirname(link_path).split("/") if s]
    for seg in target.replace("\\", "/").split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if base:
                base.pop()
            continue
        if "\x00" in seg:
            raise InvalidArgument("a symlink target cannot contain NUL", link_path)
        base.append(seg)
    return "/" + "/".join(base)
