"""The drive layer: hyperdrive 10 on hypertrie 5 (:mod:`hypernode.trie`), stored and replicated as JS
hyperdrive does.

- :mod:`hypernode.drive.hyperdrive` — :class:`Hyperdrive`: files, folders, symlinks, mounts, tags,
  diffs, stats, clear, mirror; how drives JS wrote read (a path may be a file and a folder);
- :mod:`hypernode.drive.content` — writing files into the content feed: one contiguous run per file,
  no lock held between calls (:class:`~hypernode.drive.content.FileWrite`);
- :mod:`hypernode.drive.fd` — file descriptors, usable from any task;
- :mod:`hypernode.drive.stat` — :class:`Stat`, the value of every entry (hyperdrive-schemas 2.0.0);
- :mod:`hypernode.drive.paths` — path validation (no ``..``, no NUL);
- :mod:`hypernode.drive.errors` — the OSErrors drives raise (ENOENT, EEXIST, ENOTDIR, EISDIR, ELOOP, ...).

Imports go one way: errors, paths, stat <- content <- fd <- hyperdrive.
"""

from hypernode.drive.errors import (
    BadFileDescriptor,
    ContentNotAvailable,
    CorruptEntry,
    CrossDevice,
    DirectoryNotEmpty,
    DriveError,
    FileNotFound,
    InvalidArgument,
    IsADirectory,
    NotADirectory,
    PathAlreadyExists,
    PermissionDenied,
    SymlinkLoop,
)
from hypernode.drive.hyperdrive import DriveChange, FileStats, Hyperdrive, MountInfo, ReadStream, WriteStream
from hypernode.drive.stat import Mount, Stat

__all__ = [
    "Hyperdrive", "ReadStream", "WriteStream", "Stat", "Mount", "DriveChange", "FileStats", "MountInfo",
    "DriveError", "FileNotFound", "PathAlreadyExists", "NotADirectory", "IsADirectory", "DirectoryNotEmpty",
    "PermissionDenied", "BadFileDescriptor", "InvalidArgument", "SymlinkLoop", "CorruptEntry", "CrossDevice",
    "ContentNotAvailable",
]
