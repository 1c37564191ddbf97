"""Receiving a request body into a temporary file, with a size limit."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio.to_thread

from podium.core.errors import Invalid, TooLarge

FILENAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+@-]{0,254}$")
_WRITE_BYTES = 1024 * 1024  # chunks are gathered up to this before a (threaded) write


def check_filename(name: str) -> str:
    """A plain file name (no folders): it names a single-file model, or says which kind of
    archive the body is."""
    if not FILENAME_RE.match(name):
        raise Invalid(
            f"{name!r} is not a valid file name: use letters, digits and . _ + @ -, "
            "not starting with a dot",
            field="filename",
        )
    return name


def check_declared_size(content_length: str | None, limit: int) -> None:
    if content_length is None:
        return
    try:
        size = int(content_length)
    except ValueError:
        raise Invalid("content-length is not a number", field="content-length") from None
    if size > limit:
        raise TooLarge(f"the upload is {size} bytes; the limit is {limit}", field="body")


@contextmanager
def temp_folder(parent: Path) -> Iterator[Path]:
    """A private folder under `parent`, removed with everything in it on exit."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def receive(chunks: AsyncIterator[bytes], dest: Path, limit: int) -> int:
    """Write the body to `dest`; TooLarge as soon as it passes `limit` bytes. Returns the
    size. File writes run in a worker thread, so the event loop never waits on the disk."""
    size = 0
    pending = bytearray()
    with dest.open("wb") as f:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"the upload passed the limit of {limit} bytes", field="body")
            pending += chunk
            if len(pending) >= _WRITE_BYTES:
                await anyio.to_thread.run_sync(f.write, bytes(pending))
                pending.clear()
        if pending:
            await anyio.to_thread.run_sync(f.write, bytes(pending))
    if size == 0:
        raise Invalid("the request body is empty: send the model's bytes", field="body")
    return size
