"""Keithley 707B driver: (command, reply) pairs written from the manual (tier 1) and behaviour on the
simulated bench (tiers 2-3).

Tier 1 reads its pairs from ``tests/manual_pairs/keithley707b.toml`` (selected by tag with
:func:`manual_pairs.comm_pairs`; each pair cites its section of the 707B/708B Reference Manual 707B-901-01
or the code written against a real 707B, none was recorded from the emulator). The same pairs are
replayed against the emulator by ``tests/test_manual_pairs.py``. The driver session of :func:`session`
runs on a fresh simulated bench (tier 2-3), not against a recorded transcript.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pyvisa
from conftest import MATRIX, bench_of, open_rm, writes
from manual_pairs import comm_pairs
from pymeasure.test import expected_protocol
from pyvisa import errors as visa_errors

from rramlab.drivers import InstrumentError, Keithley707B, ReplyError, ShutdownError
from rramlab.drivers.tsp import ESR_PON

M = "keithley707b"                      # tests/manual_pairs/keithley707b.toml
INVALID_LIST = (1115, "Parameter error, invalid channel list")


def run(pairs: list[tuple[str | None, str | None]], action: Any, **kwargs: Any) -> Any:
    """Run ``action(instrument)`` against exactly ``pairs`` (all consumed)."""
    with expected_protocol(Keithley707B, pairs, **kwargs) as inst:
        return action(inst)


# ------------------------------------------------------------------------------- session
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


# ------------------------------------------------------------------------------ tier 1: manual pairs
def test_identity_reset_and_empty_error_check() -> None:
    def act(mx: Keithley707B) -> str:
        ident = mx.id
        mx.reset()
        mx.clear_errors()
        mx.check_errors()
        return ident

    ident = run(comm_pairs(M, "identity", "reset", "clear_errors", "error_count_empty"), act)
    assert ident.startswith("Keithley Instruments Inc., Model 707B")


def test_installed_cards_per_the_manual() -> None:
    assert run(comm_pairs(M, "cards"), lambda mx: mx.installed_cards()) == {
        1: "7174A", 2: "7174A", 3: "7174A", 4: "", 5: "", 6: ""}


def test_relay_actions_and_read_back_per_the_manual() -> None:
    pairs = comm_pairs(M, "closed_none", "close_one", "close_many", "open", "exclusive", "empty_slot_error",
                       "bad_column_error", "unchanged", "open_all", "switch", "shutdown", "closed_end")

    def act(mx: Keithley707B) -> dict[str, Any]:
        out: dict[str, Any] = {"closed_none": mx.closed_channels}
        mx.close(["2A01"])
        out["closed_one"] = mx.closed_channels
        mx.close(["3C01", "1B01"])
        out["closed_many"] = mx.closed_channels
        mx.open(["2A01"])
        out["after_open"] = mx.closed_channels
        mx.exclusive_close(["1B02", "2A02", "3C02"])
        out["exclusive"] = mx.closed_channels
        try:
            mx.close(["4A01"])                      # slot 4 is empty
        except InstrumentError as e:
            out["empty_slot_error"] = e.errors
        try:
            mx.close(["1A01", "1H13"])              # a 7174A has 12 columns: nothing closes
        except InstrumentError as e:
            out["bad_column_error"] = e.errors
        out["unchanged"] = mx.closed_channels
        mx.open_all()
        out["all_open"] = mx.closed_channels
        mx.switch(["1A01"], ["1A02"])
        out["switched"] = mx.closed_channels
        mx.shutdown()
        out["closed_end"] = mx.closed_channels
        return out

    out = run(pairs, act)
    assert out["closed_none"] == []
    assert out["closed_one"] == ["2A01"]
    assert out["closed_many"] == ["1B01", "2A01", "3C01"]
    assert out["after_open"] == ["1B01", "3C01"]
    assert out["exclusive"] == ["1B02", "2A02", "3C02"]
    assert out["empty_slot_error"] == [INVALID_LIST]
    assert out["bad_column_error"] == [INVALID_LIST]
    assert out["unchanged"] == ["1B02", "2A02", "3C02"]
    assert out["all_open"] == []
    assert out["switched"] == ["1A02"]
    assert out["closed_end"] == []


def test_empty_queue_entry_and_event_status() -> None:
    assert run(comm_pairs(M, "error_empty"), lambda mx: mx._next_error()) == (0, "Queue Is Empty")

    def act(mx: Keithley707B) -> tuple[int, int]:
        return mx.event_status(), mx.event_status()

    first, second = run(comm_pairs(M, "power_on", "esr_read"), act)
    assert first & ESR_PON and second == 0


# ------------------------------------------------------------------ tier 2-3: the session on the simulated bench
def test_session_on_the_simulated_bench() -> None:
    rm = open_rm("noise=0")
    try:
        out = session(Keithley707B(MATRIX, visa_library=rm.visalib))
    finally:
        rm.close()
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

