"""Drives JS wrote read as JS reads them: random operation sequences (writeFile, mkdir, unlink, rmdir,
symlink, copy at colliding paths, so that files land over folders and folders over files) run by JS
hyperdrive 10 into a corestore directory (interop/js/drive_tree.js); hypernode then opens the same
directory and answers every lstat, stat, readdir (plain, with stats, recursive, recursive with stats),
read_file, exists and stats of every path as JS answered, through a Hyperdrive and through a
MultiDrive of that drive. Where the answers differ by design (hypernode/drive/hyperdrive.py's
docstring), the rule is checked instead: an error where JS lists nothing, EISDIR where JS reads a
folder, a folder's Stat where JS follows a link found under the folder.

Symlinks are made only under /x and point only into /y, where no symlink is ever made: JS spins
forever on a symlink loop (hypernode raises ELOOP; tests/test_drive.py covers that).
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest

from hypernode.corestore import Corestore
from hypernode.drive import Hyperdrive, Stat
from hypernode.drive.paths import resolve_link
from hypernode.multi import MultiDrive

pytestmark = pytest.mark.interop

SEEDS = [1, 2, 3, 4, 5, 6]
OPS = 90
NAMES = "abc"


def all_paths() -> list[str]:
    out = ["/", "/x", "/y", "/nothing", "/x/nothing/deeper"]
    level = [""]
    for _ in range(3):
        level = [f"{p}/{n}" for p in level for n in NAMES]
        out += [f"/{root}{p}" for root in "xy" for p in level]
    return out


def random_path(rng: random.Random, root: str) -> str:
    return f"/{root}/" + "/".join(rng.choice(NAMES) for _ in range(rng.randint(1, 3)))


def link_target(rng: random.Random, link: str) -> str:
    """A target inside /y, absolute or relative to the link's folder."""
    inside = "/".join(rng.choice(NAMES) for _ in range(rng.randint(0, 2)))
    if rng.random() < 0.5:
        return "/y" + (f"/{inside}" if inside else "")
    ups = link.count("/") - 1  # from the link's folder back to the root
    return "../" * ups + "y" + (f"/{inside}" if inside else "")


def random_ops(rng: random.Random, n: int) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    for _ in range(n):
        r = rng.random()
        path = random_path(rng, rng.choice("xy"))
        if r < 0.36:
            size = 600_000 if rng.random() < 0.03 else rng.choice([0, 1, 300, 4000])
            ops.append({"op": "writeFile", "path": path, "hex": rng.randbytes(size).hex()})
        elif r < 0.52:
            ops.append({"op": "mkdir", "path": path})
        elif r < 0.64:
            ops.append({"op": "unlink", "path": path})
        elif r < 0.72:
            ops.append({"op": "rmdir", "path": path})
        elif r < 0.94:
            link = random_path(rng, "x")
            ops.append({"op": "symlink", "target": link_target(rng, link), "path": link})
        else:
            ops.append({"op": "copy", "from": random_path(rng, rng.choice("xy")), "to": path})
    return ops


def code(e: BaseException) -> str:
    return getattr(e, "code", None) or type(e).__name__


def stat_dict(st: Stat) -> dict[str, Any]:
    return {
        "mode": st.mode, "uid": st.uid, "gid": st.gid, "size": st.size, "blocks": st.blocks,
        "offset": st.offset, "byteOffset": st.byte_offset,
        "mtime": st.mtime, "ctime": st.ctime,
        "linkname": st.linkname or None,
        "mount": None if st.mount is None else {"key": st.mount.key.hex(), "version": st.mount.version or 0},
        "metadata": {k: st.metadata[k].hex() for k in sorted(st.metadata)},
    }


async def attempt(call: Any) -> Any:
    """The value of the awaitable ``call``, or ``{"err": code}`` for the OSError it raised."""
    try:
        return await call
    except OSError as e:
        return {"err": code(e)}


IFDIR, IFREG = 0o040000, 0o100000


def is_folder(answer: Any) -> bool:
    """As JS's isDirectory() and Stat.is_directory(): the folder bits are set (a JS copy of a folder
    has the file bits too)."""
    return "err" not in answer and answer["mode"] & IFDIR == IFDIR


class Checker:
    """Compares hypernode's answers for one scenario with JS's (``js``: path -> JS's ANSWERS)."""

    def __init__(self, name: str, js: dict[str, dict[str, Any]]) -> None:
        self.name = name
        self.js = js
        self.checked = 0

    def fail(self, path: str, what: str, js: Any, py: Any) -> None:
        raise AssertionError(f"scenario {self.name}, {path}: {what}\n  JS:     {js}\n  Python: {py}")

    def same(self, path: str, what: str, js: Any, py: Any) -> None:
        self.checked += 1
        if js != py:
            self.fail(path, what, js, py)

    def implicit(self, path: str) -> bool:
        """A folder without an entry of its own (JS's lstat then keeps the linkname and mount of the
        first entry under it; we drop both: the folder is not a link or a mount)."""
        return not self.js[path]["entry"] and "err" not in self.js[path]["lstat"]

    def lstat(self, path: str, py: Any) -> None:
        want = dict(self.js[path]["lstat"])
        if self.implicit(path):
            want.update(linkname=None, mount=None)
        self.same(path, "lstat", _no_root_times(path, want), _no_root_times(path, py))

    def stat(self, path: str, py: Any, py_lstat: Any) -> None:
        js = self.js[path]
        if self.implicit(path) and js["lstat"]["linkname"]:
            # JS's stat follows the link it found under the folder; ours is the folder
            self.same(path, "stat of a folder whose first entry is a link", py_lstat, py)
            return
        want = dict(js["stat"])
        if self.implicit(path):
            want.update(linkname=None, mount=None)
        self.same(path, "stat", _no_root_times(path, want), _no_root_times(path, py))

    def exists(self, path: str, py: bool) -> None:
        js = self.js[path]
        if self.implicit(path) and js["lstat"]["linkname"]:
            self.same(path, "exists of a folder whose first entry is a link", True, py)
        else:
            self.same(path, "exists", js["exists"], py)

    def listing(self, path: str, what: str, js: Any, py: Any, py_stat: Any) -> None:
        """The same names, each once. Where JS lists nothing, we may raise: ENOENT for a path that
        does not stat (nothing there, a dangling link), ENOTDIR for one that is not a folder."""
        self.checked += 1
        if isinstance(py, dict):
            if js != []:
                self.fail(path, what, js, py)
            if py["err"] == "ENOENT" and "err" not in py_stat:
                self.fail(path, what + " (ENOENT for a path that stats)", js, py)
            elif py["err"] == "ENOTDIR" and ("err" in py_stat or is_folder(py_stat)):
                self.fail(path, what + " (ENOTDIR for a folder)", js, py)
            elif py["err"] not in ("ENOENT", "ENOTDIR"):
                self.fail(path, what, js, py)
            return
        if len(set(py)) != len(py):
            self.fail(path, what + " (a name twice)", js, py)
        if sorted(set(js)) != sorted(py):
            self.fail(path, what, sorted(set(js)), sorted(py))

    def listing_stats(self, path: str, what: str, js: Any, py: Any) -> None:
        """Each name's Stat (JS may list a name twice: the first counts; a name that is a folder by
        entries under it gets a folder Stat made on the spot, whose times are left out)."""
        if isinstance(py, dict) or isinstance(js, dict):
            return  # compared by listing()
        want: dict[str, Any] = {}
        for item in js:
            want.setdefault(item["name"], item)
        got = dict(py)
        self.same(path, what + " names", sorted(want), sorted(got))
        for name, item in want.items():
            st = got[name]
            if item.get("implicit"):
                st = {**st, "mtime": None, "ctime": None}
            self.same(f"{path} -> {name}", what, item["stat"], st)

    def read(self, path: str, py: Any, py_stat: Any) -> None:
        js = self.js[path]["readFile"]
        if is_folder(py_stat) and not py_stat["mode"] & IFREG == IFREG:
            # EISDIR here, where JS gives ENOENT (no entry of its own) or no bytes (a folder entry)
            self.same(path, "read_file of a folder", {"err": "EISDIR"}, py)
            if js != {"err": "ENOENT"} and js != {"sha256": hashlib.sha256(b"").hexdigest()}:
                self.fail(path, "JS's readFile of a folder", js, py)
            return
        self.same(path, "read_file", js, py)

    def stats(self, path: str, which: str, py: Any) -> None:
        """JS counts every stored block of the feed as "downloaded" for an entry with no block at
        offset 0 (a bitfield total with end 0 means "to the end"); we count 0 for no block."""
        js = self.js[path][which]
        if self.implicit(path) and self.js[path]["lstat"]["linkname"]:
            return  # JS takes the folder for the link found under it (see stat)

        def fix(items: dict[str, Any]) -> dict[str, Any]:
            return {k: ({**v, "downloadedBlocks": 0} if v["blocks"] == 0 else v) for k, v in items.items()}

        if "file" in js and "file" in py:
            self.same(path, which, fix({"f": js["file"]}), fix({"f": py["file"]}))
        elif "folder" in js and "folder" in py:
            self.same(path, which, fix(js["folder"]), fix(py["folder"]))
        else:
            self.same(path, which, js, py)


def _no_root_times(path: str, answer: Any) -> Any:
    """'/' has no entry: both sides make its Stat up, with "now" for times."""
    if path != "/" or "err" in answer:
        return answer
    return {**answer, "mtime": None, "ctime": None}


async def _stat(coro: Any) -> dict[str, Any]:
    return stat_dict(await coro)


async def _sha256(coro: Any) -> dict[str, str]:
    return {"sha256": hashlib.sha256(await coro).hexdigest()}


async def _pairs(coro: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(name, stat_dict(st)) for name, st in await coro]


async def _stats(drive: Hyperdrive, path: str, **opts: bool) -> dict[str, Any]:
    st = await drive.stat(path)
    found = await drive.stats(path, **opts)
    as_js = {k: {"blocks": v.blocks, "size": v.size, "downloadedBlocks": v.downloaded_blocks}
             for k, v in found.items()}
    return {"file": as_js[next(iter(as_js))]} if st.is_file() or not st.is_directory() else {"folder": as_js}


async def check_drive(check: Checker, drive: Hyperdrive) -> None:
    for path, js in check.js.items():
        lstat = await attempt(_stat(drive.lstat(path)))
        stat = await attempt(_stat(drive.stat(path)))
        check.lstat(path, lstat)
        check.stat(path, stat, lstat)
        check.listing(path, "readdir", js["readdir"], await attempt(drive.readdir(path)), stat)
        check.listing_stats(path, "readdir with stats", js["readdirStats"],
                            await attempt(_pairs(drive.readdir(path, stats=True))))
        recursive = await attempt(drive.readdir(path, recursive=True, follow_links=True))
        check.listing(path, "recursive readdir", js["readdirRecursive"], recursive, stat)
        check.listing_stats(path, "recursive readdir with stats", js["readdirRecursiveStats"],
                            await attempt(_pairs(drive.readdir(path, stats=True, recursive=True,
                                                                       follow_links=True))))
        check.read(path, await attempt(_sha256(drive.read_file(path))), stat)
        check.exists(path, await drive.exists(path))
        check.stats(path, "stats", await attempt(_stats(drive, path)))
        check.stats(path, "statsFlat", await attempt(_stats(drive, path, recursive=False)))
        check.stats(path, "statsFollow", await attempt(_stats(drive, path, follow_links=True)))


def multi_listing(check: Checker, path: str) -> list[dict[str, Any]]:
    """What the merged view's readdir with stats gives, from JS's answers: each name's own entry (its
    lstat; for a name both under a symlink and in its target, the one under the link: the path as
    written), or a plain folder Stat for a name without an entry. (JS's readdir, as the drive's,
    gives the first it meets in the trie's order, and a plain folder Stat also for a name with an
    entry when it met an entry under it first: the merged index knows entries, not that order.)"""
    folders = [path]
    own = check.js[path]
    if own["entry"] and own["lstat"]["linkname"] and is_folder(own["stat"]):
        folders.append(resolve_link(path, own["lstat"]["linkname"]))
    out = []
    for item in check.js[path]["readdirStats"]:
        children = [("" if f == "/" else f) + "/" + item["name"] for f in folders]
        entry = next((c for c in children if c in check.js and check.js[c]["entry"]), None)
        if entry is not None:  # the entry under the link itself first, then the target's
            out.append({"name": item["name"], "stat": check.js[entry]["lstat"]})
        else:
            out.append({**item, "implicit": True})
    return out


async def check_multi(check: Checker, multi: MultiDrive) -> None:
    """A MultiDrive of the one drive answers as the drive does for every path JS reaches (the merged
    view also follows symlinks in the middle of a path, so where JS finds nothing it may find more)."""
    for path, js in check.js.items():
        lstat = await attempt(_stat(multi.lstat(path)))
        stat = await attempt(_stat(multi.stat(path)))
        if "err" not in js["lstat"]:
            check.lstat(path, lstat)
        if "err" not in js["stat"]:
            check.stat(path, stat, lstat)
        if js["readdir"]:
            names = await attempt(multi.readdir(path))
            check.listing(path, "multi readdir", js["readdir"], names, stat)
            entries = await multi.readdir(path, stats=True)
            check.listing_stats(path, "multi readdir with stats", multi_listing(check, path),
                                [(e.name, stat_dict(e.stat)) for e in entries])
        if "sha256" in js["readFile"]:
            check.read(path, await attempt(_sha256(multi.read_file(path))), stat)


async def test_random_js_trees_read_as_js_reads_them(js, tmp_path):
    scenarios = []
    for seed in SEEDS:
        rng = random.Random(seed)
        scenarios.append({"name": f"tree-{seed}", "ops": random_ops(rng, OPS), "paths": all_paths()})
    spec = tmp_path / "scenarios.json"
    spec.write_text(json.dumps(scenarios))
    store_dir = tmp_path / "store"
    results = js("drive_tree.js", str(store_dir), str(spec), timeout=120)

    collisions = 0
    async with Corestore(store_dir) as store:
        for result in results:
            answers = result["answers"]
            for a in answers.values():  # the trees hold what JS allows: files with entries under them
                if "err" not in a["lstat"] and a["entry"] and not a["lstat"]["mode"] & 0o040000 and \
                        isinstance(a["readdir"], list) and a["readdir"]:
                    collisions += 1
            drive = await Hyperdrive.open(store, result["key"])
            assert drive.version == result["version"]
            check = Checker(result["name"], answers)
            await check_drive(check, drive)
            assert check.checked > 800  # (about 14 per path)
            multi = MultiDrive(drive)
            await check_multi(Checker(result["name"] + " (multi)", answers), multi)
    assert collisions >= len(SEEDS), "the scenarios made too few files with entries under them"
