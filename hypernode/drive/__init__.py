"""The drive layer: hyperdrive 10 on hypertrie 5 (:mod:`hypernode.trie`), stored and replicated as JS
hyperdrive does.

- :mod:`hypernode.drive.hyperdrive` — :class:`Hyperdrive`: files, folders, symlinks, mounts, tags;
- :mod:`hypernode.drive.stat` — :class:`Stat`, the value of every entry (hyperdrive-schemas 2.0.0);
- :mod:`hypernode.drive.fd` — file descriptors;
- :mod:`hypernode.drive.paths` — path validation (no ``..``, no NUL);
- :mod:`hypernode.drive.errors` — the OSErrors drives raise (ENOENT, EEXIST, ENOTDIR, EISDIR, ...).
"""

from hypernode.drive.errors import (
    BadFileDescriptor,
    ContentNotAvailable,
    CorruptEntry,
    DirectoryNotEmpty,
    DriveError,
    FileNotFound,
    InvalidArgument,
    IsADirectory,
    NotADirectory,
    PathAlreadyExists,
    PermissionDenied,
)
from hypernode.drive.hyperdrive import Hyperdrive, ReadStream, WriteStream
from hypernode.drive.stat import Mount, Stat

__all__ = [
    "Hyperdrive", "ReadStream", "WriteStream", "Stat", "Mount", "DriveError", "FileNotFound",
    "PathAlreadyExists", "NotADirectory", "IsADirectory", "DirectoryNotEmpty", "PermissionDenied",
    "BadFileDescriptor", "InvalidArgument", "CorruptEntry", "ContentNotAvailable",
]
