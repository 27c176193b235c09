"""hypercore 11 replication (hypernode.core11.replicator/replicate) against a JS corestore 7.12.5 /
hypercore 11.39.5, over real loopback TCP, with JS as initiator and as responder.

interop/v11/js/repl_peer.js runs one corestore (in a temporary directory) that replicates every
connection with ``store.replicate``; it creates cores by name, appends, downloads (a range, or
everything live), reports which blocks it holds (a digest of them), and can alter the data messages it
sends (to play a peer that lies). Python keeps its cores in memory.

Cases: Python downloads from JS (full, sparse ranges, live appends made after the connection opened),
JS downloads from Python (the same three), several cores over one stream (some only one side has), and
a lying JS peer (bad block, bad signature, bad proof node): the connection ends with
CoreReplicationError, the bad data is not stored.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from hypernode.core11.core import Core
from hypernode.core11.corestore import Corestore as Corestore11
from hypernode.core11.crypto import discovery_key
from hypernode.core11.manifest import core_key, default_signer_manifest
from hypernode.core11.replicate import Replication, open_replication
from hypernode.core11.replicator import CoreProvider, CoreReplicationError, Reorged
from interop.jsproc import JSProcess
from tests.core11_cores import held, reader, stored
from tests.core11_cores import writer as make_writer

pytestmark = pytest.mark.interop

V11 = Path(__file__).resolve().parent / "v11"
TIMEOUT = 30


def block(tag: str, i: int, size: int) -> bytes:
    """Block ``i`` as repl_peer.js makes it."""
    prefix = f"{tag}-{i}-".encode()
    return (prefix + bytes([(i * 31 + 7) & 255]) * size)[:size] if size >= len(prefix) else prefix[:size]


def digest(blocks: Iterable[tuple[int, bytes]]) -> str:
    h = hashlib.sha256()
    for i, b in blocks:
        h.update(struct.pack(">I", i) + b)
    return h.hexdigest()


def expected(tag: str, indexes: Iterable[int], size: int) -> str:
    return digest((i, block(tag, i, size)) for i in indexes)


def held_digest(core: Core, start: int, end: int) -> tuple[int, str]:
    blocks = [(i, core.get(i)) for i in range(start, end) if core.has(i)]
    return len(blocks), digest(blocks)


class JSPeer(JSProcess):
    def __init__(self, *args: str) -> None:
        super().__init__("repl_peer.js", *args)
        self.args[1] = str(V11 / "js" / "repl_peer.js")

    async def __aenter__(self) -> JSPeer:
        await super().__aenter__()
        return self

    async def do(self, cmd: str, answer: str, **args: Any) -> dict[str, Any]:
        with trio.fail_after(TIMEOUT):
            return await self.command(answer, cmd=cmd, **args)

    async def create(self, name: str, count: int, size: int, tag: str) -> dict[str, Any]:
        return await self.do("create", "created", name=name, count=count, size=size, tag=tag)

    async def check(self, key: bytes, start: int, end: int) -> tuple[int, str]:
        ev = await self.do("check", "check", key=key.hex(), start=start, end=end)
        return ev["held"], ev["digest"]


def reader_of(created: dict[str, Any]) -> Core:
    """A Python reader of a core JS made, by key alone: the manifest comes from JS with the first proof
    (it is corestore 7's, a version-1 manifest of the core's public key)."""
    key = bytes.fromhex(created["key"])
    assert core_key(default_signer_manifest(bytes.fromhex(created["publicKey"]))) == key
    assert discovery_key(key).hex() == created["discoveryKey"]
    return reader(key)


def writer(seed: int, tag: str, count: int, size: int) -> Core:
    return make_writer(seed, [block(tag, i, size) for i in range(count)])


@asynccontextmanager
async def js_listening(tmp_path: Path) -> AsyncIterator[tuple[JSPeer, int]]:
    async with JSPeer("listen", "0", str(tmp_path / "js")) as js:
        with trio.fail_after(TIMEOUT):
            ev = await js.wait_for("listening")
        yield js, int(ev["port"])


Setup = Callable[[JSPeer], Awaitable[list[Core]]]


@asynccontextmanager
async def connected(tmp_path: Path, js_initiator: bool, setup: Setup, provider: CoreProvider | None = None
                    ) -> AsyncIterator[tuple[JSPeer, Replication, list[Core]]]:
    """A Python replication with a JS peer: JS listening (Python dials: the initiator) or JS dialing
    (Python listens). ``setup(js)`` runs on the JS peer first and gives the Python cores to replicate."""
    if not js_initiator:
        async with js_listening(tmp_path) as (js, port):
            cores = await setup(js)
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with open_replication(stream, initiator=True, cores=cores, provider=provider) as repl:
                yield js, repl, cores
        return
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with JSPeer("connect", str(port), str(tmp_path / "js")) as js:
        cores = await setup(js)
        await js.do("connect", "dialing")
        with trio.fail_after(TIMEOUT):
            stream = await listeners[0].accept()
        await listeners[0].aclose()
        async with open_replication(stream, initiator=False, cores=cores, provider=provider) as repl:
            yield js, repl, cores


ROLES = pytest.mark.parametrize("js_initiator", [False, True], ids=["js-responder", "js-initiator"])


# -- Python downloads from JS -----------------------------------------------------------------------

@ROLES
async def test_python_downloads_everything_from_js(tmp_path: Path, js_initiator: bool) -> None:
    async def setup(js: JSPeer) -> list[Core]:
        return [reader_of(await js.create("full", 300, 1024, "f"))]

    async with connected(tmp_path, js_initiator, setup) as (js, repl, (core,)):
        with trio.fail_after(TIMEOUT):
            await repl.download(core)
        assert core.length == 300
        assert core.manifest is not None  # learnt from JS with the first proof
        assert held_digest(core, 0, 300) == (300, expected("f", range(300), 1024))


@ROLES
async def test_python_downloads_sparse_ranges_from_js(tmp_path: Path, js_initiator: bool) -> None:
    async def setup(js: JSPeer) -> list[Core]:
        return [reader_of(await js.create("sparse", 5000, 64, "s"))]

    async with connected(tmp_path, js_initiator, setup) as (js, repl, (core,)):
        with trio.fail_after(TIMEOUT):
            await repl.download(core, 10, 20)
            await repl.download(core, 4090, 4100)
            await repl.download(core, 4999, 5000)
        assert core.length == 5000
        want = [*range(10, 20), *range(4090, 4100), 4999]
        assert sorted(held(core)) == want  # those and nothing else
        assert held_digest(core, 0, 5000) == (len(want), expected("s", want, 64))


@ROLES
async def test_python_follows_live_appends_from_js(tmp_path: Path, js_initiator: bool) -> None:
    created: dict[str, Any] = {}

    async def setup(js: JSPeer) -> list[Core]:
        created.update(await js.create("live", 5, 100, "l"))
        return [reader_of(created)]

    async with connected(tmp_path, js_initiator, setup) as (js, repl, (core,)):
        await repl.want(core, 0, None)
        with trio.fail_after(TIMEOUT):
            await repl.wait_length(core, 5)
            for n in (1, 7, 100):  # appended after the connection opened, while we watch
                start = core.length
                await js.do("append", "appended", key=created["key"], start=start, count=n, size=100, tag="l")
                await repl.wait_length(core, start + n)
            await repl.download(core, 0, core.length)
        assert core.length == 113
        assert held_digest(core, 0, 113) == (113, expected("l", range(113), 100))


# -- JS downloads from Python -----------------------------------------------------------------------

async def js_holds(js: JSPeer, key: bytes, start: int, end: int, count: int) -> tuple[int, str]:
    """Poll JS until it holds ``count`` blocks of ``start..end`` (JS stores as it goes)."""
    with trio.fail_after(TIMEOUT):
        while True:
            held = await js.check(key, start, end)
            if held[0] >= count:
                return held
            await trio.sleep(0.05)


@ROLES
async def test_js_downloads_everything_from_python(tmp_path: Path, js_initiator: bool) -> None:
    core = writer(1, "p", 300, 1024)

    async def setup(js: JSPeer) -> list[Core]:
        await js.do("open", "opened", key=core.key.hex())
        return [core]

    async with connected(tmp_path, js_initiator, setup) as (js, repl, _):
        await js.do("download", "downloaded", key=core.key.hex(), start=0, end=300)
        ev = await js.do("check", "check", key=core.key.hex(), start=0, end=300)
        assert (ev["held"], ev["digest"], ev["length"]) == (300, expected("p", range(300), 1024), 300)


@ROLES
async def test_js_downloads_sparse_ranges_from_python(tmp_path: Path, js_initiator: bool) -> None:
    core = writer(2, "q", 5000, 64)

    async def setup(js: JSPeer) -> list[Core]:
        await js.do("open", "opened", key=core.key.hex())
        return [core]

    async with connected(tmp_path, js_initiator, setup) as (js, repl, _):
        for start, end in ((10, 20), (4090, 4100), (4999, 5000)):
            await js.do("download", "downloaded", key=core.key.hex(), start=start, end=end)
        want = [*range(10, 20), *range(4090, 4100), 4999]
        ev = await js.do("check", "check", key=core.key.hex(), start=0, end=5000)
        assert (ev["held"], ev["digest"], ev["length"]) == (len(want), expected("q", want, 64), 5000)


@ROLES
async def test_js_follows_live_appends_from_python(tmp_path: Path, js_initiator: bool) -> None:
    core = writer(3, "r", 5, 100)
    key = core.key.hex()

    async def setup(js: JSPeer) -> list[Core]:
        await js.do("open", "opened", key=key)
        return [core]

    async with connected(tmp_path, js_initiator, setup) as (js, repl, _):
        await js.do("downloadAll", "downloading", key=key)
        await js.do("waitLength", "length", key=key, length=5)
        for n in (1, 7, 100):  # appended after the connection opened
            start = core.length
            core.append([block("r", i, 100) for i in range(start, start + n)])
            await repl.core_changed(core)
            await js.do("waitLength", "length", key=key, length=start + n)
        assert await js_holds(js, core.key, 0, 113, 113) == (113, expected("r", range(113), 100))


@ROLES
async def test_a_truncated_core_replicates_at_its_new_fork_both_ways(tmp_path: Path,
                                                                    js_initiator: bool) -> None:
    """JS and Python each write 20 blocks, truncate to 10 (fork 1) and append 5 others; the other side
    opens the core by key and gets the 15 blocks of fork 1."""
    py = writer(6, "t", 20, 100)
    py.truncate(10)
    py.append([block("u", i, 100) for i in range(10, 15)])
    made: dict[str, Any] = {}

    async def setup(js: JSPeer) -> list[Core]:
        made.update(await js.create("t", 20, 100, "t"))
        ev = await js.do("truncate", "truncated", key=made["key"], length=10)
        assert ev["fork"] == 1
        await js.do("append", "appended", key=made["key"], start=10, count=5, size=100, tag="u")
        await js.do("open", "opened", key=py.key.hex())
        return [reader_of(made), py]

    async with connected(tmp_path, js_initiator, setup) as (js, repl, (core, _)):
        with trio.fail_after(TIMEOUT):
            await repl.download(core)
        assert (core.length, core.fork) == (15, 1)
        assert held_digest(core, 0, 15) == (15, digest([(i, block("t", i, 100)) for i in range(10)]
                                                       + [(i, block("u", i, 100)) for i in range(10, 15)]))
        await js.do("download", "downloaded", key=py.key.hex(), start=0, end=15)
        ev = await js.do("check", "check", key=py.key.hex(), start=0, end=15)
        assert (ev["held"], ev["digest"], ev["length"]) == (15, held_digest(py, 0, 15)[1], 15)


@ROLES
async def test_js_gets_blocks_python_stores_after_js_asked(tmp_path: Path, js_initiator: bool) -> None:
    """JS asks Python's sparse copy m for blocks m has not got; m fetches them from a writer over another
    connection and announces them (core_changed with the range): JS's download completes."""
    w = writer(7, "m", 3000, 200)
    m = reader(w.key)
    up_left, up_right = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        async def upstream_writer() -> None:
            async with open_replication(up_right, initiator=False, cores=[w]):
                await trio.sleep_forever()

        nursery.start_soon(upstream_writer)
        async with open_replication(up_left, initiator=True, cores=[m]) as upstream:
            with trio.fail_after(TIMEOUT):
                await upstream.download(m, 0, 1)  # m knows the length and holds block 0

            async def setup(js: JSPeer) -> list[Core]:
                await js.do("open", "opened", key=w.key.hex())
                return [m]

            async with connected(tmp_path, js_initiator, setup) as (js, repl, _):
                downloaded = trio.Event()

                async def js_download() -> None:
                    await js.do("download", "downloaded", key=w.key.hex(), start=100, end=110)
                    downloaded.set()

                nursery.start_soon(js_download)
                await trio.sleep(0.5)  # JS asked; m has none of them
                assert not downloaded.is_set()
                with trio.fail_after(TIMEOUT):
                    await upstream.download(m, 100, 110)
                    await repl.core_changed(m, 100, 110)
                    await downloaded.wait()
                assert await js.check(w.key, 0, 3000) == (10, expected("m", range(100, 110), 200))
        nursery.cancel_scope.cancel()


@ROLES
async def test_each_side_follows_the_other_to_a_new_fork_live(tmp_path: Path, js_initiator: bool) -> None:
    """Both hold all 50 blocks of the other's core; each writer truncates to 30 and appends 8 others while
    connected: Python follows JS's fork (a reorg: 30 blocks kept) and JS follows Python's."""
    py = writer(8, "v", 50, 100)
    made: dict[str, Any] = {}

    async def setup(js: JSPeer) -> list[Core]:
        made.update(await js.create("v", 50, 100, "v"))
        await js.do("open", "opened", key=py.key.hex())
        return [reader_of(made), py]

    async with connected(tmp_path, js_initiator, setup) as (js, repl, (core, _)):
        await js.do("downloadAll", "downloading", key=py.key.hex())
        await repl.want(core)
        with trio.fail_after(TIMEOUT):
            await repl.download(core, 0, 50)
        assert await js_holds(js, py.key, 0, 50, 50) == (50, expected("v", range(50), 100))
        async with repl.subscribe() as events:
            await js.do("truncate", "truncated", key=made["key"], length=30)
            await js.do("append", "appended", key=made["key"], start=30, count=8, size=100, tag="w")
            with trio.fail_after(TIMEOUT):
                async for ev in events:
                    if isinstance(ev, Reorged):
                        assert (ev.fork, ev.kept) == (1, 30)
                        break
                await repl.download(core, 0, 38)
        new = [(i, block("v", i, 100)) for i in range(30)] + [(i, block("w", i, 100)) for i in range(30, 38)]
        assert (core.fork, core.length) == (1, 38)
        assert held_digest(core, 0, 50) == (38, digest(new))
        py.truncate(30)
        py.append([block("w", i, 100) for i in range(30, 38)])
        await repl.core_changed(py)
        with trio.fail_after(TIMEOUT):
            while True:
                ev = await js.do("check", "check", key=py.key.hex(), start=0, end=50)
                if (ev["fork"], ev["length"], ev["held"]) == (1, 38, 38):
                    break
                await trio.sleep(0.05)
        assert ev["digest"] == digest(new)


# -- several cores on one stream --------------------------------------------------------------------

class Store:
    """A provider as a store is one: the cores it holds by discovery key; it says which it was asked for."""

    def __init__(self) -> None:
        self.cores: dict[bytes, Core] = {}
        self.asked: list[bytes] = []

    def open_core(self, discovery_key: bytes) -> Core | None:
        self.asked.append(discovery_key)
        return self.cores.get(discovery_key)


@ROLES
async def test_several_cores_over_one_stream(tmp_path: Path, js_initiator: bool) -> None:
    """A and B: JS writes, Python reads; C: Python writes, JS reads; D: JS writes and Python's store
    has a reader of it that it did not add (the provider is asked when JS opens it); F: only JS has it
    (the provider is asked and has none); E: only Python has it (JS refuses it)."""
    py_c = writer(4, "c", 50, 300)
    py_e = writer(5, "e", 10, 10)
    made: dict[str, Any] = {}
    store = Store()

    async def setup(js: JSPeer) -> list[Core]:
        made["a"] = await js.create("a", 40, 500, "a")
        made["b"] = await js.create("b", 3, 2000, "b")
        made["d"] = await js.create("d", 7, 10, "d")
        made["f"] = await js.create("f", 1, 10, "f")
        await js.do("open", "opened", key=py_c.key.hex())
        d = reader_of(made["d"])
        store.cores[d.discovery_key] = d
        return [reader_of(made["a"]), reader_of(made["b"]), py_c, py_e]

    async with connected(tmp_path, js_initiator, setup, store) as (js, repl, cores):
        a, b = cores[0], cores[1]
        d = next(iter(store.cores.values()))
        with trio.fail_after(TIMEOUT):
            await repl.download(a)
            await repl.download(b)
            await repl.wait_attached(d)
            await repl.download(d)
        await js.do("download", "downloaded", key=py_c.key.hex(), start=0, end=50)
        assert held_digest(a, 0, 40) == (40, expected("a", range(40), 500))
        assert held_digest(b, 0, 3) == (3, expected("b", range(3), 2000))
        assert held_digest(d, 0, 7) == (7, expected("d", range(7), 10))
        assert await js.check(py_c.key, 0, 50) == (50, expected("c", range(50), 300))
        for core in (a, b, d, py_c):
            assert repl.replicator.is_attached(core)
        assert not repl.replicator.is_attached(py_e)
        assert sorted(store.asked) == sorted(bytes.fromhex(made[n]["discoveryKey"]) for n in "df")
        replicated = {c.discovery_key for c in repl.replicator.cores()}
        assert replicated == {c.discovery_key for c in (a, b, d, py_c)}


@ROLES
async def test_a_python_corestore_on_disk_provides_its_cores(tmp_path: Path, js_initiator: bool) -> None:
    """A Python Corestore (RocksDB) replicates with no core listed: JS opens a core Python writes by name
    and one Python reads by key; the store is asked for each (open_core) and both replicate. Reopened,
    the store still holds what it downloaded."""
    py_dir = tmp_path / "py"
    made: dict[str, Any] = {}
    with Corestore11(py_dir) as store:
        mine = store.get("docs")
        mine.append([block("k", i, 500) for i in range(30)])

        async def setup(js: JSPeer) -> list[Core]:
            made.update(await js.create("theirs", 25, 700, "j"))
            store.get(key=made["key"])  # a reader by key, held by the store (not open in replication)
            await js.do("open", "opened", key=mine.key.hex())
            return []

        async with connected(tmp_path, js_initiator, setup, provider=store) as (js, repl, _):
            theirs = store.get(key=made["key"])
            with trio.fail_after(TIMEOUT):
                await repl.wait_attached(theirs)
                await repl.download(theirs)
            await js.do("download", "downloaded", key=mine.key.hex(), start=0, end=30)
            assert await js.check(mine.key, 0, 30) == (30, expected("k", range(30), 500))
            assert repl.replicator.is_attached(mine)
    with Corestore11(py_dir) as store:
        theirs = store.get(key=made["key"])
        assert held_digest(theirs, 0, 25) == (25, expected("j", range(25), 700))


# -- a JS peer that lies ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["block", "signature", "nodes"])
@ROLES
async def test_a_lying_js_peer_is_dropped_and_nothing_is_stored(tmp_path: Path, js_initiator: bool,
                                                                mode: str) -> None:
    async def setup(js: JSPeer) -> list[Core]:
        created = await js.create("lie", 100, 256, "z")
        await js.do("tamper", "tampering", mode=mode)
        return [reader_of(created)]

    core: Core | None = None
    with pytest.raises(CoreReplicationError, match="does not verify"):
        async with connected(tmp_path, js_initiator, setup) as (js, repl, (core,)):
            with trio.fail_after(TIMEOUT):
                await repl.download(core)
    assert core is not None
    assert held(core) == {} and stored(core, 100) == {}
    if mode == "signature":
        assert core.length == 0  # the upgrade did not verify: the length stays
