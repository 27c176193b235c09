"""hypernode.core11.rocks: a corestore 7 store in RocksDB, in hypercore-storage 3's format.

Round trips of every record through a closed and reopened store, the exact key and value bytes
hypercore-storage writes (checked against JS's files in interop/test_core11_rocks_interop.py), atomic
batches (a batch not committed, or cut short by a dying process, leaves nothing), delete ranges, the lock
(a second opener in this process or another gets StoreLockedError), directories that are not ours
refused untouched, corrupt values raising CorruptStorageError while the store stays usable, features we
do not support refused, and hypothesis over the value codecs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypernode.core11.corestore import Corestore
from hypernode.core11.crypto import key_pair
from hypernode.core11.encoding import Writer, decode
from hypernode.core11.manifest import Manifest, Prologue, Signer
from hypernode.core11.names import Namespace
from hypernode.core11.rocks import (
    CoreRecord,
    RocksStoreStorage,
    StoreHead,
    decode_auth,
    decode_core_record,
    decode_head,
    decode_hints,
    decode_store_head,
    decode_tree_node,
    encode_auth,
    encode_core_record,
    encode_head,
    encode_hints,
    encode_store_head,
    encode_tree_node,
    key_string,
    key_uint,
)
from hypernode.core11.storage import Auth, Head, Hints
from hypernode.core11.tree import Node
from hypernode.errors import (
    CorruptStorageError,
    DecodeError,
    StoreLockedError,
    StoreRefusedError,
    UnsupportedStoreError,
)

PRIMARY = bytes(range(32))
NAMED = Namespace(PRIMARY).namespace("app").core("main")
AUTH = Auth(NAMED.key, NAMED.discovery_key, NAMED.manifest, NAMED.key_pair)
ALIAS = (Namespace(PRIMARY).namespace("app").id, "main")


def _raw_put(store: RocksStoreStorage, key: bytes, value: bytes) -> None:
    batch = store._batch()
    store._put(batch, key, value)
    store._write(batch)


def _page(*bits: int) -> bytes:
    page = bytearray(4096)
    for i in bits:
        page[i >> 3] |= 1 << (i & 7)
    return bytes(page)


def test_every_record_survives_close_and_reopen(tmp_path: Path) -> None:
    head = Head(fork=2, length=3, root_hash=b"\x11" * 32, signature=b"\x22" * 64)
    nodes = [Node(0, 5000, b"\x01" * 32), Node(1, 5001, b"\x02" * 32), Node(300, 7, b"\x03" * 32)]
    big = os.urandom(70_000)
    with RocksStoreStorage(tmp_path) as store:
        assert store.get_primary_key() is None and store.get_default_discovery_key() is None
        store.set_primary_key(PRIMARY)
        core = store.create_core(AUTH, alias=ALIAS)
        assert store.create_core(AUTH) is core  # already here: the same core
        w = core.write()
        w.put_block(0, b"x" * 5000)
        w.put_block(1, b"")
        w.put_block(70_000, big)
        for n in nodes:
            w.put_tree_node(n)
        w.put_bitfield_page(0, _page(0, 1))
        w.put_bitfield_page(40, _page(5))
        w.set_head(head)
        w.set_hints(Hints(2))
        w.commit()
    assert sorted(os.listdir(tmp_path)) == ["CORESTORE", "db"]
    with RocksStoreStorage(tmp_path) as store:
        assert store.get_primary_key() == PRIMARY
        assert store.get_default_discovery_key() == NAMED.discovery_key  # the first core, as JS
        assert store.get_alias(*ALIAS) == NAMED.discovery_key
        assert store.get_alias(ALIAS[0], "other") is None and store.get_alias(bytes(32), "main") is None
        assert list(store.discovery_keys()) == [NAMED.discovery_key] and store.has_core(NAMED.discovery_key)
        assert store.open_core(b"\x00" * 32) is None
        core = store.open_core(NAMED.discovery_key)
        assert core is not None and core.get_auth() == AUTH
        assert core.get_head() == head and core.get_hints() == Hints(2)
        assert core.get_block(0) == b"x" * 5000 and core.get_block(1) == b"" and core.get_block(2) is None
        assert core.get_block(70_000) == big
        assert [core.get_tree_node(n.index) for n in nodes] == nodes and core.get_tree_node(2) is None
        assert list(core.bitfield_pages()) == [(0, _page(0, 1)), (40, _page(5))]
        assert core.get_bitfield_page(40) == _page(5) and core.get_bitfield_page(1) is None


def test_a_second_core_gets_the_next_pointers_and_keeps_the_default(tmp_path: Path) -> None:
    other = Namespace(PRIMARY).core("other")
    with RocksStoreStorage(tmp_path) as store:
        first = store.create_core(AUTH, alias=ALIAS)
        second = store.create_core(Auth(other.key, other.discovery_key, other.manifest))
        assert (first.record.core_pointer, second.record.core_pointer) == (0, 1)
        assert second.record.alias is None and store.get_default_discovery_key() == NAMED.discovery_key
        store.set_default_discovery_key(other.discovery_key)
        assert store.get_default_discovery_key() == other.discovery_key
        assert set(store.discovery_keys()) == {NAMED.discovery_key, other.discovery_key}
        assert second.get_auth().key_pair is None and second.get_head() is None
        assert second.get_hints() == Hints(0)


def test_bytes_on_disk_are_hypercore_storages(tmp_path: Path) -> None:
    # index-encoder keys
    assert [key_uint(n) for n in (0, 0xFB, 0xFC, 0xFFFF, 0x10000, 2**32)] == [
        b"\x00", b"\xfb", b"\xfc\x00\xfc", b"\xfc\xff\xff", b"\xfd\x00\x01\x00\x00",
        b"\xfe" + (2**32).to_bytes(8, "big")]
    assert key_string("a\x00b") == b"\x00a\x00\x02b\x00\x01"
    # values: compact-encoding, hyperschema's layouts
    seed, dk = b"\x01" * 32, b"\x02" * 32
    assert encode_store_head(StoreHead(3, 4, 0, seed, dk)) == b"\x02\x03\x04\x00\x03" + seed + dk
    assert encode_core_record(CoreRecord(2, 1, 1, (dk, "é"))) == b"\x02\x01\x01\x01\x02\xc3\xa9" + dk
    assert encode_head(Head(1, 2, seed, None)) == b"\x01\x02" + seed + b"\x00\x00"
    assert encode_hints(Hints(0)) == b"\x00" and encode_hints(Hints(300)) == b"\x01\xfd\x2c\x01"
    assert encode_tree_node(Node(2, 10, seed)) == b"\x02\x0a" + seed
    kp = key_pair(b"\x03" * 32)
    manifest = Manifest(signers=(Signer(kp.public_key),), quorum=1)
    body = b"\x01\x00\x00\x01\x01\x00" + manifest.signers[0].namespace + kp.public_key
    assert encode_auth(Auth(seed, dk, manifest, kp)) == (
        seed + dk + b"\x03" + bytes((len(body),)) + body + b"\x20" + kp.public_key + b"\x40" + kp.secret_key)
    # and under which keys
    with RocksStoreStorage(tmp_path) as store:
        store.set_primary_key(PRIMARY)
        core = store.create_core(AUTH, alias=ALIAS)
        w = core.write()
        w.put_block(300, b"block")
        w.put_tree_node(Node(300, 5, seed))
        w.put_bitfield_page(1, _page(3))
        w.commit()
        raw = dict(store._range(b"", b"\xff"))
    assert raw[b"\x00"] == encode_store_head(StoreHead(1, 1, 0, PRIMARY, NAMED.discovery_key))
    assert raw[b"\x01" + NAMED.discovery_key] == encode_core_record(CoreRecord(2, 0, 0, ALIAS))
    assert raw[b"\x02" + ALIAS[0] + key_string("main")] == NAMED.discovery_key
    assert raw[b"\x03\x00\x00"] == encode_auth(AUTH)
    assert raw[b"\x04\x00\x03\xfc\x01\x2c"] == b"block"
    assert raw[b"\x04\x00\x04\xfc\x01\x2c"] == encode_tree_node(Node(300, 5, seed))
    assert raw[b"\x04\x00\x05\x01\x00"] == _page(3)
    assert len(raw) == 7


def test_a_batch_is_all_or_nothing(tmp_path: Path) -> None:
    with RocksStoreStorage(tmp_path) as store:
        core = store.create_core(AUTH)
        w = core.write()
        w.put_block(0, b"a")
        assert core.get_block(0) is None  # nothing before commit
        with pytest.raises(ValueError):
            w.put_bitfield_page(0, b"short")
        w.commit()
        assert core.get_block(0) == b"a"
        with pytest.raises(ValueError):
            w.commit()  # once only
        w2 = core.write()
        w2.put_block(1, b"b")
        w2.set_head(Head(0, 2, bytes(32), None))
        # dropped without commit: nothing of it is stored
    with RocksStoreStorage(tmp_path) as store:
        core = store.open_core(AUTH.discovery_key)
        assert core is not None and core.get_block(1) is None and core.get_head() is None


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)


_DIE = """
import os, sys
from hypernode.core11.rocks import RocksStoreStorage
from tests.test_core11_rocks import AUTH
store = RocksStoreStorage(sys.argv[1])
core = store.create_core(AUTH)
w = core.write()
for i in range(200):
    w.put_block(i, os.urandom(5000 if i % 2 else 10))
if sys.argv[2] == "commit":
    w.commit()
os._exit(0)  # dies without closing: no flush, the lock goes with the process
"""


@pytest.mark.parametrize("commit", [True, False])
def test_a_process_that_dies_leaves_its_batch_whole_or_absent(tmp_path: Path, commit: bool) -> None:
    proc = _run(_DIE, str(tmp_path), "commit" if commit else "no")
    assert proc.returncode == 0, proc.stderr
    with RocksStoreStorage(tmp_path) as store:
        core = store.open_core(AUTH.discovery_key)
        assert core is not None
        held = [core.get_block(i) is not None for i in range(200)]
        assert held == [commit] * 200


def test_delete_ranges(tmp_path: Path) -> None:
    with RocksStoreStorage(tmp_path) as store:
        core = store.create_core(AUTH)
        w = core.write()
        for i in (0, 1, 2, 5, 251, 252, 300, 70000):
            w.put_block(i, b"%d" % i)
            w.put_tree_node(Node(i, 1, bytes(32)))
            w.put_bitfield_page(i, _page(i % 100))
        w.commit()
        w = core.write()
        w.delete_block_range(1, 252)
        w.delete_tree_node_range(300, -1)
        w.delete_bitfield_page_range(2, 2)  # empty
        w.delete_bitfield_page_range(5, 300)
        w.put_block(2, b"again")  # after the delete in the same batch: kept
        w.commit()
        assert [i for i in (0, 1, 2, 5, 251, 252, 300, 70000) if core.get_block(i) is not None] == [
            0, 2, 252, 300, 70000]
        assert core.get_block(2) == b"again"
        nodes = [i for i in (0, 1, 2, 5, 251, 252, 300, 70000) if core.get_tree_node(i)]
        assert nodes == [0, 1, 2, 5, 251, 252]
        assert [i for i, _ in core.bitfield_pages()] == [0, 1, 2, 300, 70000]


def test_a_second_opener_is_refused_here_and_in_another_process(tmp_path: Path) -> None:
    store = RocksStoreStorage(tmp_path)
    try:
        store.set_primary_key(PRIMARY)
        with pytest.raises(StoreLockedError):
            RocksStoreStorage(tmp_path)
        proc = _run("import sys\nfrom hypernode.core11.rocks import RocksStoreStorage\n"
                    "from hypernode.errors import StoreLockedError\n"
                    "try:\n    RocksStoreStorage(sys.argv[1])\nexcept StoreLockedError as e:\n"
                    "    print('locked', e)\n", str(tmp_path))
        assert proc.stdout.startswith("locked store "), proc.stderr
        assert store.get_primary_key() == PRIMARY
    finally:
        store.close()
    store.close()  # idempotent
    with pytest.raises(ValueError):
        store.get_primary_key()
    with RocksStoreStorage(tmp_path) as again:
        assert again.get_primary_key() == PRIMARY


def _snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_a_directory_holding_something_else_is_refused_untouched(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    (other / "cores").mkdir()  # what a corestore 6 store looks like
    before = _snapshot(other)
    with pytest.raises(StoreRefusedError, match="no CORESTORE"):
        RocksStoreStorage(other)
    assert _snapshot(other) == before and sorted(os.listdir(other)) == ["cores", "notes.txt"]

    not_rocks = tmp_path / "not-rocks"
    RocksStoreStorage(not_rocks).close()
    shutil.rmtree(not_rocks / "db")
    (not_rocks / "db").mkdir()
    (not_rocks / "db" / "notes.txt").write_text("a user's notes")
    before = _snapshot(not_rocks)
    with pytest.raises(StoreRefusedError, match="not a RocksDB database: notes.txt"):
        RocksStoreStorage(not_rocks)
    assert _snapshot(not_rocks) == before

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(StoreRefusedError):
        RocksStoreStorage(a_file)


def test_an_empty_device_file_is_refused_a_leftover_temporary_one_is_not_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "CORESTORE").write_bytes(b"")
    with pytest.raises(StoreRefusedError, match="empty"):
        RocksStoreStorage(tmp_path / "cut")
    assert os.listdir(tmp_path / "cut") == ["CORESTORE"]
    assert (tmp_path / "cut" / "CORESTORE").read_bytes() == b""

    (tmp_path / "left").mkdir()
    (tmp_path / "left" / ".CORESTORE.1234.abcdef01").write_bytes(b"device/platform=linux\n")
    with RocksStoreStorage(tmp_path / "left") as store:
        store.set_primary_key(PRIMARY)
    with RocksStoreStorage(tmp_path / "left") as store:
        assert store.get_primary_key() == PRIMARY


_RACE = """
import sys, time
from hypernode.core11.rocks import RocksStoreStorage
from hypernode.errors import StoreLockedError
try:
    store = RocksStoreStorage(sys.argv[1])
except StoreLockedError:
    print("locked")
else:
    time.sleep(0.3)
    store.close()
    print("opened")
"""


def test_openers_racing_for_a_new_store_get_it_or_a_lock_error(tmp_path: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _RACE, str(tmp_path / "new")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    outcomes = [out.strip() for out, _ in results]
    assert "opened" in outcomes and set(outcomes) <= {"opened", "locked"}
    assert sorted(os.listdir(tmp_path / "new")) == ["CORESTORE", "db"]
    RocksStoreStorage(tmp_path / "new").close()  # its device file verifies


def test_a_copied_store_is_refused_as_js_refuses_it(tmp_path: Path) -> None:
    with RocksStoreStorage(tmp_path / "store") as store:
        store.set_primary_key(PRIMARY)
    shutil.copytree(tmp_path / "store", tmp_path / "copy")
    before = _snapshot(tmp_path / "copy")
    with pytest.raises(StoreRefusedError, match="CORESTORE"):
        RocksStoreStorage(tmp_path / "copy")
    assert _snapshot(tmp_path / "copy") == before
    with RocksStoreStorage(tmp_path / "store") as store:  # the original still opens
        assert store.get_primary_key() == PRIMARY


@pytest.mark.parametrize("what", ["store head", "core record", "auth", "head", "hints", "tree node",
                                  "bitfield page", "alias"])
def test_a_corrupt_value_raises_and_the_store_stays_usable(tmp_path: Path, what: str) -> None:
    with RocksStoreStorage(tmp_path) as store:
        store.set_primary_key(PRIMARY)
        core = store.create_core(AUTH, alias=ALIAS)
        w = core.write()
        w.set_head(Head(0, 1, bytes(32), b"s" * 64))
        w.set_hints(Hints(1))
        w.put_tree_node(Node(0, 1, bytes(32)))
        w.put_bitfield_page(0, _page(0))
        w.put_block(0, b"b")
        w.commit()
        key = {"store head": b"\x00", "core record": b"\x01" + AUTH.discovery_key, "auth": b"\x03\x00\x00",
               "head": b"\x04\x00\x00", "hints": b"\x04\x00\x02", "tree node": b"\x04\x00\x04\x00",
               "bitfield page": b"\x04\x00\x05\x00\x00",
               "alias": b"\x02" + ALIAS[0] + key_string("main")}[what]
        _raw_put(store, key, b"\xfe\x01")  # cut short
    with RocksStoreStorage(tmp_path) as store:
        read = {
            "store head": store.get_primary_key,
            "core record": lambda: store.open_core(AUTH.discovery_key),
            "auth": lambda: store.open_core(AUTH.discovery_key),
            "alias": lambda: store.get_alias(*ALIAS),
        }
        if what in read:
            with pytest.raises(CorruptStorageError, match=key.hex()):
                read[what]()
            return
        core = store.open_core(AUTH.discovery_key)
        assert core is not None
        reads = {"head": core.get_head, "hints": core.get_hints, "tree node": lambda: core.get_tree_node(0),
                 "bitfield page": lambda: list(core.bitfield_pages())}
        with pytest.raises(CorruptStorageError, match=key.hex()) as e:
            reads[what]()
        assert isinstance(e.value, OSError) and str(tmp_path) in str(e.value)
        assert core.get_block(0) == b"b" and store.get_primary_key() == PRIMARY  # still usable


def test_a_tree_node_under_another_index_is_corrupt(tmp_path: Path) -> None:
    with RocksStoreStorage(tmp_path) as store:
        core = store.create_core(AUTH)
        _raw_put(store, b"\x04\x00\x04\x05", encode_tree_node(Node(6, 1, bytes(32))))
        with pytest.raises(CorruptStorageError, match="says it is node 6"):
            core.get_tree_node(5)


@pytest.mark.parametrize("key", [b"\x04\x00\x05\xfc\x01", b"\x04\x00\x05\x01", b"\x04\x00\x05\x01\x00\x07",
                                 b"\x04\x00\x05\xff"])
def test_a_bitfield_key_that_does_not_decode_is_corrupt(tmp_path: Path, key: bytes) -> None:
    with RocksStoreStorage(tmp_path) as store:
        core = store.create_core(AUTH)
        w = core.write()
        w.put_bitfield_page(0, _page(1))
        w.commit()
        _raw_put(store, key, _page(2))
        with pytest.raises(CorruptStorageError, match=key.hex()):
            list(core.bitfield_pages())
        assert core.get_bitfield_page(0) == _page(1)


def test_a_bitfield_of_another_type_is_left_alone(tmp_path: Path) -> None:
    with RocksStoreStorage(tmp_path) as store:
        core = store.create_core(AUTH)
        _raw_put(store, b"\x04\x00\x05\x00\x01", b"another kind")
        w = core.write()
        w.put_bitfield_page(0, _page(1))
        w.delete_bitfield_page_range(1, -1)
        w.commit()
        assert list(core.bitfield_pages()) == [(0, _page(1))]
        assert store._get(b"\x04\x00\x05\x00\x01") == b"another kind"


@pytest.mark.parametrize("what, key", [("named sessions", b"\x03\x00\x01"),
                                       ("a corestore group", b"\x03\x00\x02"),
                                       ("a batch dependency", b"\x04\x00\x01")])
def test_cores_using_what_we_do_not_support_are_refused(tmp_path: Path, what: str, key: bytes) -> None:
    with RocksStoreStorage(tmp_path) as store:
        store.create_core(AUTH)
        _raw_put(store, key, b"\x00")
    with RocksStoreStorage(tmp_path) as store:
        with pytest.raises(UnsupportedStoreError, match=what):
            store.open_core(AUTH.discovery_key)
        assert list(store.discovery_keys()) == [AUTH.discovery_key]


def test_a_store_head_of_version_1_reads_and_a_newer_one_is_refused() -> None:
    seed = b"\x05" * 32
    assert decode_store_head(b"\x01\x03\x02\x07" + seed) == StoreHead(2, 7, 0, seed, None)
    with pytest.raises(DecodeError):
        decode_store_head(b"\x03\x00\x00\x00\x00")


# --- hypothesis over the value codecs ------------------------------------------------------------------

_b32 = st.binary(min_size=32, max_size=32)
_uint = st.integers(0, 2**53 - 1)
_signers = st.lists(st.builds(Signer, public_key=_b32, namespace=_b32), max_size=3)


@st.composite
def _manifests(draw: st.DrawFn) -> Manifest:
    version = draw(st.integers(0, 3))
    signers = draw(_signers)
    return Manifest(signers=tuple(signers), version=version, quorum=draw(st.integers(0, len(signers))),
                    allow_patch=draw(st.booleans()),
                    prologue=draw(st.none() | st.builds(Prologue, _b32, _uint)),
                    linked=draw(st.none() | st.lists(_b32, max_size=2).map(tuple)) if version >= 2 else None,
                    user_data=draw(st.none() | st.binary(max_size=40)) if version >= 2 else None)


_auths = st.builds(Auth, key=_b32, discovery_key=_b32, manifest=st.none() | _manifests(),
                   key_pair=st.none() | st.binary(min_size=32, max_size=32).map(key_pair),
                   encryption_key=st.none() | st.binary(max_size=64))


@settings(max_examples=200, deadline=None)
@given(_auths, st.builds(Head, _uint, _uint, _b32, st.none() | st.binary(min_size=1, max_size=200)),
       st.builds(Hints, _uint), st.builds(Node, _uint, _uint, _b32),
       st.builds(StoreHead, _uint, _uint, _uint, st.none() | _b32, st.none() | _b32),
       st.builds(CoreRecord, _uint, _uint, _uint, st.none() | st.tuples(_b32, st.text(max_size=20))))
def test_codecs_round_trip(auth: Auth, head: Head, hints: Hints, node: Node, store_head: StoreHead,
                           record: CoreRecord) -> None:
    assert decode_auth(encode_auth(auth)) == auth
    assert decode_head(encode_head(head)) == head
    assert decode_hints(encode_hints(hints)) == hints
    assert decode_tree_node(encode_tree_node(node)) == node
    assert decode_store_head(encode_store_head(store_head)) == store_head
    assert decode_core_record(encode_core_record(record)) == record


def _node_by_reader(data: bytes) -> Node:
    """A stored tree node read field by field with compact-encoding's Reader (what the short cuts in
    rocks.decode_tree_node must agree with)."""
    return decode(lambda r: Node(r.uint(), r.uint(), r.fixed32()), data)


# indexes and sizes around every width of compact-encoding's uint (1, 3, 5 and 9 bytes)
_edgy_uint = st.sampled_from([0, 1, 0xFC, 0xFD, 0xFFFF, 0x10000, 0xFFFFFFFF, 2**32, 2**53 - 1]) | _uint | \
    st.integers(0, 0x1FFFF) | st.integers(0xFFFF0000, 0x1FFFFFFFF)


@settings(max_examples=500, deadline=None)
@given(_edgy_uint, _edgy_uint, _b32)
def test_tree_node_codec_is_compact_encoding(index: int, size: int, hash: bytes) -> None:
    node = Node(index, size, hash)
    data = encode_tree_node(node)
    assert data == Writer().uint(index).uint(size).fixed32(hash).getvalue()
    assert decode_tree_node(data) == _node_by_reader(data) == node


@settings(max_examples=1000, deadline=None)
@given(st.binary(min_size=30, max_size=50) | st.builds(
    lambda head, body: head + body,
    st.sampled_from([b"\xfe", b"\xfd", b"\xff", b"\x05"]), st.binary(min_size=33, max_size=45)))
def test_tree_node_decoder_agrees_with_the_reader_on_any_bytes(data: bytes) -> None:
    """Non-canonical uints (0xfd 0x05 0x00 for 5), short or long values: the same node or DecodeError."""
    try:
        expected: Node | None = _node_by_reader(data)
    except DecodeError:
        expected = None
    if expected is None:
        with pytest.raises(DecodeError):
            decode_tree_node(data)
    else:
        assert decode_tree_node(data) == expected


_DECODERS = [decode_auth, decode_head, decode_hints, decode_tree_node, decode_store_head, decode_core_record]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(_DECODERS), st.binary(max_size=300))
def test_decoders_raise_only_decode_error_on_any_bytes(decoder: object, data: bytes) -> None:
    assert callable(decoder)
    try:
        decoder(data)
    except DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_DECODERS), _auths, st.data())
def test_decoders_refuse_truncated_or_flipped_values(decoder: object, auth: Auth,
                                                     data: st.DataObject) -> None:
    assert callable(decoder)
    value = encode_auth(auth)
    cut = value[:data.draw(st.integers(0, len(value) - 1))]
    with pytest.raises(DecodeError):
        decode_auth(cut)
    flipped = bytearray(value)
    flipped[data.draw(st.integers(0, len(value) - 1))] ^= data.draw(st.integers(1, 255))
    try:
        decoder(bytes(flipped))
    except DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(_uint, _uint, st.text(max_size=8), st.text(max_size=8))
def test_keys_sort_as_their_values(a: int, b: int, s: str, t: str) -> None:
    """Delete ranges and page iteration rely on it: index-encoder keys sort as the numbers (and the
    UTF-8 of the strings) they encode."""
    assert (key_uint(a) < key_uint(b)) == (a < b)
    assert (key_string(s) < key_string(t)) == (s.encode() < t.encode())


def test_reading_a_reopened_core_in_order_holds_what_its_caches_hold(tmp_path: Path) -> None:
    """A core of 100,000 blocks on RocksDB, reopened and read block by block: what Python holds does not
    grow with the blocks read (RocksDB's block cache has its own bound; interop/bench/core11_core_bench.py
    shows the process's RSS while a core of 1,000,000 blocks is read)."""
    n = 100_000
    with Corestore(tmp_path) as store:
        core = store.get("big")
        for start in range(0, n, 25_000):
            core.append([i.to_bytes(8, "little") for i in range(start, start + 25_000)])
    with Corestore(tmp_path) as store:
        core = store.get("big")
        tracemalloc.start()
        try:
            for i in range(1000):
                assert core.get(i) == i.to_bytes(8, "little")
            base = tracemalloc.get_traced_memory()[0]
            for i in range(1000, n):
                assert core.get(i) == i.to_bytes(8, "little")
            grown = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        assert grown < 64 * 1024, grown
        assert core.bitfield.cached <= 4 and core.tree.cached == 0
