"""Writing files into a drive's content feed: one contiguous run of blocks per file, and no lock held
between calls.

hyperdrive 10 locates a file by ``offset``/``blocks`` in its drive's content feed, so the blocks of one
file must be contiguous there. JS hyperdrive keeps them so by locking the content feed from the moment a
write stream or a writable descriptor starts until it ends: every other writer waits for it. Here no
lock lives longer than one call: a descriptor may be opened in one task, written in a second and closed
in a third (a FUSE mount or an HTTP gateway does that), and a descriptor nobody closes must not block
the drive. Instead:

- :class:`ContentLog`, one per content feed (shared by every drive object on that feed), appends runs of
  blocks under a short lock, taken and released inside one call.
- :class:`WriteSession` holds the bytes of one file being written (by a write stream or a
  descriptor). While what it has appended is still the last thing in the feed, each flush appends
  right after it: an uncontended write costs nothing extra and keeps no more than its buffer in
  memory. Once another writer has appended in between, its run is no longer at the tail: from then on
  its bytes are *staged* in a temporary file (kept in memory up to 1 MiB, then on disk, so memory stays
  bounded for any size), block lengths recorded; when the session finishes, the run so far is copied
  from the feed and the staged bytes appended after it, as one run, under the lock. So each file costs
  one copy of its bytes at most, and only when writers really interleave. A file being appended to
  starts with its existing blocks: at the feed's tail they are continued in place, else copied when
  the session finishes (as JS copies them at the start).
- :class:`FileWrite` is a session plus where its entry goes (a trie key of the drive holding the
  path): the file changes only when :meth:`FileWrite.commit` puts its new entry, after every byte is
  in the feed. A session given up (a cancelled commit, a descriptor never closed) leaves blocks no entry
  points at: space, never a wrong file (JS's failed write streams leave the same).

Descriptors (:mod:`hypernode.drive.fd`) and write streams (:class:`WriteStream`) both write through
:class:`FileWrite`; :meth:`Hyperdrive.begin_write` makes one.
"""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import trio

from hypernode.drive.errors import ContentNotAvailable
from hypernode.drive.stat import Stat, now_ms
from hypernode.errors import HypernodeError
from hypernode.feed import Feed
from hypernode.trie import Hypertrie

WRITE_BLOCK_SIZE = 512 * 1024  # hyperdrive's write streams cut content into blocks of this size
BATCH_BYTES = 8 * 1024 * 1024  # bytes appended to the feed per call at most while copying or flushing
BATCH_BLOCKS = 64
STAGE_IN_MEMORY = 1 << 20  # staged bytes kept in memory before they spill to a temporary file


@dataclass(frozen=True)
class Extent:
    """Where a file's bytes are: blocks ``[offset, offset + blocks)`` of a content feed, holding
    ``size`` bytes from byte ``byte_offset``."""

    offset: int
    blocks: int
    byte_offset: int
    size: int

    @property
    def end(self) -> int:
        return self.offset + self.blocks


@dataclass(frozen=True)
class Span:
    """The first ``size`` bytes of blocks ``[start, end)`` of the content feed (the last block may be
    cut: a truncated file). ``whole``: the bytes are every byte of those blocks."""

    start: int
    end: int
    size: int
    whole: bool


def cut(data: bytes | bytearray | memoryview, size: int = WRITE_BLOCK_SIZE) -> list[bytes]:
    """``data`` in blocks of at most ``size`` bytes (none for no data)."""
    view = memoryview(data)
    return [bytes(view[i:i + size]) for i in range(0, len(view), size)]


def _batches(blocks: Iterable[bytes]) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    n = 0
    for b in blocks:
        batch.append(b)
        n += len(b)
        if n >= BATCH_BYTES or len(batch) >= BATCH_BLOCKS:
            yield batch
            batch, n = [], 0
    if batch:
        yield batch


_logs: weakref.WeakKeyDictionary[Feed, ContentLog] = weakref.WeakKeyDictionary()
_writing: weakref.WeakSet[FileWrite] = weakref.WeakSet()  # every write whose size stat shows


def content_log(feed: Feed) -> ContentLog:
    """The one :class:`ContentLog` of a content feed (every drive object on the feed shares it)."""
    log = _logs.get(feed)
    if log is None:
        log = _logs[feed] = ContentLog(feed)
    return log


def writing_size(feed: Feed | None, key: str) -> int | None:
    """The bytes written so far by a descriptor writing ``key`` into ``feed``'s drive, or None when
    none is (cheap when no descriptor writes anywhere: reads ask on every call)."""
    if not _writing or feed is None:
        return None
    log = _logs.get(feed)
    write = log.writing.get(key) if log is not None else None
    return None if write is None else write.size


class _Run:
    """A run being appended under the lock: checks each batch lands right after the last one."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.offset = feed.length
        self.byte_offset = feed.byte_length
        self.blocks = 0
        self.size = 0

    async def add(self, batch: list[bytes]) -> None:
        if not batch:
            return
        n = sum(len(b) for b in batch)
        start = await self.feed.append(batch)
        if start != self.offset + self.blocks:
            raise HypernodeError("the content feed was appended to outside its drive: a file's blocks "
                                 "would not be contiguous")
        self.blocks += len(batch)
        self.size += n

    def extent(self) -> Extent:
        return Extent(self.offset, self.blocks, self.byte_offset, self.size)


class ContentLog:
    """The write side of one content feed: runs of blocks appended under a lock held within one call,
    and the sizes of files being written through descriptors (which ``stat`` reports, as JS does)."""

    def __init__(self, feed: Feed) -> None:
        # weakly: the registry of logs is keyed weakly by the feed, and a value holding its key would
        # keep both forever
        self._feed = weakref.ref(feed)
        self.lock = trio.Lock()  # taken and released inside one call, never across calls
        self.writing: dict[str, FileWrite] = {}  # trie key -> the descriptor write showing its size

    @property
    def feed(self) -> Feed:
        feed = self._feed()
        assert feed is not None, "a content log outlived its feed"  # a caller holds the feed
        return feed

    async def append(self, blocks: Iterable[bytes]) -> Extent:
        """Append ``blocks`` as one run; an empty ``blocks`` gives an empty extent at the tail."""
        async with self.lock:
            run = _Run(self.feed)
            for batch in _batches(blocks):
                await run.add(batch)
            return run.extent()

    async def append_file(self, prefix: Span | None, zeros: int = 0) -> Extent:
        """A run holding the bytes of ``prefix`` (copied from the feed) followed by ``zeros`` zero bytes
        (a truncated or zero-extended file)."""
        async with self.lock:
            run = _Run(self.feed)
            spans = [prefix] if prefix is not None and prefix.size else []
            for batch in _batches(self._blocks(spans, None, [], _zero_blocks(zeros))):
                await run.add(batch)
            return run.extent()

    def _blocks(self, spans: list[Span], staged: Any, lengths: list[int], tail: list[bytes]
                ) -> Iterator[bytes]:
        """The blocks of a file rebuilt at the tail: its spans copied from the feed, its staged blocks,
        then ``tail``."""
        for span in spans:
            left = span.size
            for i in range(span.start, span.end):
                if left <= 0:
                    break
                if not self.feed.has(i):
                    raise ContentNotAvailable(f"block {i} of the content feed is not stored here "
                                              f"(cleared?): cannot copy it")
                block = self.feed.read_block_sync(i)
                if len(block) > left:
                    block = block[:left]
                left -= len(block)
                yield block
            if left > 0:
                raise ContentNotAvailable(f"blocks {span.start}..{span.end} hold fewer bytes than the file")
        if staged is not None:
            staged.seek(0)
            for n in lengths:
                block = staged.read(n)
                if len(block) != n:
                    raise HypernodeError("a staged block of a file being written was lost")
                yield block
        yield from tail


def _zero_blocks(n: int) -> list[bytes]:
    full, rest = divmod(n, WRITE_BLOCK_SIZE)
    zero = bytes(WRITE_BLOCK_SIZE) if full else b""
    return [zero] * full + ([bytes(rest)] if rest else [])


class WriteSession:
    """The bytes of one file being written (see the module docstring).

    ``coalesce=0`` appends every write as its own blocks (cut at 512 KiB; an empty write is an empty
    block), as hyperdrive's write streams do; ``coalesce=N`` gathers writes until ``N`` bytes, as
    hyperdrive's descriptors do (in blocks of about 64 KiB). ``prefix``: bytes already in the feed that
    the file starts with (a file opened for appending).
    """

    def __init__(self, log: ContentLog, *, prefix: Span | None = None, coalesce: int = 0) -> None:
        self.log = log
        self._spans: list[Span] = [prefix] if prefix is not None and prefix.size else []
        self._staged: Any = None  # a SpooledTemporaryFile once the session lost the tail
        self._lengths: list[int] = []  # the staged blocks' lengths
        self._buffer = bytearray()
        self._coalesce = coalesce
        self.size = sum(s.size for s in self._spans)  # bytes of the file so far
        self.closed = False

    def _live(self) -> bool:
        """Can the next blocks go right after what this session has in the feed? (under the lock)"""
        if self._staged is not None:
            return False
        if not self._spans:
            return True  # nothing yet: a new run starts at the tail
        if len(self._spans) > 1:
            return False
        span = self._spans[0]
        return span.whole and span.end == self.log.feed.length

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Add ``data`` to the file. A cancelled write adds nothing (the session stays as it was)."""
        if self.closed:
            raise HypernodeError("the write session is finished")
        if self._coalesce:
            if len(self._buffer) + len(data) < self._coalesce:
                self._buffer += data
                self.size += len(data)
                return
            blocks = cut(bytes(self._buffer) + bytes(data))
            await self._flush(blocks)
            self._buffer.clear()
        else:
            await self._flush(cut(data) or [b""])
        self.size += len(data)

    async def _flush(self, blocks: list[bytes]) -> None:
        async with self.log.lock:
            if self._live():
                run = _Run(self.log.feed)
                for batch in _batches(blocks):
                    await run.add(batch)
                self._extend(run.extent())
                return
        self._stage(blocks)

    def _extend(self, e: Extent) -> None:
        if not e.blocks:
            return
        if self._spans:
            s = self._spans[0]
            self._spans[0] = Span(s.start, e.end, s.size + e.size, True)
        else:
            self._spans = [Span(e.offset, e.end, e.size, True)]

    def _stage(self, blocks: list[bytes]) -> None:
        if self._staged is None:
            self._staged = tempfile.SpooledTemporaryFile(max_size=STAGE_IN_MEMORY)
        self._staged.seek(0, 2)
        for b in blocks:
            self._staged.write(b)
            self._lengths.append(len(b))

    async def finish(self) -> Extent:
        """Every byte of the file as one run of the feed; returns where. An empty session (nothing
        written, no prefix) gives an empty extent at the feed's tail (no block)."""
        if self.closed:
            raise HypernodeError("the write session is finished")
        tail = cut(self._buffer)
        log = self.log
        async with log.lock:
            if self._live() and self._spans:
                run = _Run(log.feed)
                for batch in _batches(tail):
                    await run.add(batch)
                self._extend(run.extent())
                span = self._spans[0]  # whole, and ending at the feed's tail
                extent = Extent(span.start, span.end - span.start, log.feed.byte_length - span.size,
                                span.size)
            else:
                run = _Run(log.feed)
                for batch in _batches(log._blocks(self._spans, self._staged, self._lengths, tail)):
                    await run.add(batch)
                extent = run.extent()
        self.discard()
        return extent

    def discard(self) -> None:
        """Give the session up (its temporary file is removed; blocks appended stay unreferenced)."""
        self.closed = True
        self._buffer.clear()
        if self._staged is not None:
            self._staged.close()
            self._staged = None


def file_stat(extent: Extent, *, mode: int | None = None, uid: int = 0, gid: int = 0,
              mtime: int | None = None, ctime: int | None = None,
              metadata: dict[str, bytes] | None = None) -> Stat:
    """The Stat of a file whose bytes are ``extent`` (one timestamp for whichever time is not given)."""
    t = now_ms()
    return Stat.file(mode=mode, uid=uid, gid=gid, offset=extent.offset, byte_offset=extent.byte_offset,
                     size=extent.size, blocks=extent.blocks, mtime=mtime or t, ctime=ctime or t,
                     metadata=dict(metadata or {}))


class FileWrite:
    """A file being written into a drive: its bytes (a :class:`WriteSession`) and where its entry goes
    (``key`` in ``trie``). The file changes when :meth:`commit` puts the new entry, not before.

    ``track_size``: ``stat`` of the path reports the bytes written so far while this write is open (as
    hyperdrive does for descriptors).
    """

    def __init__(self, log: ContentLog, trie: Hypertrie, key: str, *, prefix: Span | None = None,
                 coalesce: int = 0, fields: dict[str, Any] | None = None, flags: int = 0,
                 track_size: bool = False) -> None:
        self.log = log
        self.trie = trie
        self.key = key
        self.session = WriteSession(log, prefix=prefix, coalesce=coalesce)
        self.fields = dict(fields or {})
        self.flags = flags
        self.stat: Stat | None = None
        self._tracked = track_size
        if track_size:
            log.writing[key] = self
            _writing.add(self)

    @property
    def size(self) -> int:
        return self.session.size

    @property
    def closed(self) -> bool:
        return self.session.closed

    async def write(self, data: bytes | bytearray | memoryview) -> int:
        await self.session.write(data)
        return len(data)

    async def commit(self) -> Stat:
        """Finish the bytes, then put the file's entry (shielded: once the bytes are in, the entry
        follows). Returns the new Stat. A commit cancelled before the entry is put leaves the file as
        it was."""
        try:
            extent = await self.session.finish()
            st = file_stat(extent, **self.fields)
            with trio.CancelScope(shield=True):
                await self.trie.put(self.key, st.encode(), flags=self.flags)
            self.stat = st
            return st
        finally:
            self.discard()

    def discard(self) -> None:
        """Give the write up: the file keeps its entry as it is."""
        self.session.discard()
        if self._tracked:
            if self.log.writing.get(self.key) is self:
                del self.log.writing[self.key]
            _writing.discard(self)
        self._tracked = False
