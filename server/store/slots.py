"""Aggregate files in two alternating slots: ``aggregates/<query>.<generation % 2>``.

Aggregates (the leader's running sum or product, up to 80 MB and rewritten
on every group commit; a helper's finalised share) are not database blobs
but files. A commit first writes and ``fdatasync``s generation g+1 into the
slot that does *not* hold the current generation g, then records "current
generation = g+1" in the same database transaction as the contributions. A
crash before that transaction leaves g current and intact (the half-written
slot is overwritten next time); a crash after it leaves g+1. Each commit
costs one sequential write into an existing file instead of rewriting a
blob page by page through the write-ahead log.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pets.errors import InvalidInputError

# Query ids as the leader makes them; anything else is refused before it can name a file.
QUERY_ID = re.compile(r"q-[0-9a-f]{16}")


class AggregateSlots:
    """The slot files of every query under one directory (mode 0700, files 0600)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir leaves an existing directory's mode as it was

    def path(self, query_id: str, generation: int) -> Path:
        if not QUERY_ID.fullmatch(query_id):  # never let an id name a path elsewhere
            raise InvalidInputError(f"malformed query id {query_id[:40]!r}")
        return self.directory / f"{query_id}.{generation % 2}"

    def read(self, query_id: str, generation: int) -> bytes:
        return self.path(query_id, generation).read_bytes()

    def write(self, query_id: str, generation: int, data: bytes | memoryview) -> None:
        """Write one generation's slot durably (data, size and directory entry)."""
        fd = os.open(self.path(query_id, generation), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            view = memoryview(data).cast("B")
            size = len(view)
            while view:
                view = view[os.write(fd, view) :]
            os.ftruncate(fd, size)  # a no-op when the slot already had this size
            os.fdatasync(fd)
        finally:
            os.close(fd)
        dir_fd = os.open(self.directory, os.O_RDONLY)  # the directory entry is durable too
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def remove(self, query_id: str, generation: int | None = None) -> None:
        """Remove one generation's slot, or with ``None`` both."""
        for g in (0, 1) if generation is None else (generation,):
            self.path(query_id, g).unlink(missing_ok=True)
