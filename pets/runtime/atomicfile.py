"""The one way files holding keys are written: atomically, mode 0600 from the start.

A key file is written to a temporary file in the target's directory, created
with its final mode (0600 unless asked otherwise) before any byte is written,
flushed and fsynced, then moved into place: ``os.replace`` when overwriting,
``os.link`` otherwise, so an existing file is never silently replaced (the
check and the creation are one step). The directory is fsynced afterwards,
so the new name survives a crash. A reader never sees a half-written key and
a key is never briefly readable by others (the pattern of ``atomicwrites``
and of OpenSSH's key writer).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from pets.errors import ConfigError

__all__ = ["PUBLIC_MODE", "SECRET_MODE", "write_atomic"]

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int = SECRET_MODE,
    overwrite: bool = False,
) -> Path:
    """Write ``data`` to ``path`` atomically with ``mode``; returns the path.

    Raises :class:`ConfigError` when the directory does not exist, or when
    ``path`` exists and ``overwrite`` is false (the message names the file,
    never its content).
    """
    target = Path(path)
    directory = target.parent
    if not directory.is_dir():
        raise ConfigError(f"directory {directory} does not exist")
    if not overwrite and target.exists():
        raise ConfigError(f"{target} already exists; refusing to overwrite it")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)  # mkstemp creates 0600; set the final mode before writing
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise ConfigError(f"{target} already exists; refusing to overwrite it") from None
            os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)
    return target


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be opened
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
