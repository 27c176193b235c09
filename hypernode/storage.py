"""The six files of a hypercore 9 feed directory, read and written byte-for-byte as JS hypercore does.

- ``key`` (32 bytes) and ``secret_key`` (64 bytes, libsodium layout; only for a writable feed; mode
  0600, whatever the umask, and narrowed to 0600 when an older, wider one is opened);
- ``data``: the blocks, back to back;
- ``tree``: a 32-byte header, then 40 bytes per flat-tree node (32-byte hash, uint64be size);
- ``signatures``: a 32-byte header, then 64 bytes per block index (the signature made when the feed
  reached that length; blank where none was stored);
- ``bitfield``: a 32-byte header, then pages (see :mod:`hypernode.bitfield`).

Every problem reading these files is raised as :class:`~hypernode.errors.CorruptStorageError` naming
the file. Reads and writes are positional (``pread``/``pwrite``), done inline: local disk is fast and
a feed serialises its own writes. Deleting follows random-access-file 2 too: ``delete_data`` cuts the
data file only for a range that reaches its end; ``destroy`` removes the four block files (and the
verified record).

A seventh file is hypernode's own: ``hypernode-verified`` (:data:`VERIFIED_FILENAME`; JS hypercore
ignores files it does not know), the *verified record* a feed leaves when it closes cleanly. It says
which stored blocks were verified (from the block index ``trusted_from`` on), and the *stamps*
(``st_size``, ``st_ino``, ``st_ctime_ns``, ``st_mtime_ns``) that ``data``, ``tree`` and ``bitfield``
had after hypernode's own last write to them. :meth:`Storage.take_verified_record` reads and removes it
when the feed opens (so a process killed with the feed open leaves none), and gives ``trusted_from``
only if all three files still have exactly those stamps: any other writer since (JS, an editor, a
copy, a truncation, even one that puts the mtime back with ``utime``: the ctime cannot be set back)
changes a stamp, and every block stored before that open is then hashed on each read again. The
stamps are taken after each of hypernode's own commits (:meth:`Storage.mark`: the bitfield written,
the data cut) and checked before hypernode's next write to the file and at close: a feed whose files
were written from outside while it was open gets no record. What it cannot see: a write from outside in the
instant between one of hypernode's own writes and the stamp taken after it, and, on file systems
without fine-grained (multigrain) timestamps, one that keeps the size and lands in the same clock tick
(a few milliseconds) as hypernode's last write to the file. Like the feed's other files, the record is
written and removed without ``fsync``. A store kept in memory has no record.
"""

from __future__ import annotations

import errno
import json
import os
import struct
from typing import Any, NamedTuple

from hypernode.bitfield import PAGE_SIZE, header
from hypernode.errors import CorruptStorageError

HEADER_SIZE = 32
NODE_SIZE = 40
SIGNATURE_SIZE = 64
TREE_HEADER = header(2, NODE_SIZE, "BLAKE2b")
SIGNATURES_HEADER = header(1, SIGNATURE_SIZE, "Ed25519")
_u64 = struct.Struct(">Q")
_BLANK_NODE = bytes(NODE_SIZE)
NODE_CACHE_SIZE = 1 << 16  # tree nodes kept in memory (about 10 MB at most)
_BLANK_SIGNATURE = bytes(SIGNATURE_SIZE)
_WRITEV_BYTES = 1 << 20  # bytes per pwritev when a batch of blocks is written
VERIFIED_FILENAME = "hypernode-verified"
_RECORD_FORMAT = "hypernode-verified 1"
_STAMPED = ("data", "tree", "bitfield")  # the files a verified record stamps
Stamp = tuple[int, int, int, int] | None  # (st_size, st_ino, st_ctime_ns, st_mtime_ns); None: no file


class Node(NamedTuple):
    """A merkle tree node: its flat-tree index, BLAKE2b-256 hash and the byte size it covers."""

    index: int  # type: ignore[assignment]  # (shadows tuple.index, which no caller uses)
    hash: bytes
    size: int


class _File:
    """One storage file, opened lazily (a read-only feed never creates ``data`` until it has data)."""

    __slots__ = ("path", "fd", "name", "mode", "written", "marked", "changed_outside")

    def __init__(self, directory: str, name: str, mode: int = 0o644) -> None:
        self.name = name
        self.path = os.path.join(directory, name)
        self.fd = -1
        self.mode = mode  # of a new file; a secret one (0o600) is also narrowed to it when opened
        # the verified record's bookkeeping (data, tree and bitfield only: Storage.start_stamps)
        self.marked: Stamp | bool = False  # the stamp after our last commit; False: not followed
        self.written = False  # written by us since that stamp was taken
        self.changed_outside = False  # its stamp was not the one we left, before a write of ours

    def _before_write(self) -> None:
        """Our first write since the last commit: was the file changed by someone else meanwhile?"""
        if self.marked is not False and self.stamp() != self.marked:
            self.changed_outside = True
        self.written = True

    def mark(self) -> None:
        """Our writes are committed: the stamp they leave (see :meth:`Storage.mark`)."""
        if self.written:
            self.marked = self.stamp()
            self.written = False

    def stamp(self) -> Stamp:
        """The file's (size, inode, ctime, mtime), None if there is no file."""
        try:
            st = os.fstat(self.fd) if self.fd >= 0 else os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise CorruptStorageError(self.path, f"cannot stat: {e.strerror}") from e
        return (st.st_size, st.st_ino, st.st_ctime_ns, st.st_mtime_ns)

    def exists(self) -> bool:
        return self.fd >= 0 or os.path.exists(self.path)

    def _open(self) -> int:
        if self.fd < 0:
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), self.mode)
            except OSError as e:
                raise CorruptStorageError(self.path, f"cannot open: {e.strerror}") from e
            if self.mode & 0o077 == 0:  # a secret: readable by its owner only, whatever made it before
                try:
                    if os.fstat(self.fd).st_mode & 0o077:
                        os.fchmod(self.fd, self.mode)
                except OSError:  # not ours to change: it stays as it is
                    pass
        return self.fd

    def size(self) -> int:
        if self.fd < 0 and not os.path.exists(self.path):
            return 0
        try:
            return os.fstat(self._open()).st_size
        except OSError as e:
            raise CorruptStorageError(self.path, f"cannot stat: {e.strerror}") from e

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``; a short read is a truncated file."""
        try:
            buf = os.pread(self._open(), length, offset)
        except OSError as e:
            raise CorruptStorageError(self.path, f"cannot read: {e.strerror}") from e
        if len(buf) != length:
            raise CorruptStorageError(self.path, f"truncated: wanted {length} bytes at {offset}, file ends")
        return buf

    def read_upto(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (a missing or short file gives fewer)."""
        if self.fd < 0 and not os.path.exists(self.path):
            return b""
        try:
            return os.pread(self._open(), length, offset)
        except OSError as e:
            raise CorruptStorageError(self.path, f"cannot read: {e.strerror}") from e

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        if not self.written:
            self._before_write()
        fd = self._open()
        view = memoryview(data)
        while view:
            try:
                n = os.pwrite(fd, view, offset)
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                raise OSError(e.errno, f"{self.path}: cannot write: {e.strerror}") from e
            view = view[n:]
            offset += n

    def sync(self) -> None:
        if self.fd >= 0:
            os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _MemoryFile:
    """The in-memory twin of :class:`_File` (random-access-memory), for stores without a directory."""

    __slots__ = ("path", "name", "buf", "_exists")

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = f"<memory>/{name}"
        self.buf = bytearray()
        self._exists = False

    def exists(self) -> bool:
        return self._exists

    def size(self) -> int:
        return len(self.buf)

    def read(self, offset: int, length: int) -> bytes:
        if offset + length > len(self.buf):
            raise CorruptStorageError(self.path, f"truncated: wanted {length} bytes at {offset}, file ends")
        return bytes(self.buf[offset:offset + length])

    def read_upto(self, offset: int, length: int) -> bytes:
        return bytes(self.buf[offset:offset + length])

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        self._exists = True
        end = offset + len(data)
        if end > len(self.buf):
            self.buf.extend(bytes(end - len(self.buf)))
        self.buf[offset:end] = data

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


class Storage:
    """A feed directory (or, with ``directory=None``, memory): typed access to its six files."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self._node_cache: dict[int, Node] = {}
        if directory is None:
            self.key: _File | _MemoryFile = _MemoryFile("key")
            self.secret_key: _File | _MemoryFile = _MemoryFile("secret_key")
            self.data: _File | _MemoryFile = _MemoryFile("data")
            self.tree: _File | _MemoryFile = _MemoryFile("tree")
            self.signatures: _File | _MemoryFile = _MemoryFile("signatures")
            self.bitfield: _File | _MemoryFile = _MemoryFile("bitfield")
            return
        os.makedirs(directory, exist_ok=True)
        self.key = _File(directory, "key")
        self.secret_key = _File(directory, "secret_key", mode=0o600)
        self.data = _File(directory, "data")
        self.tree = _File(directory, "tree")
        self.signatures = _File(directory, "signatures")
        self.bitfield = _File(directory, "bitfield")

    # -- opening -----------------------------------------------------------------------------------

    def read_key(self) -> bytes | None:
        raw = self.key.read_upto(0, 33)
        if not raw:
            return None
        if len(raw) != 32:
            raise CorruptStorageError(self.key.path, f"a public key is 32 bytes, found {len(raw)}")
        return raw

    def read_secret_key(self) -> bytes | None:
        raw = self.secret_key.read_upto(0, 65)
        if not raw:
            return None
        if len(raw) != 64:
            raise CorruptStorageError(self.secret_key.path, f"a secret key is 64 bytes, found {len(raw)}")
        return raw

    def read_bitfield(self) -> bytes:
        """The bitfield pages after the header (checking the header if there is one)."""
        size = self.bitfield.size()
        if size == 0:
            return b""
        head = self.bitfield.read_upto(0, HEADER_SIZE)
        if len(head) < HEADER_SIZE or head[0:3] != b"\x05\x02\x57" or head[3] != 0:
            raise CorruptStorageError(self.bitfield.path, "not a hypercore bitfield file (bad header)")
        page_size = int.from_bytes(head[5:7], "big")
        if page_size != PAGE_SIZE:
            raise CorruptStorageError(self.bitfield.path, f"unsupported bitfield page size {page_size}")
        return self.bitfield.read_upto(HEADER_SIZE, size - HEADER_SIZE)

    def check_header(self, f: _File | _MemoryFile, expected: bytes) -> None:
        head = f.read_upto(0, HEADER_SIZE)
        if head and head != expected:
            raise CorruptStorageError(f.path, "bad header: not a hypercore 9 file of this kind")

    def write_headers(self) -> None:
        """Write the headers JS hypercore writes every time it opens a feed."""
        self.check_header(self.tree, TREE_HEADER)
        self.check_header(self.signatures, SIGNATURES_HEADER)
        self.bitfield.write(0, header(0, PAGE_SIZE, None))
        self.signatures.write(0, SIGNATURES_HEADER)
        self.tree.write(0, TREE_HEADER)

    # -- tree --------------------------------------------------------------------------------------

    def get_node(self, index: int) -> Node:
        node = self._node_cache.get(index)
        if node is not None:
            return node
        buf = self.tree.read_upto(HEADER_SIZE + NODE_SIZE * index, NODE_SIZE)
        if len(buf) != NODE_SIZE or buf == _BLANK_NODE:
            raise CorruptStorageError(self.tree.path, f"tree node {index} is missing")
        node = Node(index, buf[:32], _u64.unpack_from(buf, 32)[0])
        self._cache_node(node)
        return node

    def _cache_node(self, node: Node) -> None:
        cache = self._node_cache
        if len(cache) >= NODE_CACHE_SIZE:
            cache.clear()  # cheap and bounded; the nodes in use come back at once
        cache[node.index] = node

    def put_node(self, node: Node) -> None:
        self.tree.write(HEADER_SIZE + NODE_SIZE * node.index, node.hash + _u64.pack(node.size))
        self._cache_node(node)

    def put_node_range(self, start: int, nodes: list[Node | None]) -> None:
        """Write consecutive tree slots from ``start`` in one write (blank where None)."""
        buf = bytearray(NODE_SIZE * len(nodes))
        for i, n in enumerate(nodes):
            if n is not None:
                o = i * NODE_SIZE
                buf[o:o + 32] = n.hash
                _u64.pack_into(buf, o + 32, n.size)
        self.tree.write(HEADER_SIZE + NODE_SIZE * start, buf)
        for n in nodes:
            if n is not None:
                self._cache_node(n)

    # -- signatures --------------------------------------------------------------------------------

    def get_signature(self, index: int) -> bytes | None:
        buf = self.signatures.read_upto(HEADER_SIZE + SIGNATURE_SIZE * index, SIGNATURE_SIZE)
        if len(buf) != SIGNATURE_SIZE or buf == _BLANK_SIGNATURE:
            return None
        return buf

    def put_signature(self, index: int, signature: bytes) -> None:
        self.signatures.write(HEADER_SIZE + SIGNATURE_SIZE * index, signature)

    # -- data --------------------------------------------------------------------------------------

    def read_data(self, offset: int, size: int) -> bytes:
        if size == 0:
            return b""
        return self.data.read(offset, size)

    def write_data(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        if len(data):
            self.data.write(offset, data)

    def write_data_vector(self, offset: int, blocks: list[bytes]) -> None:
        """Write blocks back to back from ``offset`` without joining them first (pwritev), about
        1 MiB per call: one huge pwritev is several times slower on ext4 than many small ones."""
        if len(blocks) == 1 or not isinstance(self.data, _File):
            self.write_data(offset, blocks[0] if len(blocks) == 1 else b"".join(blocks))
            return
        if not self.data.written:
            self.data._before_write()
        fd = self.data._open()
        i = 0
        while i < len(blocks):
            chunk: list[bytes] = []
            want = 0
            while i < len(blocks) and len(chunk) < 512 and (
                    not chunk or want + len(blocks[i]) <= _WRITEV_BYTES):
                if blocks[i]:
                    chunk.append(blocks[i])
                    want += len(blocks[i])
                i += 1
            try:
                written = os.pwritev(fd, chunk, offset) if chunk else 0
            except OSError as e:
                raise OSError(e.errno, f"{self.data.path}: cannot write: {e.strerror}") from e
            if written != want:  # a short write: finish the rest in one piece
                self.data.write(offset + written, b"".join(chunk)[written:])
            offset += want

    def delete_data(self, offset: int, size: int) -> None:
        """Delete data bytes as random-access-file 2 does (what hypercore's ``clear`` calls): only a
        range reaching the end of the file is removed (the file is cut at ``offset``); any other range
        stays as it is."""
        if size <= 0:
            return
        f = self.data
        if offset + size < f.size():
            return
        if isinstance(f, _MemoryFile):
            del f.buf[offset:]
            return
        try:
            if not f.written:
                f._before_write()
            os.ftruncate(f._open(), offset)
        except OSError as e:
            raise OSError(e.errno, f"{f.path}: cannot truncate: {e.strerror}") from e
        self.mark()

    def destroy(self) -> None:
        """Remove the data, tree, bitfield and signatures files (closed first); the key files stay."""
        self.close()
        self._node_cache.clear()
        for f in (self.data, self.tree, self.bitfield, self.signatures):
            if isinstance(f, _MemoryFile):
                f.buf = bytearray()
                f._exists = False
                continue
            try:
                os.unlink(f.path)
            except FileNotFoundError:
                pass
        if self.directory is not None:
            try:
                os.unlink(os.path.join(self.directory, VERIFIED_FILENAME))
            except FileNotFoundError:
                pass

    def write_bitfield_pages(self, pages: list[tuple[int, bytes]]) -> None:
        """Write bitfield pages: the last step of every commit (an append, a flush), after the data
        and tree nodes they describe; the stamps of what we wrote are taken then (:meth:`mark`)."""
        for offset, page in pages:
            self.bitfield.write(HEADER_SIZE + offset, page)
        self.mark()

    # -- the verified record (see the module docstring) ---------------------------------------------

    def _stamped(self) -> list[_File]:
        files = [self.data, self.tree, self.bitfield]
        return [f for f in files if isinstance(f, _File)]

    def mark(self) -> None:
        """Our own writes are committed: take the stamps of the files they changed. Each file must
        still have its stamp before our next write to it (checked then) and at close, for the
        verified record to be written."""
        for f in self._stamped():
            f.mark()

    def take_verified_record(self, length: int) -> int | None:
        """Read and remove the verified record (call it before anything is written to the feed): the
        first block index from which the feed's stored blocks were verified, if the record is there,
        whole, for this ``length``, and ``data``, ``tree`` and ``bitfield`` have exactly the stamps it
        gives; else None (every stored block is then hashed when read). The stamps the next record is
        checked against are taken afterwards, by :meth:`start_stamps`."""
        if self.directory is None:
            return None
        path = os.path.join(self.directory, VERIFIED_FILENAME)
        try:
            with open(path, "rb") as f:
                raw = f.read(4096)
            os.unlink(path)
        except OSError:  # none (the usual first open), or one we cannot read or remove: not trusted
            raw = None
        return _trusted_from(raw, length, {f.name: f.stamp() for f in self._stamped()})

    def start_stamps(self) -> None:
        """The files as this open leaves them (after :meth:`write_headers`): the stamps to compare with
        at close."""
        for f in self._stamped():
            f.written = f.changed_outside = False
            f.marked = f.stamp()

    def write_verified_record(self, length: int, trusted_from: int) -> None:
        """At a clean close: record that blocks from ``trusted_from`` on (of a feed of ``length``
        blocks) are verified, with the files' stamps, unless a file was changed by someone else since
        our last commit (its stamp differs from the one taken then), or nothing is trusted. Writing
        the record is best effort: a failure leaves no record (the next open verifies on reads)."""
        if self.directory is None:
            return
        self.mark()  # our writes since the last commit (a failed one), if any
        files = self._stamped()
        stamps = {f.name: f.stamp() for f in files}
        if trusted_from >= length or any(f.changed_outside or f.marked is False or stamps[f.name] != f.marked
                                         for f in files) or len(files) != len(_STAMPED):
            return
        record = {"format": _RECORD_FORMAT, "length": length, "trusted_from": trusted_from,
                  "stamps": {n: stamps[n] for n in _STAMPED}}
        path = os.path.join(self.directory, VERIFIED_FILENAME)
        try:
            with open(path, "w", encoding="ascii") as f:
                f.write(json.dumps(record, separators=(",", ":")) + "\n")
        except OSError:
            try:
                os.unlink(path)
            except OSError:
                pass

    def close(self) -> None:
        for f in (self.key, self.secret_key, self.data, self.tree, self.signatures, self.bitfield):
            f.close()


def _trusted_from(raw: bytes | None, length: int, stamps: dict[str, Stamp]) -> int | None:
    """``trusted_from`` of a verified record read as ``raw``, if it is whole, for ``length``, and its
    stamps are ``stamps``; else None."""
    if raw is None:
        return None
    try:
        record: Any = json.loads(raw)
        if record.get("format") != _RECORD_FORMAT or type(record.get("length")) is not int or \
                record["length"] != length:
            return None
        recorded = record["stamps"]
        for name in _STAMPED:
            value = recorded[name]
            if (None if value is None else tuple(value)) != stamps[name]:
                return None
        trusted = record["trusted_from"]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    if type(trusted) is not int or not 0 <= trusted <= length:
        return None
    return trusted
