"""Files written whole or not at all: a temporary file in the same directory, fsynced, renamed into place;
removed again if anything fails (a full disk, Ctrl-C) — a reader never sees half a file."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` (``mode`` "w" text or "wb" binary; ``kwargs`` as :func:`open`); on a
    clean exit it is fsynced and renamed to ``path``, on an exception removed."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")    # created with the umask's mode
    try:
        with open(tmp, mode.replace("w", "x"), **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all."""
    with atomic_file(path, "w", encoding="utf-8") as f:
        f.write(text)
