"""Keithley 707B driver: golden transcript (tier 1) and behaviour on the simulated bench (tiers 2-3).

The golden file ``tests/golden/driver_keithley707b.txt`` is the traffic of :func:`session` taken on
the simulated bench; re-record it (and review every line) with::

    python tests/test_drivers_keithley707b.py --record
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import pyvisa
from conftest import MATRIX, bench_of, bench_steps, open_rm, writes
from golden_io import GOLDEN, Transcript, dump, load
from pymeasure.test import expected_protocol
from pyvisa import errors as visa_errors

from rramlab.drivers import InstrumentError, Keithley707B, ReplyError, ShutdownError

GOLDEN_FILE = "driver_keithley707b.txt"
HEADER = """Keithley 707B driver (rramlab.drivers.Keithley707B) golden transcript: the exact traffic of
tests/test_drivers_keithley707b.py::session on the simulated bench (three 7174A cards in slots 1-3).
Checked both ways: the driver must send exactly these commands (test_drivers_keithley707b.py) and
the emulator must give exactly these replies (test_golden_transcripts.py). Formats per
reference/instruments.md §6: channel lists quoted and comma-separated, getclose ';'-separated sorted
or nil, format.asciiprecision 10, error 1115 for an invalid channel list (nothing closes).
Re-record: python tests/test_drivers_keithley707b.py --record (review every line)."""


# ------------------------------------------------------------------------------- golden session
def session(mx: Keithley707B) -> dict[str, Any]:
    """A coherent session: set-up, cards, closing/opening with read-back, errors, shutdown."""
    out: dict[str, Any] = {"id": mx.id}
    mx.reset()
    mx.clear_errors()
    mx.check_errors()
    out["cards"] = mx.installed_cards()
    out["closed_none"] = mx.closed_channels
    mx.close(["2A01"])
    out["closed_one"] = mx.closed_channels
    mx.close(["3C01", "1B01"])
    out["closed_many"] = mx.closed_channels
    mx.open(["2A01"])
    out["after_open"] = mx.closed_channels
    mx.exclusive_close(["1B02", "2A02", "3C02"])
    out["exclusive"] = mx.closed_channels
    try:
        mx.close(["4A01"])                          # slot 4 is empty
    except InstrumentError as e:
        out["empty_slot_error"] = e.errors
    try:
        mx.close(["1A01", "1H13"])                  # a 7174A has 12 columns: nothing closes
    except InstrumentError as e:
        out["bad_column_error"] = e.errors
    out["unchanged"] = mx.closed_channels
    mx.open_all()
    out["all_open"] = mx.closed_channels
    mx.close(["1A01"])
    mx.sync("rramlab-sync-707b")
    mx.shutdown()
    out["closed_end"] = mx.closed_channels
    return out


def record() -> None:
    """Run :func:`session` on a fresh simulated bench and write the golden file."""
    rm = pyvisa.ResourceManager("?noise=0&tag=record-driver-707b@rramlab")
    try:
        out = session(Keithley707B(MATRIX, visa_library=rm.visalib))
        t = Transcript(bench="?noise=0", steps=bench_steps(rm))
    finally:
        rm.close()
    (GOLDEN / GOLDEN_FILE).write_text(dump(t, HEADER), encoding="utf-8")
    print(f"{GOLDEN_FILE}: {len(t.steps)} commands; session result:")
    for k, v in out.items():
        print(f"  {k}: {v!r}")


# ------------------------------------------------------------------------------ tier 1: golden
def test_driver_sends_exactly_the_golden_transcript() -> None:
    t = load(GOLDEN_FILE)
    assert {res for res, _, _ in t.steps} == {MATRIX}
    with expected_protocol(Keithley707B, t.pairs(MATRIX)) as mx:
        out = session(mx)
    assert out["id"].startswith("Keithley Instruments Inc., Model 707B")
    assert out["cards"] == {1: "7174A", 2: "7174A", 3: "7174A", 4: "", 5: "", 6: ""}
    assert out["closed_none"] == []
    assert out["closed_one"] == ["2A01"]
    assert out["closed_many"] == ["1B01", "2A01", "3C01"]
    assert out["after_open"] == ["1B01", "3C01"]
    assert out["exclusive"] == ["1B02", "2A02", "3C02"]
    assert out["empty_slot_error"] == [(1115, "Parameter error, invalid channel list")]
    assert out["bad_column_error"] == [(1115, "Parameter error, invalid channel list")]
    assert out["unchanged"] == ["1B02", "2A02", "3C02"]
    assert out["all_open"] == []
    assert out["closed_end"] == []


# ------------------------------------------------------------------ tier 2-3: simulated bench
@pytest.fixture
def bench() -> Iterator[tuple[Any, Keithley707B]]:
    rm = open_rm("noise=0")
    mx = Keithley707B(MATRIX, visa_library=rm.visalib)
    yield bench_of(rm), mx
    rm.close()



INVALID = [
    [], (), "1A01", ["1J01"], ["7A01"], ["0A01"], ["1A1"], ["1a01"], ["1A001"], ["1A01 "], ["A101"],
    ["slot1"], ["allslots"], ["1A01:1B02"], ["1A01,1A02"], ["1A01", "1I01"], [1], [None],
    ["1A01'); reset() --"],
]


@pytest.mark.parametrize("channels", INVALID)
@pytest.mark.parametrize("method", ["close", "open", "exclusive_close"])
def test_invalid_channel_lists_are_rejected_locally(bench, method: str, channels: Any) -> None:  # noqa: ANN001
    b, mx = bench
    with pytest.raises(ValueError, match="channels"):
        getattr(mx, method)(channels)
    assert b.transcript.entries == []


def test_constructor_sends_nothing(bench) -> None:  # noqa: ANN001
    b, mx = bench
    assert b.transcript.entries == []
    assert mx.adapter.connection.timeout == 10_000


def test_close_sends_one_quoted_list_and_one_error_check(bench) -> None:  # noqa: ANN001
    b, mx = bench
    mx.close(["1B01", "2A01", "3C01"])
    assert b.transcript.pairs(MATRIX) == [(b"channel.close('1B01,2A01,3C01')\n", None),
                                          (b"print(errorqueue.count)\n", b"0.000000000e+00\n")]


def test_strict_errors_off_sends_only_the_action() -> None:
    rm = open_rm("noise=0")
    try:
        mx = Keithley707B(MATRIX, visa_library=rm.visalib, strict_errors=False)
        mx.close(["4A01"])                          # refused by the instrument, not checked here
        mx.exclusive_close(["1A01"])
        assert writes(bench_of(rm)) == ["channel.close('4A01')", "channel.exclusiveclose('1A01')"]
        with pytest.raises(InstrumentError) as e:
            mx.check_errors()
        assert e.value.errors == [(1115, "Parameter error, invalid channel list")]
    finally:
        rm.close()


@pytest.mark.parametrize(("channels", "expected"), [
    ([], []),
    (["2A05"], ["2A05"]),
    (["3H12", "1A01", "2C07", "1A02"], ["1A01", "1A02", "2C07", "3H12"]),
])
def test_closed_channels_none_one_many(bench, channels: list[str], expected: list[str]) -> None:  # noqa: ANN001
    b, mx = bench
    if channels:
        mx.close(channels)
    assert mx.closed_channels == expected


def test_installed_cards(bench) -> None:  # noqa: ANN001
    b, mx = bench
    assert mx.installed_cards() == {1: "7174A", 2: "7174A", 3: "7174A", 4: "", 5: "", 6: ""}
    assert writes(b) == ["print(slot[1].idn, slot[2].idn, slot[3].idn, slot[4].idn, slot[5].idn, slot[6].idn)"]


def test_instrument_refusal_closes_nothing_and_raises(bench) -> None:  # noqa: ANN001
    b, mx = bench
    mx.close(["1A01"])
    with pytest.raises(InstrumentError) as e:
        mx.close(["1A02", "1H13"])
    assert e.value.errors == [(1115, "Parameter error, invalid channel list")]
    assert mx.closed_channels == ["1A01"]


def test_exclusive_close_and_open_all(bench) -> None:  # noqa: ANN001
    b, mx = bench
    mx.close(["1A01", "1A02"])
    mx.exclusive_close(["2B03"])
    assert mx.closed_channels == ["2B03"]
    mx.open_all()
    assert mx.closed_channels == []
    assert "channel.open('allslots')" in writes(b)


def test_garbled_getclose_raises_reply_error(bench) -> None:  # noqa: ANN001
    b, mx = bench
    b.faults.add("garble", match=r"getclose", reply="1A01;XYZ")
    with pytest.raises(ReplyError):
        _ = mx.closed_channels


def test_shutdown_opens_all_relays_without_queries_and_is_idempotent(bench) -> None:  # noqa: ANN001
    b, mx = bench
    mx.close(["1B01", "2A01", "3C01"])
    b.transcript.clear()
    mx.shutdown()
    mx.shutdown()
    assert b.transcript.pairs(MATRIX) == [(b"channel.open('allslots')\n", None)] * 2
    assert mx.closed_channels == []
    assert mx.isShutdown


def test_shutdown_reports_a_failed_write(bench) -> None:  # noqa: ANN001
    b, mx = bench

    def failing_write(command: str, **kwargs: Any) -> None:
        raise visa_errors.VisaIOError(pyvisa.constants.VI_ERROR_IO)

    mx.adapter.write = failing_write  # type: ignore[method-assign]
    with pytest.raises(ShutdownError) as e:
        mx.shutdown()
    assert e.value.failures[0][0] == "channel.open('allslots')"


def test_check_errors_reads_707b_precision(bench) -> None:  # noqa: ANN001
    b, mx = bench
    mx.write("channel.close('slot1')")
    mx.write("bogus(")
    with pytest.raises(InstrumentError) as e:
        mx.check_errors()
    assert [code for code, _ in e.value.errors] == [1115, -285]


def test_reset_waits_for_completion(bench) -> None:  # noqa: ANN001
    b, mx = bench
    mx.close(["1A01"])
    mx.reset()
    assert mx.closed_channels == []


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record()
    else:
        print(__doc__)
