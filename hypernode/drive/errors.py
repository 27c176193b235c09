"""The errors a drive raises: :class:`OSError` subclasses carrying the errno JS hyperdrive 10 uses.

``except FileNotFoundError`` and ``err.errno == errno.ENOENT`` both work, as they would for the local
filesystem; every class also derives from :class:`DriveError` (and so from
:class:`~hypernode.errors.HypernodeError`) for callers that want to catch drive errors as one kind.
"""

from __future__ import annotations

import errno

from hypernode.errors import BlockNotAvailableError, HypernodeError


class DriveError(HypernodeError, OSError):
    """Base class: an OSError whose ``errno`` is set, with the path it concerns in ``filename``."""

    errno_value = errno.EIO
    code = "EIO"

    def __init__(self, message: str, path: str | None = None) -> None:
        OSError.__init__(self, self.errno_value, message)
        if path is not None:
            self.filename = path

    def __str__(self) -> str:
        return f"[{self.code}] {self.strerror}"


class FileNotFound(DriveError, FileNotFoundError):
    errno_value, code = errno.ENOENT, "ENOENT"

    def __init__(self, path: str) -> None:
        super().__init__(f"No such file or directory: '{path}'", path)


class PathAlreadyExists(DriveError, FileExistsError):
    errno_value, code = errno.EEXIST, "EEXIST"

    def __init__(self, path: str) -> None:
        super().__init__(f"Path {path} already exists", path)


class NotADirectory(DriveError, NotADirectoryError):
    errno_value, code = errno.ENOTDIR, "ENOTDIR"

    def __init__(self, path: str) -> None:
        super().__init__(f"Not a directory: '{path}'", path)


class IsADirectory(DriveError, IsADirectoryError):
    errno_value, code = errno.EISDIR, "EISDIR"

    def __init__(self, path: str) -> None:
        super().__init__(f"Is a directory: '{path}'", path)


class DirectoryNotEmpty(DriveError):
    errno_value, code = errno.ENOTEMPTY, "ENOTEMPTY"

    def __init__(self, path: str) -> None:
        super().__init__(f"Directory '{path}' is not empty", path)


class PermissionDenied(DriveError, PermissionError):
    """EPERM: a write to a drive (or a mounted drive) we hold no secret key for."""

    errno_value, code = errno.EPERM, "EPERM"


class BadFileDescriptor(DriveError):
    errno_value, code = errno.EBADF, "EBADF"


class InvalidArgument(DriveError, ValueError):
    """EINVAL: a path with ``..`` or NUL, a bad open flag, a bad mount key, an unsupported truncate."""

    errno_value, code = errno.EINVAL, "EINVAL"


class CorruptEntry(DriveError):
    """EIO: an entry of the drive does not decode, or points past the end of its content feed."""

    errno_value, code = errno.EIO, "EIO"


class SymlinkLoop(DriveError):
    """ELOOP: following symlinks from a path never ends (a loop, or more than 16 links in a row)."""

    errno_value, code = errno.ELOOP, "ELOOP"

    def __init__(self, path: str) -> None:
        super().__init__(f"Too many levels of symbolic links: '{path}'", path)


class CrossDevice(DriveError):
    """EXDEV: a rename between two drives (a path and a mount point's inside), or of a mount."""

    errno_value, code = errno.EXDEV, "EXDEV"


class ContentNotAvailable(DriveError, BlockNotAvailableError):
    """ENODATA: a replica's file whose blocks are not stored here, with no peer connected to ask."""

    errno_value, code = errno.ENODATA, "ENODATA"
