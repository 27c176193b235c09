"""``Stat``: the value of every file, folder, symlink and mount entry of a drive.

Encoded with the ``Stat`` message of hyperdrive-schemas 2.0.0 (``protocol/hyperdrive.proto``), so JS
hyperdrive 10 reads what we write and the reverse. Times are integers, milliseconds since the epoch, as
JS stores its ``Date`` objects. ``offset``/``blocks`` locate a file's blocks in its drive's content
feed, ``byte_offset``/``size`` its bytes.
"""

from __future__ import annotations

import stat as _stat
import time
from dataclasses import dataclass, field, replace
from typing import Any, Self

from hypernode.drive.errors import CorruptEntry
from hypernode.messages import hyperdrive as _schema
from hypernode.protobuf import DecodeError

IFMT = _stat.S_IFMT(0o177777)
IFREG, IFDIR, IFLNK = _stat.S_IFREG, _stat.S_IFDIR, _stat.S_IFLNK
DEFAULT_FILE_MODE = 0o644
DEFAULT_DIR_MODE = 0o755
_UINT64 = (1 << 64) - 1


@dataclass
class Mount:
    """Where a mount entry points: another drive (or, with ``hypercore``, a bare feed)."""

    key: bytes
    version: int | None = None
    hash: bytes | None = None
    hypercore: bool = False


def now_ms() -> int:
    return int(time.time() * 1000)


_NOW = -1  # a time not given: the moment the Stat is made (one clock reading for both times)


@dataclass
class Stat:
    mode: int = 0
    uid: int = 0
    gid: int = 0
    size: int = 0
    blocks: int = 0
    offset: int = 0
    byte_offset: int = 0
    mtime: int = _NOW
    ctime: int = _NOW
    linkname: str | None = None
    mount: Mount | None = None
    metadata: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mtime == _NOW or self.ctime == _NOW:
            t = now_ms()  # one reading: a new entry's ctime and mtime are equal, as JS's are
            if self.mtime == _NOW:
                self.mtime = t
            if self.ctime == _NOW:
                self.ctime = t

    # -- kinds ------------------------------------------------------------------------------------

    @classmethod
    def file(cls, **fields: Any) -> Stat:
        fields["mode"] = (fields.get("mode") or DEFAULT_FILE_MODE) | IFREG
        return cls(**fields)

    @classmethod
    def directory(cls, **fields: Any) -> Stat:
        fields["mode"] = (fields.get("mode") or DEFAULT_DIR_MODE) | IFDIR
        return cls(**fields)

    @classmethod
    def symlink(cls, **fields: Any) -> Stat:
        fields["mode"] = (fields.get("mode") or DEFAULT_FILE_MODE) | IFLNK
        return cls(**fields)

    def _check(self, mask: int) -> bool:
        return (self.mode & mask) == mask

    def is_file(self) -> bool:
        return self._check(IFREG)

    def is_directory(self) -> bool:
        return self._check(IFDIR)

    def is_symlink(self) -> bool:
        return self._check(IFLNK)

    def copy(self, **changes: Any) -> Self:
        st = replace(self, **changes)
        if "metadata" not in changes:
            st.metadata = dict(self.metadata)
        return st

    # -- encoding ---------------------------------------------------------------------------------

    def encode(self) -> bytes:
        for name in ("mode", "uid", "gid"):
            v = getattr(self, name)
            # uint32 fields, but JS reads and writes back whatever varint a peer stored there
            if not 0 <= v <= _UINT64:
                raise ValueError(f"stat {name} out of range: {v}")
        mount = None
        if self.mount is not None:
            mount = _schema.Mount(key=self.mount.key, version=self.mount.version, hash=self.mount.hash,
                                  hypercore=bool(self.mount.hypercore))  # JS writes false too
        msg = _schema.Stat(mode=self.mode, uid=self.uid, gid=self.gid, size=self.size, blocks=self.blocks,
                           offset=self.offset, byteOffset=self.byte_offset, mtime=self.mtime,
                           ctime=self.ctime, linkname=self.linkname, mount=mount,
                           metadata=dict(self.metadata))
        return msg.encode()

    @classmethod
    def decode(cls, buf: bytes, path: str = "") -> Stat:
        """Decode an entry's value; anything that is not a valid Stat raises :class:`CorruptEntry`."""
        try:
            m = _schema.Stat.decode(buf)
        except DecodeError as e:
            raise CorruptEntry(f"the entry at {path or '?'} is not a valid Stat: {e}", path) from None
        mount = None
        if m.mount is not None:
            if len(m.mount.key) != 32:
                raise CorruptEntry(f"the mount at {path or '?'} has a key of {len(m.mount.key)} bytes", path)
            mount = Mount(m.mount.key, m.mount.version, m.mount.hash, bool(m.mount.hypercore))
        metadata = {k: (v if v is not None else b"") for k, v in m.metadata.items()}
        return cls(mode=m.mode, uid=m.uid or 0, gid=m.gid or 0, size=m.size or 0, blocks=m.blocks or 0,
                   offset=m.offset or 0, byte_offset=m.byteOffset or 0, mtime=m.mtime or 0,
                   ctime=m.ctime or 0, linkname=m.linkname or None, mount=mount, metadata=metadata)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (keys hex), with JS's field names."""
        return {
            "mode": self.mode, "uid": self.uid, "gid": self.gid, "size": self.size, "blocks": self.blocks,
            "offset": self.offset, "byteOffset": self.byte_offset, "mtime": self.mtime, "ctime": self.ctime,
            "linkname": self.linkname,
            "mount": None if self.mount is None else {"key": self.mount.key.hex(),
                                                      "version": self.mount.version},
            "metadata": {k: v.hex() for k, v in self.metadata.items()},
        }
