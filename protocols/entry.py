"""Entry point of the ``rramlab`` command: signal handling from the first instruction to the last.

The command's modules (numpy, h5py, pyvisa, …) take a moment to import; a Ctrl-C or SIGTERM during
that moment ends the command with 130 / 143 and one line, never a traceback. Once the command has
decided its exit code, SIGINT and SIGTERM are ignored, so a late signal cannot turn a finished
command into a killed one while the interpreter shuts down.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

_ABORT = (signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else []))


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum if signum in _ABORT else 130)


def block_signals() -> None:
    """Ignore SIGINT and SIGTERM from now on: the process is about to exit with its code. (Ignoring is
    process-wide and survives the interpreter's shutdown, which resets Python-level handlers to the
    default action, under which a late Ctrl-C would kill the process.)"""
    for sig in (signal.SIGINT, *_ABORT):
        signal.signal(sig, signal.SIG_IGN)


def main() -> int:
    for sig in (signal.SIGINT, *_ABORT):
        signal.signal(sig, _stop)
    try:
        try:
            from .cli import main as cli_main
        except SystemExit as e:
            block_signals()
            sys.stderr.write("rramlab: interrupted while starting; nothing was sent.\n")
            return int(e.code or 0)
        return cli_main()
    except SystemExit as e:               # a signal between the command's end and here
        return int(e.code or 0)
    finally:
        block_signals()


if __name__ == "__main__":
    sys.exit(main())
