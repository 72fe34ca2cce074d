"""Exclusive OS locks on instrument addresses (and run files): one run per bench at a time.

A run holds, for every instrument it drives, an exclusive lock on a small file named after the
instrument's VISA address (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows). The operating
system releases the lock when the process ends, however it ends (``kill -9`` included), so a lock is
never left stale. The lock file holds who has it (PID, host, run file, start time), so a second run
is refused with the holder named, before it sends anything.

Addresses are compared within a *scope*: a VISA library object may declare ``resource_scope`` (the set
of instruments it reaches, e.g. one simulated bench); a real VISA library reaches the host's
instruments, scope ``host:<hostname>``. The lock directory is ``$RRAMLAB_LOCK_DIR`` or
``<tempdir>/rramlab-locks``, shared by every user of the machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class BenchBusyError(RuntimeError):
    """Another process holds an instrument (or run file) this run needs; nothing was sent."""


def lock_dir() -> Path:
    """Where lock files live (created world-writable with the sticky bit, like /tmp)."""
    d = Path(os.environ.get("RRAMLAB_LOCK_DIR") or Path(tempfile.gettempdir()) / "rramlab-locks")
    if not d.is_dir():
        d.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(d, 0o1777)
    return d


def host_scope() -> str:
    """The scope of a real VISA library: the instruments this host reaches."""
    return f"host:{socket.gethostname()}"


@dataclass(frozen=True)
class LockKey:
    """What is locked: ``resource`` (a VISA address or a file path) within ``scope``."""

    scope: str
    resource: str

    @property
    def filename(self) -> str:
        digest = hashlib.sha256(f"{self.scope}\0{self.resource.upper()}".encode()).hexdigest()[:32]
        return f"{digest}.lock"


def run_file_keys(run_file: str | os.PathLike[str]) -> list[LockKey]:
    """The lock a process holds on a run file while it writes (or recovers) it."""
    return [LockKey("run-file", os.path.realpath(os.fspath(run_file)))]


def _open_shared(path: Path) -> int:
    """Open (creating if needed) a lock file every user can open: an existing one without O_CREAT, which a
    sticky world-writable directory under fs.protected_regular refuses for another user's file."""
    while True:
        try:
            return os.open(path, os.O_RDWR)
        except FileNotFoundError:
            try:
                return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue                              # created by another process meanwhile: open it


def canonical_resource(resource: str) -> str:
    """The canonical spelling of a VISA address (``GPIB::26::INSTR`` and ``gpib0::26::instr`` are
    ``GPIB0::26::INSTR``), so one instrument has one lock whatever the station file wrote."""
    try:
        from pyvisa import rname

        return str(rname.parse_resource_name(resource.upper())).upper()   # VISA names ignore case
    except Exception:  # noqa: BLE001 - not a VISA address (a run file): as given
        return resource


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows lab PCs only
        import msvcrt

        os.lseek(fd, 1 << 20, os.SEEK_SET)              # lock a byte past the text, so others can read it
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@dataclass
class BenchLock:
    """Locks held by this process; :meth:`release` (or process exit) gives them back."""

    keys: list[LockKey]
    holder: dict[str, Any]
    _fds: list[int] = field(default_factory=list)

    @classmethod
    def acquire(cls, keys: Iterable[LockKey], *, run_file: str = "", purpose: str = "run") -> BenchLock:
        """Lock every key or none; :class:`BenchBusyError` names the holder of the first busy one."""
        lock = cls(sorted(set(keys), key=lambda k: (k.scope, k.resource)),
                   {"pid": os.getpid(), "host": socket.gethostname(), "run_file": os.path.abspath(run_file)
                    if run_file else "", "purpose": purpose, "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        d = lock_dir()
        try:
            for key in lock.keys:
                path = d / key.filename
                fd = _open_shared(path)
                if hasattr(os, "fchmod"):                  # every user of the machine shares the lock files
                    with contextlib.suppress(OSError):
                        os.fchmod(fd, 0o666)
                if not _try_lock(fd):
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise BenchBusyError(f"{key.resource} is in use by {_describe(holder)}; this run sent nothing "
                                         "(wait for it to end, or stop it)")
                lock._fds.append(fd)
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, json.dumps({**lock.holder, "resource": key.resource, "scope": key.scope}).encode())
        except BaseException:
            lock.release()
            raise
        return lock

    def release(self) -> None:
        """Give every lock back (closing the file releases it)."""
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()

    def __enter__(self) -> BenchLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode("utf-8", "replace").strip("\0 \n")
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process (holder unknown: it is starting up)"
    run = f", run file {holder['run_file']}" if holder.get("run_file") else ""
    return (f"PID {holder.get('pid')} on {holder.get('host')} ({holder.get('purpose', 'run')}{run}, "
            f"since {holder.get('since')})")


__all__ = ["BenchBusyError", "BenchLock", "LockKey", "host_scope", "lock_dir", "run_file_keys"]
