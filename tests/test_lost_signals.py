"""A signal whose exception Python drops still ends the command: a signal that arrives while Python runs a weakref
callback or a finalizer raises its handler's exception there, where Python prints "Exception ignored" and goes on
(the random-moment test in test_signals.py caught one during an import, the command then ran to completion with
exit status 0). Each case runs in its own interpreter (the handlers and sys.unraisablehook are process-wide) and
raises the signal for real inside a weakref callback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

LOSE = """
import signal, sys, weakref
class Thing:
    pass
thing = Thing()
ref = weakref.ref(thing, lambda _: signal.raise_signal(signal.{sig}))
del thing                       # the callback runs: the handler raises inside it and Python drops the exception
print("went on", flush=True)
"""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("sig", "stopped"), [("SIGINT", "KeyboardInterrupt"), ("SIGTERM", "SystemExit 143")])
def test_the_command_stops_before_the_run_when_the_exception_was_lost(sig: str, stopped: str) -> None:
    out = _python("from rramlab.protocols.cli import CliSignals\nsig = CliSignals()\nsig.install()\n"
                  + LOSE.format(sig=sig) + """
try:
    sig.start_run()
    print("the run would start")
except KeyboardInterrupt:
    print("KeyboardInterrupt")
except SystemExit as e:
    print("SystemExit", e.code)
""")
    assert out.stdout.splitlines() == ["went on", stopped]
    assert out.stderr == ""                     # the dropped exception is not printed as a traceback


def test_without_the_hook_python_really_drops_the_exception() -> None:
    # the same callback with the plain handler: Python goes on and prints the dropped KeyboardInterrupt
    out = _python(LOSE.format(sig="SIGINT"))
    assert out.stdout.splitlines() == ["went on"]
    assert "Exception ignored" in out.stderr and "KeyboardInterrupt" in out.stderr


def test_the_run_ends_at_the_next_cell_boundary_when_a_sigterm_was_lost() -> None:
    out = _python("from rramlab.protocols.runner import StopRequested, _Signals\ns = _Signals()\n"
                  "with s.installed():\n" + textwrap.indent(LOSE.format(sig="SIGTERM"), "    ") + """
    try:
        s.check()
        print("the run would go on")
    except SystemExit as e:
        print("SystemExit", e.code)
""")
    assert out.stdout.splitlines() == ["went on", "SystemExit 143"]


def test_a_cli_signal_with_its_exception_delivered_still_stops_the_command_once() -> None:
    # the usual case: the handler's exception propagates; a later start_run (never reached in the CLI) would too
    out = _python("""
import signal
from rramlab.protocols.cli import CliSignals
sig = CliSignals()
sig.install()
try:
    signal.raise_signal(signal.SIGINT)
except KeyboardInterrupt:
    print("KeyboardInterrupt")
sig.hold()
signal.raise_signal(signal.SIGINT)               # held from here: noted for the exit status, nothing raised
print(sig.exit_code(0))
""")
    assert out.stdout.splitlines() == ["KeyboardInterrupt", "130"] and out.stderr == ""
