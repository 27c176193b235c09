"""A corestore 7 store on disk in hypercore-storage 3's format: what JS hypercore 11 writes, over RocksDB.

:class:`RocksStoreStorage` implements :class:`~hypernode.core11.storage.StoreStorage` (and its cores
:class:`~hypernode.core11.storage.CoreStorage`) over RocksDB through ``rocksdict``, byte for byte as the
pinned JS stack (hypercore-storage 3.3.2 over rocksdb-native 3.18.1, RocksDB 10.5.1) lays it out, so
that corestore 7 opens a store Python wrote and Python opens one JS wrote.

The directory
    ``CORESTORE`` (the "device file": text lines ``device/platform=linux``, ``device/inode=N``,
    ``device/created=MS`` and ``device/attribute=original`` when the ``user.device-file`` extended
    attribute could be set; JS's device-file module) and ``db/``, the RocksDB database (rocksdict adds
    its own ``db/rocksdict-config.json``, which RocksDB and JS ignore). Everything lives in the column
    family ``corestore``, with blob files for values of 4 KiB and more and no compression (JS's RocksDB
    is built without compression libraries, so it could not read a compressed table).

Keys (index-encoder: ``UINT`` is one byte up to 0xfb, else 0xfc/0xfd/0xfe and a big-endian 16/32/64-bit
number; 0xff is "infinity", the end of a range; a ``STRING`` is 0x00, its bytes with each 0x00 followed
by 0x02, then 0x00 0x01) and values (compact-encoding, hyperschema's layouts):

    ==============================================  ===============================================
    ``00``                                          store head: version 2, cores, datas, groups
                                                    (pointers allocated so far), flags, seed (the
                                                    primary key), default discovery key
    ``01`` discovery key                            core: version, core pointer, data pointer, alias
    ``02`` namespace ``STRING(name)``               the discovery key (32 raw bytes)
    ``03 UINT(core) 00``                            auth: key, discovery key, manifest, key pair,
                                                    encryption key
    ``04 UINT(data) 00``                            head: fork, length, tree hash, signature
    ``04 UINT(data) 02``                            hints: contiguous length
    ``04 UINT(data) 03 UINT(index)``                block (raw bytes)
    ``04 UINT(data) 04 UINT(index)``                tree node: flat index, size, hash
    ``04 UINT(data) 05 UINT(page) UINT(0)``         bitfield page (4,096 raw bytes)
    ==============================================  ===============================================

Every :meth:`CoreWrite.commit` and every store-level change is one RocksDB write batch. Reads are point
lookups. The tables' index and filter blocks stay in memory, held by RocksDB's table readers as JS pins
them in its block cache (about 1.25 bytes a key for the filters: 4 MiB for a core of a million blocks,
whatever is read); data blocks go through RocksDB's default 32 MiB block cache, so reading a core holds no
more memory the more of it is read.

Safety. Opening takes an exclusive lock on ``CORESTORE`` (an open-file-description ``fcntl`` lock on
Linux, the lock JS takes; ``flock`` elsewhere, as JS on macOS) before anything else is written, then
RocksDB takes its own ``db/LOCK``: a second opener, Python or JS, fails (Python with
:class:`~hypernode.errors.StoreLockedError`). A new store's ``CORESTORE`` is written and locked under a
temporary name (``.CORESTORE.<pid>.<random>``) and linked into place, so it is whole or absent, and of
two openers racing to make a store one gets it. A directory that is not empty and has no ``CORESTORE``
(a corestore 6 store, a pre-device-file JS store that JS would move into ``db/``, anything else), or
whose ``db/`` holds files that are not RocksDB's, is refused with
:class:`~hypernode.errors.StoreRefusedError` before anything is written in it, as is a ``CORESTORE``
that is empty or says the store was copied or moved (its inode, attribute or times changed: JS refuses
those too). A value on disk that does not decode raises :class:`~hypernode.errors.CorruptStorageError`
naming the database and the key; the store stays open and usable.

What is not supported (hypercore-storage features step 1 does not use): named sessions, batches with
dependencies and corestore groups. A core that has any of them is refused when opened
(:class:`~hypernode.errors.UnsupportedStoreError`), so nothing is written under them. User data,
marks and local values are never read nor touched: they stay as they are. A key pair stored without
its secret key reads as ``key_pair=None``; the remote contiguous length and recovery hints and the head
timestamp are read but not kept (JS writes neither the timestamp nor, from hypercore's own hint
updates, the other hints).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import struct
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from rocksdict import (
    BlockBasedOptions,
    DBCompressionType,
    Options,
    Rdict,
    WriteBatch,
)

from hypernode.core11.crypto import KeyPair
from hypernode.core11.encoding import Reader, Writer, decode
from hypernode.core11.manifest import Manifest, read_manifest_fields, write_manifest_fields
from hypernode.core11.storage import BITFIELD_PAGE_BYTES, Auth, Head, Hints
from hypernode.core11.tree import Node
from hypernode.errors import (
    CorruptStorageError,
    DecodeError,
    StoreLockedError,
    StoreRefusedError,
    UnsupportedStoreError,
)

__all__ = ["RocksStoreStorage", "RocksCoreStorage", "RocksCoreWrite", "StoreHead", "CoreRecord",
           "COLUMN_FAMILY", "STORE_VERSION", "encode_store_head", "decode_store_head", "encode_core_record",
           "decode_core_record", "encode_auth", "decode_auth", "encode_head", "decode_head", "encode_hints",
           "decode_hints", "encode_tree_node", "decode_tree_node", "key_uint", "key_string"]

_T = TypeVar("_T")

COLUMN_FAMILY = "corestore"
STORE_VERSION = 2  # hypercore-storage's VERSION: of the store head and of each core record
DEVICE_FILE = "CORESTORE"
_TMP_PREFIX = ".CORESTORE."
_ROCKSDB_FILE = re.compile(r"LOCK|LOG|LOG\.old\.\d+|IDENTITY|CURRENT|MANIFEST-\d+|OPTIONS-\d+|"
                           r"\d+\.(log|sst|blob|dbtmp)|rocksdict-config\.json")
DB_DIR = "db"
_DEVICE_ATTR = "user.device-file"
_MODIFIED_SLACK_MS = 5000
_JS_PLATFORM = {"linux": "linux", "darwin": "darwin", "win32": "win32"}.get(sys.platform, sys.platform)

# top-level key spaces
_TL_HEAD, _TL_CORE_BY_DKEY, _TL_CORE_BY_ALIAS, _TL_CORE, _TL_DATA = 0, 1, 2, 3, 4
# under a core pointer
_CORE_AUTH, _CORE_SESSIONS, _CORE_GROUP = 0, 1, 2
# under a data pointer
_DATA_HEAD, _DATA_DEPENDENCY, _DATA_HINTS, _DATA_BLOCK, _DATA_TREE, _DATA_BITFIELD = 0, 1, 2, 3, 4, 5
_INFINITY = b"\xff"


# --- keys: index-encoder ------------------------------------------------------------------------------

_BYTE = [bytes((i,)) for i in range(256)]


def key_uint(n: int) -> bytes:
    """index-encoder's ``UINT`` (order-preserving: big endian after a length marker)."""
    if 0 <= n <= 0xFB:
        return _BYTE[n]
    if n < 0 or n > 2**53 - 1:
        raise ValueError(f"key uint out of range: {n}")
    if n <= 0xFFFF:
        return b"\xfc" + n.to_bytes(2, "big")
    if n <= 0xFFFFFFFF:
        return b"\xfd" + n.to_bytes(4, "big")
    return b"\xfe" + n.to_bytes(8, "big")


def _read_key_uint(key: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(key):
        raise DecodeError("key ends early")
    a = key[pos]
    width = {0xFC: 2, 0xFD: 4, 0xFE: 8}.get(a, 0)
    if a == 0xFF:
        raise DecodeError("key holds the end-of-range marker")
    if pos + 1 + width > len(key):
        raise DecodeError("key ends early")
    if width == 0:
        return a, pos + 1
    return int.from_bytes(key[pos + 1:pos + 1 + width], "big"), pos + 1 + width


def key_string(s: str) -> bytes:
    """index-encoder's ``STRING``: 0x00, the UTF-8 with every 0x00 escaped as 0x00 0x02, then 0x00 0x01."""
    return b"\x00" + s.encode("utf-8").replace(b"\x00", b"\x00\x02") + b"\x00\x01"


def _head_key() -> bytes:
    return bytes((_TL_HEAD,))


def _core_key(discovery_key: bytes) -> bytes:
    return bytes((_TL_CORE_BY_DKEY,)) + discovery_key


def _alias_key(namespace: bytes, name: str) -> bytes:
    return bytes((_TL_CORE_BY_ALIAS,)) + namespace + key_string(name)


def _core_prefix(core_pointer: int, kind: int) -> bytes:
    return bytes((_TL_CORE,)) + key_uint(core_pointer) + bytes((kind,))


def _data_prefix(data_pointer: int, kind: int) -> bytes:
    return bytes((_TL_DATA,)) + key_uint(data_pointer) + bytes((kind,))


# --- values: compact-encoding, hypercore-storage's hyperschema ----------------------------------------

@dataclass(frozen=True, slots=True)
class StoreHead:
    """The store's head record: the pointers allocated so far, the seed (primary key) and the default
    discovery key."""

    cores: int = 0
    datas: int = 0
    groups: int = 0
    seed: bytes | None = None
    default_discovery_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class CoreRecord:
    """Where a core's records live (its core and data pointers), and the alias it was made under."""

    version: int
    core_pointer: int
    data_pointer: int
    alias: tuple[bytes, str] | None = None


def _decoder(read: Callable[[Reader], _T]) -> Callable[[bytes], _T]:
    def run(data: bytes) -> _T:
        try:
            return decode(read, data)
        except DecodeError:
            raise
        except (ValueError, TypeError) as e:  # a dataclass refused what the bytes said
            raise DecodeError(str(e)) from None
    return run


def encode_store_head(h: StoreHead) -> bytes:
    """Version 2: cores, datas, groups, flags (1 seed, 2 default discovery key), then those."""
    w = Writer().uint(STORE_VERSION).uint(h.cores).uint(h.datas).uint(h.groups)
    w.uint((1 if h.seed is not None else 0) | (2 if h.default_discovery_key is not None else 0))
    if h.seed is not None:
        w.fixed32(h.seed)
    if h.default_discovery_key is not None:
        w.fixed32(h.default_discovery_key)
    return w.getvalue()


def _read_store_head(r: Reader) -> StoreHead:
    version = r.uint()
    if version in (0, 1):  # head-v1: flags (1 allocated, 2 seed, 4 default discovery key) first
        flags = r.uint()
        cores, datas = (r.uint(), r.uint()) if flags & 1 else (0, 0)
        seed = r.fixed32() if flags & 2 else None
        ddk = r.fixed32() if flags & 4 else None
        return StoreHead(cores, datas, 0, seed, ddk)
    if version != 2:
        raise DecodeError(f"store head version {version} (this reads up to {STORE_VERSION})")
    cores, datas, groups, flags = r.uint(), r.uint(), r.uint(), r.uint()
    seed = r.fixed32() if flags & 1 else None
    ddk = r.fixed32() if flags & 2 else None
    return StoreHead(cores, datas, groups, seed, ddk)


decode_store_head = _decoder(_read_store_head)


def encode_core_record(c: CoreRecord) -> bytes:
    w = Writer().uint(c.version).uint(c.core_pointer).uint(c.data_pointer).uint(1 if c.alias else 0)
    if c.alias is not None:
        w.string(c.alias[1]).fixed32(c.alias[0])
    return w.getvalue()


def _read_core_record(r: Reader) -> CoreRecord:
    version, core_pointer, data_pointer, flags = r.uint(), r.uint(), r.uint(), r.uint()
    alias = None
    if flags & 1:
        name = r.string()
        alias = (r.fixed32(), name)
    return CoreRecord(version, core_pointer, data_pointer, alias)


decode_core_record = _decoder(_read_core_record)


def _write_storage_manifest(w: Writer, m: Manifest) -> None:
    # hyperschema's @core/manifest: the version-1 layout whatever the version (not hypercore's own
    # version-0 wire form)
    write_manifest_fields(w.uint(m.version), m)


def _read_storage_manifest(r: Reader) -> Manifest:
    return read_manifest_fields(r, r.uint())


def encode_auth(a: Auth) -> bytes:
    """key, discovery key, flags (1 manifest, 2 key pair, 4 encryption key), a framed manifest, the key
    pair (buffer public key, optional-buffer secret key), the encryption key (buffer)."""
    flags = ((1 if a.manifest is not None else 0) | (2 if a.key_pair is not None else 0)
             | (4 if a.encryption_key is not None else 0))
    w = Writer().fixed32(a.key).fixed32(a.discovery_key).uint(flags)
    if a.manifest is not None:
        manifest = a.manifest
        w.frame(lambda w: _write_storage_manifest(w, manifest))
    if a.key_pair is not None:
        w.buffer(a.key_pair.public_key).optional_buffer(a.key_pair.secret_key)
    if a.encryption_key is not None:
        w.buffer(a.encryption_key)
    return w.getvalue()


def _read_auth(r: Reader) -> Auth:
    key, discovery_key, flags = r.fixed32(), r.fixed32(), r.uint()
    manifest = r.frame(_read_storage_manifest) if flags & 1 else None
    key_pair = None
    if flags & 2:
        public_key, secret_key = r.buffer(), r.optional_buffer()
        if len(public_key) != 32 or (secret_key is not None and len(secret_key) != 64):
            raise DecodeError("a key pair is a 32-byte public key and a 64-byte secret key")
        if secret_key is not None:
            key_pair = KeyPair(public_key, secret_key)
    encryption_key = r.buffer() if flags & 4 else None
    return Auth(key=key, discovery_key=discovery_key, manifest=manifest, key_pair=key_pair,
                encryption_key=encryption_key)


decode_auth = _decoder(_read_auth)


def encode_head(h: Head) -> bytes:
    """fork, length, tree hash, optional-buffer signature, flags 0 (no timestamp)."""
    return (Writer().uint(h.fork).uint(h.length).fixed32(h.root_hash).optional_buffer(h.signature)
            .uint(0).getvalue())


def _read_head(r: Reader) -> Head:
    fork, length, root_hash, signature = r.uint(), r.uint(), r.fixed32(), r.optional_buffer()
    flags = r.uint() if not r.done() else 0
    if flags & 1:
        r.uint64()  # a timestamp: not kept
    return Head(fork=fork, length=length, root_hash=root_hash, signature=signature)


decode_head = _decoder(_read_head)


def encode_hints(h: Hints) -> bytes:
    w = Writer().uint(1 if h.contiguous_length else 0)
    if h.contiguous_length:
        w.uint(h.contiguous_length)
    return w.getvalue()


def _read_hints(r: Reader) -> Hints:
    flags = r.uint()
    contiguous = r.uint() if flags & 1 else 0
    if flags & 2:
        r.uint()  # remote contiguous length
    if flags & 4:
        r.uint()  # recovering
    return Hints(contiguous_length=contiguous)


decode_hints = _decoder(_read_hints)


_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")
_MAX_UINT = 2**53 - 1  # compact-encoding's uint: a JS safe integer


def _cuint(n: int) -> bytes:
    """compact-encoding's ``uint`` (what :meth:`Writer.uint` writes), for the hot paths below."""
    if 0 <= n <= 0xFC:
        return _BYTE[n]
    if n < 0 or n > _MAX_UINT:
        raise ValueError(f"uint out of range: {n!r} (0 to {_MAX_UINT})")
    if n <= 0xFFFF:
        return b"\xfd" + _U16.pack(n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + _U32.pack(n)
    return b"\xff" + _U64.pack(n)


def encode_tree_node(n: Node) -> bytes:
    """index, size (uints), hash (32 bytes)."""
    if len(n.hash) != 32:
        raise ValueError(f"expected 32 bytes, got {len(n.hash)}")
    return _cuint(n.index) + _cuint(n.size) + n.hash


def _read_tree_node(r: Reader) -> Node:
    return Node(index=r.uint(), size=r.uint(), hash=r.fixed32())


_decode_tree_node = _decoder(_read_tree_node)


def decode_tree_node(data: bytes) -> Node:
    """A stored tree node (the usual short form read at once; anything else through the Reader)."""
    if len(data) == 34:  # index and size both below 0xfd: one byte each
        index, size = data[0], data[1]
        if index <= 0xFC and size <= 0xFC:
            return Node(index, size, data[2:])
    elif len(data) > 34 and data[0] == 0xFE and len(data) >= 38:
        # a 4-byte index (most nodes of a big core) and a size of 1, 3 or 5 bytes
        s = data[5]
        width = 1 if s <= 0xFC else 3 if s == 0xFD else 5 if s == 0xFE else 0
        if width and len(data) == 37 + width:
            index = _U32.unpack_from(data, 1)[0]
            size = s if width == 1 else int.from_bytes(data[6:5 + width], "little")
            if index > 0xFFFF and (width == 1 or size > (0xFC if width == 3 else 0xFFFF)):
                return Node(index, size, data[5 + width:])
    return _decode_tree_node(data)


# --- the device file and the lock ---------------------------------------------------------------------

def _lock(fd: int) -> bool:
    """An exclusive lock on the whole file without waiting: False if another holder has it."""
    try:
        if hasattr(fcntl, "F_OFD_SETLK"):  # Linux: the lock JS's fs-native-extensions takes
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("@hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return False
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _write_device_file(fd: int) -> None:
    created = int(time.time() * 1000)
    text = f"device/platform={_JS_PLATFORM}\ndevice/inode={os.fstat(fd).st_ino}\ndevice/created={created}\n"
    try:
        os.setxattr(fd, _DEVICE_ATTR, b"original")
        text += "device/attribute=original\n"
    except (OSError, AttributeError):
        pass
    os.pwrite(fd, text.encode(), 0)
    os.fsync(fd)


def _verify_device_file(fd: int, directory: str) -> None:
    """Refuse a device file that says the store was copied, moved or edited, as JS does."""
    fields: dict[str, str] = {}
    for line in os.pread(fd, 4096, 0).decode("utf-8", "replace").strip().split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            fields[k.strip()] = v.strip()
    st = os.fstat(fd)
    try:
        attr = os.getxattr(fd, _DEVICE_ATTR).decode("utf-8", "replace")
    except (OSError, AttributeError):
        attr = ""
    platform = fields.get("device/platform", "")
    if platform and platform != _JS_PLATFORM:
        raise StoreRefusedError(directory, f"its CORESTORE file was made on another platform ({platform})")
    if attr != fields.get("device/attribute", ""):
        raise StoreRefusedError(directory, "its CORESTORE file was moved unsafely (copied or restored "
                                           "from a backup): opening it could fork its cores")
    try:
        inode = int(fields.get("device/inode", "0"))
        created = int(fields.get("device/created", "0"))
    except ValueError:
        raise StoreRefusedError(directory, "its CORESTORE file is not a device file") from None
    modified = st.st_mtime_ns // 1_000_000
    if inode != st.st_ino or (created and abs(modified - created) >= _MODIFIED_SLACK_MS):
        raise StoreRefusedError(directory, "its CORESTORE file was modified or the store copied: "
                                           "opening it could fork its cores")


def _create_device_file(directory: str) -> int | None:
    """Make ``CORESTORE`` whole or not at all: written and locked under a temporary name, then linked
    into place (which fails if another opener made one first: then None). Returns the locked fd."""
    tmp = os.path.join(directory, f"{_TMP_PREFIX}{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        if not _lock(fd):
            raise OSError(errno.EAGAIN, "a file just made could not be locked", tmp)
        _write_device_file(fd)
        try:
            os.link(tmp, os.path.join(directory, DEVICE_FILE))
        except FileExistsError:
            os.close(fd)
            return None
        dir_fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return fd
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _open_device_file(directory: str) -> int:
    """The store's ``CORESTORE``, locked (made if missing), or StoreLockedError / StoreRefusedError."""
    path = os.path.join(directory, DEVICE_FILE)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            made = _create_device_file(directory)
            if made is None:
                continue  # another opener made it first: open theirs (and find it locked)
            return made
        try:
            if not _lock(fd):
                raise StoreLockedError(directory, None)
            if os.fstat(fd).st_size == 0:
                raise StoreRefusedError(directory, "its CORESTORE file is empty (the store's creation was "
                                                   "cut short in JS, which refuses it too)")
            _verify_device_file(fd, directory)
        except BaseException:
            os.close(fd)
            raise
        return fd


def _check_directory(directory: str) -> None:
    """Refuse a directory that holds something other than a corestore 7 store (before anything is
    made in it)."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise StoreRefusedError(directory, "it is not a directory")
    if not os.path.isdir(directory):
        return
    # (a temporary device file left by an opener that died while making the store is ours: not in the way)
    entries = [e for e in os.listdir(directory) if not e.startswith(_TMP_PREFIX)]
    if entries and DEVICE_FILE not in entries:
        raise StoreRefusedError(directory, "it is not empty and has no CORESTORE file, so it is not a "
                                           "corestore 7 store (a corestore 6 store, or something else)")


def _check_database(directory: str) -> None:
    """Refuse a ``db`` that holds something other than a RocksDB database (run under the lock, so that
    no other opener is making the database meanwhile)."""
    db = os.path.join(directory, DB_DIR)
    if not os.path.lexists(db):
        return
    if not os.path.isdir(db):
        raise StoreRefusedError(directory, "its db is not a directory")
    inside = os.listdir(db)
    if "CURRENT" in inside:
        return
    foreign = sorted(f for f in inside if not _ROCKSDB_FILE.fullmatch(f))
    if foreign:  # (a database whose creation was cut short has only RocksDB's own files: it is made anew)
        raise StoreRefusedError(directory, f"its db directory holds files that are not a RocksDB "
                                           f"database: {', '.join(foreign[:3])}")


def _options(create: bool) -> tuple[Options, Options]:
    opts = Options(raw_mode=True)
    opts.create_if_missing(create)
    opts.create_missing_column_families(True)
    opts.set_max_background_jobs(2)
    opts.set_bytes_per_sync(1 << 20)
    opts.set_max_open_files(-1)
    opts.set_compression_type(DBCompressionType.none())  # the default column family too (JS leaves it empty)
    # the column family as hypercore-storage makes it (index.js createColumnFamily)
    cf = Options(raw_mode=True)
    cf.set_compression_type(DBCompressionType.none())
    cf.set_enable_blob_files(True)
    cf.set_min_blob_size(4096)
    cf.set_blob_file_size(256 * 1024 * 1024)
    cf.set_blob_compression_type(DBCompressionType.none())
    cf.set_enable_blob_gc(True)
    cf.set_blob_gc_age_cutoff(0.25)
    cf.set_blob_gc_force_threshold(1.0)
    cf.set_write_buffer_size(64 * 1024 * 1024)
    cf.set_max_write_buffer_number(2)
    table = BlockBasedOptions()
    table.set_block_size(8192)
    # JS asks for index and filter blocks in the block cache, pinned there at every level
    # (rocksdb-native's pinning tiers "all"), so they stay in memory whatever the cache's size.
    # rocksdict cannot say "pinned at every level" (only level 0), and unpinned they do not stay: a
    # big table's filter block (1.25 bytes a key: 4 MiB for a core of a million blocks) is larger than
    # a shard of the default 32 MiB cache, so every lookup read and parsed it again (~500 us a get).
    # Held by the table readers instead (not in the cache), as JS's pinned blocks are: ~2 us a get.
    # (A read-side option: the tables written are the same.)
    table.set_cache_index_and_filter_blocks(False)
    table.set_format_version(6)
    table.set_bloom_filter(10, False)
    cf.set_block_based_table_factory(table)
    return opts, cf


# --- the store ----------------------------------------------------------------------------------------

class RocksStoreStorage:
    """A corestore 7 store in ``directory`` (made if missing or empty), locked for this process until
    :meth:`close`. ``with RocksStoreStorage(d) as s:`` closes it on the way out."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = os.fspath(directory)
        _check_directory(self.directory)
        os.makedirs(self.directory, exist_ok=True)
        fd = _open_device_file(self.directory)
        try:
            _check_database(self.directory)
            db_path = os.path.join(self.directory, DB_DIR)
            opts, cf = _options(create=True)
            try:
                self._db = Rdict(db_path, opts, column_families={COLUMN_FAMILY: cf})
            except Exception as e:
                message = str(e)
                if "lock" in message.lower() and "LOCK" in message:
                    raise StoreLockedError(self.directory, None) from None
                if "Column famil" in message:
                    raise StoreRefusedError(self.directory, f"its database is not hypercore-storage's: "
                                                            f"{message}") from None
                raise CorruptStorageError(db_path, f"RocksDB cannot open it: {message}") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._cf = self._db.get_column_family(COLUMN_FAMILY)
        self._handle = self._db.get_column_family_handle(COLUMN_FAMILY)
        self._cores: dict[bytes, RocksCoreStorage] = {}

    def __enter__(self) -> RocksStoreStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._fd < 0

    # raw access, used by the cores

    def _check_open(self) -> None:
        if self._fd < 0:
            raise ValueError(f"store {self.directory} is closed")

    def _get(self, key: bytes) -> bytes | None:
        if self._fd < 0:
            self._check_open()
        value: bytes | None = self._cf.get(key)
        return value

    def _decode(self, key: bytes, what: str, decoder: Callable[[bytes], _T]) -> _T | None:
        raw = self._get(key)
        if raw is None:
            return None
        try:
            return decoder(raw)
        except DecodeError as e:
            raise self._corrupt(key, f"{what} does not decode: {e}") from None

    def _corrupt(self, key: bytes, problem: str) -> CorruptStorageError:
        return CorruptStorageError(os.path.join(self.directory, DB_DIR), f"key {key.hex()}: {problem}")

    def _range(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) for start <= key < end, in order."""
        self._check_open()
        it = self._cf.iter()
        it.seek(start)
        while it.valid():
            key = it.key()
            if key >= end:
                break
            yield key, it.value()
            it.next()

    def _batch(self) -> WriteBatch:
        return WriteBatch(raw_mode=True)

    def _put(self, batch: WriteBatch, key: bytes, value: bytes) -> None:
        self._check_open()
        batch.put(key, value, self._handle)

    def _delete_range(self, batch: WriteBatch, start: bytes, end: bytes) -> None:
        self._check_open()
        batch.delete_range(start, end, self._handle)

    def _write(self, batch: WriteBatch) -> None:
        self._check_open()
        if not batch.is_empty():
            self._db.write(batch)

    # the store head

    def _store_head(self) -> StoreHead | None:
        return self._decode(_head_key(), "the store head", decode_store_head)

    def _set_store_head(self, update: Callable[[StoreHead], StoreHead]) -> None:
        batch = self._batch()
        self._put(batch, _head_key(), encode_store_head(update(self._store_head() or StoreHead())))
        self._write(batch)

    def get_primary_key(self) -> bytes | None:
        head = self._store_head()
        return head.seed if head is not None else None

    def set_primary_key(self, primary_key: bytes) -> None:
        if len(primary_key) != 32:
            raise ValueError("a primary key is 32 bytes")
        self._set_store_head(lambda h: replace(h, seed=bytes(primary_key)))

    def get_default_discovery_key(self) -> bytes | None:
        head = self._store_head()
        return head.default_discovery_key if head is not None else None

    def set_default_discovery_key(self, discovery_key: bytes) -> None:
        if len(discovery_key) != 32:
            raise ValueError("a discovery key is 32 bytes")
        self._set_store_head(lambda h: replace(h, default_discovery_key=bytes(discovery_key)))

    # cores and aliases

    def get_alias(self, namespace: bytes, name: str) -> bytes | None:
        key = _alias_key(bytes(namespace), name)
        value = self._get(key)
        if value is not None and len(value) != 32:
            raise self._corrupt(key, f"an alias is a 32-byte discovery key, not {len(value)} bytes")
        return value

    def _core_record(self, discovery_key: bytes) -> CoreRecord | None:
        return self._decode(_core_key(bytes(discovery_key)), "a core record", decode_core_record)

    def has_core(self, discovery_key: bytes) -> bool:
        return self._core_record(discovery_key) is not None

    def create_core(self, auth: Auth, *, alias: tuple[bytes, str] | None = None) -> RocksCoreStorage:
        """As hypercore-storage's ``createCore``: a core already here is returned as it is (its alias
        unchanged); a new one gets the next core and data pointers, and becomes the store's default
        core if it has none yet, all in one batch."""
        existing = self.open_core(auth.discovery_key)
        if existing is not None:
            return existing
        if alias is not None and (len(alias[0]) != 32 or not isinstance(alias[1], str)):
            raise ValueError("an alias is a 32-byte namespace and a str name")
        head = self._store_head() or StoreHead()
        record = CoreRecord(STORE_VERSION, head.cores, head.datas,
                            (bytes(alias[0]), alias[1]) if alias is not None else None)
        new_head = replace(head, cores=head.cores + 1, datas=head.datas + 1,
                           default_discovery_key=head.default_discovery_key or auth.discovery_key)
        batch = self._batch()
        self._put(batch, _head_key(), encode_store_head(new_head))
        self._put(batch, _core_key(auth.discovery_key), encode_core_record(record))
        if record.alias is not None:
            self._put(batch, _alias_key(*record.alias), auth.discovery_key)
        self._put(batch, _core_prefix(record.core_pointer, _CORE_AUTH), encode_auth(auth))
        self._write(batch)
        core = RocksCoreStorage(self, auth.discovery_key, record)
        self._cores[auth.discovery_key] = core
        return core

    def open_core(self, discovery_key: bytes) -> RocksCoreStorage | None:
        """The core's storage, or None if this store does not have it. Raises
        :class:`~hypernode.errors.UnsupportedStoreError` for a core that uses named sessions, batch
        dependencies or groups, and :class:`~hypernode.errors.CorruptStorageError` if its records do not
        decode or do not agree."""
        discovery_key = bytes(discovery_key)
        if discovery_key in self._cores:
            return self._cores[discovery_key]
        record = self._core_record(discovery_key)
        if record is None:
            return None
        key = _core_key(discovery_key)
        if record.version == 0:
            raise UnsupportedStoreError(self.directory, f"core {discovery_key.hex()} is still in "
                                                        "corestore 6's files: open the store with JS once "
                                                        "to migrate it")
        if record.version > STORE_VERSION:
            raise UnsupportedStoreError(self.directory, f"core {discovery_key.hex()} has record version "
                                                        f"{record.version} (newer than this reads)")
        for what, k in (("named sessions", _core_prefix(record.core_pointer, _CORE_SESSIONS)),
                        ("a corestore group", _core_prefix(record.core_pointer, _CORE_GROUP)),
                        ("a batch dependency", _data_prefix(record.data_pointer, _DATA_DEPENDENCY))):
            if self._get(k) is not None:
                raise UnsupportedStoreError(self.directory, f"core {discovery_key.hex()} has {what}, "
                                                            "which hypernode does not support")
        core = RocksCoreStorage(self, discovery_key, record)
        auth = core.get_auth()
        if auth.discovery_key != discovery_key:
            raise self._corrupt(key, "the core's auth names another discovery key")
        self._cores[discovery_key] = core
        return core

    def discovery_keys(self) -> Iterator[bytes]:
        start = bytes((_TL_CORE_BY_DKEY,))
        for key, _ in list(self._range(start, bytes((_TL_CORE_BY_DKEY + 1,)))):
            if len(key) != 33:
                raise self._corrupt(key, "a core key is 0x01 and a 32-byte discovery key")
            yield key[1:]

    def close(self) -> None:
        """Flush and close the database, then release the lock (idempotent)."""
        if self._fd < 0:
            return
        try:
            with contextlib.suppress(Exception):
                self._cf.flush()
            self._cf.close()
            self._db.close()
        finally:
            # the column family handle holds the database open (and its LOCK) until it is dropped
            del self._handle, self._cf, self._db
            self._cores.clear()
            fd, self._fd = self._fd, -1
            os.close(fd)  # releases the lock

    def __del__(self) -> None:  # a store dropped without close() must not keep its directory locked
        if getattr(self, "_fd", -1) >= 0:
            with contextlib.suppress(Exception):
                self.close()


# --- a core -------------------------------------------------------------------------------------------

class RocksCoreWrite:
    """A batch of changes to one core: one RocksDB write batch, written by :meth:`commit`."""

    def __init__(self, core: RocksCoreStorage) -> None:
        self._core = core
        self._store = core._store
        self._store._check_open()
        self._batch: WriteBatch | None = self._store._batch()
        # (the column family handle is not kept here: it holds the database open while it lives)

    def _b(self) -> WriteBatch:
        if self._batch is None:
            raise ValueError("this batch was committed already")
        if self._store._fd < 0:
            self._store._check_open()
        return self._batch

    def set_auth(self, auth: Auth) -> None:
        if auth.discovery_key != self._core.discovery_key:
            raise ValueError("a core's auth keeps its discovery key")
        self._store._put(self._b(), self._core._core(_CORE_AUTH), encode_auth(auth))

    def set_head(self, head: Head) -> None:
        self._store._put(self._b(), self._core._head_key, encode_head(head))

    def set_hints(self, hints: Hints) -> None:
        self._store._put(self._b(), self._core._hints_key, encode_hints(hints))

    def put_block(self, index: int, data: bytes | bytearray | memoryview) -> None:
        self._b().put(self._core._block_prefix + key_uint(index), bytes(data), self._store._handle)

    def put_blocks(self, start: int, blocks: Sequence[bytes | bytearray | memoryview]) -> None:
        batch, prefix, handle = self._b(), self._core._block_prefix, self._store._handle
        for i, data in enumerate(blocks, start):
            batch.put(prefix + key_uint(i), bytes(data), handle)

    def delete_block_range(self, start: int, end: int) -> None:
        self._delete_range(_DATA_BLOCK, start, end, b"")

    def put_tree_node(self, node: Node) -> None:
        self._b().put(self._core._tree_prefix + key_uint(node.index), encode_tree_node(node),
                      self._store._handle)

    def put_tree_nodes(self, nodes: Iterable[Node]) -> None:
        batch, prefix, handle = self._b(), self._core._tree_prefix, self._store._handle
        for node in nodes:
            batch.put(prefix + key_uint(node.index), encode_tree_node(node), handle)

    def delete_tree_node_range(self, start: int, end: int) -> None:
        self._delete_range(_DATA_TREE, start, end, b"")

    def put_bitfield_page(self, index: int, page: bytes) -> None:
        if len(page) != BITFIELD_PAGE_BYTES:
            raise ValueError(f"a bitfield page is {BITFIELD_PAGE_BYTES} bytes, not {len(page)}")
        self._store._put(self._b(), self._core._bitfield_prefix + key_uint(index) + b"\x00", bytes(page))

    def delete_bitfield_page_range(self, start: int, end: int) -> None:
        self._delete_range(_DATA_BITFIELD, start, end, b"\x00")

    def _delete_range(self, kind: int, start: int, end: int, suffix: bytes) -> None:
        prefix = self._core._data(kind)
        stop = _INFINITY if end == -1 else key_uint(end)
        if end != -1 and end <= start:
            return
        self._store._delete_range(self._b(), prefix + key_uint(start) + suffix, prefix + stop + suffix)

    def commit(self) -> None:
        """Write every change at once (RocksDB applies a write batch atomically), in the order made."""
        batch = self._b()
        self._store._write(batch)
        self._batch = None


class RocksCoreStorage:
    """One core's records in a :class:`RocksStoreStorage`."""

    def __init__(self, store: RocksStoreStorage, discovery_key: bytes, record: CoreRecord) -> None:
        self._store = store
        self.discovery_key = discovery_key
        self.record = record
        # the keys every read and write builds on
        self._head_key = self._data(_DATA_HEAD)
        self._hints_key = self._data(_DATA_HINTS)
        self._block_prefix = self._data(_DATA_BLOCK)
        self._tree_prefix = self._data(_DATA_TREE)
        self._bitfield_prefix = self._data(_DATA_BITFIELD)

    def _core(self, kind: int) -> bytes:
        return _core_prefix(self.record.core_pointer, kind)

    def _data(self, kind: int) -> bytes:
        return _data_prefix(self.record.data_pointer, kind)

    def get_auth(self) -> Auth:
        key = self._core(_CORE_AUTH)
        auth = self._store._decode(key, "a core's auth", decode_auth)
        if auth is None:
            raise self._store._corrupt(key, f"core {self.discovery_key.hex()} has no auth record")
        return auth

    def get_head(self) -> Head | None:
        return self._store._decode(self._head_key, "a core's head", decode_head)

    def get_hints(self) -> Hints:
        return self._store._decode(self._hints_key, "a core's hints", decode_hints) or Hints()

    def get_block(self, index: int) -> bytes | None:
        return self._store._get(self._block_prefix + key_uint(index))

    def get_tree_node(self, index: int) -> Node | None:
        key = self._tree_prefix + key_uint(index)
        node = self._store._decode(key, "a tree node", decode_tree_node)
        if node is not None and node.index != index:
            raise self._store._corrupt(key, f"tree node {index} says it is node {node.index}")
        return node

    def _page(self, key: bytes, value: bytes) -> bytes:
        if len(value) != BITFIELD_PAGE_BYTES:
            raise self._store._corrupt(key, f"a bitfield page is {BITFIELD_PAGE_BYTES} bytes, "
                                            f"not {len(value)}")
        return value

    def get_bitfield_page(self, index: int) -> bytes | None:
        key = self._bitfield_prefix + key_uint(index) + b"\x00"
        value = self._store._get(key)
        return None if value is None else self._page(key, value)

    def bitfield_pages(self) -> Iterator[tuple[int, bytes]]:
        prefix = self._data(_DATA_BITFIELD)
        for key, value in self._store._range(prefix, self._data(_DATA_BITFIELD + 1)):
            try:
                index, pos = _read_key_uint(key, len(prefix))
                kind, pos = _read_key_uint(key, pos)
            except DecodeError as e:
                raise self._store._corrupt(key, f"a bitfield key does not decode: {e}") from None
            if pos != len(key):
                raise self._store._corrupt(key, "a bitfield key has bytes after its page and type")
            if kind != 0:
                continue  # another kind of bitfield than the block bitfield: not ours
            yield index, self._page(key, value)

    def write(self) -> RocksCoreWrite:
        return RocksCoreWrite(self)
