"""Keysight (Agilent) E5250A Low Leakage Switch Mainframe with E5252A 10 × 12 matrix cards.

Manual: Agilent E5250A User's Guide, Edition 9/11, Chapter 5 "Controlling the E5250A" (channel list
``(@cNNNN)``: card number one digit 0–4, then input two digits and output two digits, p. 5-6;
"E5252A Channel List" p. 5-15: inputs 01–10, outputs 01–12; connection rule and sequence p. 5-9)
and Chapter 7 "Command Reference" (``[:ROUTe]:CLOSe``, ``[:ROUTe]:OPEN``, ``[:ROUTe]:OPEN:CARD``,
``[:ROUTe]:CLOSe:CARD?``, ``[:ROUTe]:FUNCtion ACONfig|NCONfig``). The
B2200A keeps its command set compatible with the E5250A (B2200 User's Guide, ``:SYST:CCON?``
note), so both share :class:`~.keysight_b2200a.KeysightSwitchMainframe`: normal configuration mode,
cards 1–4, crosspoint ``cIIOO``, every relay action followed by one ``:SYST:ERR?``.

Not evidenced for the E5250A itself (taken from the B2200A and to be captured on hardware): the card
query ``:SYST:CTYP? c`` and its reply, the ``:SYST:ERR?`` reply format and the ``*IDN?`` string. Only
E5252A matrix cards are driven; an E5255A multiplexer card is reported by :meth:`installed_cards`
but crosspoints are validated against the E5252A geometry.
"""

from __future__ import annotations

from typing import Any

from .keysight_b2200a import KeysightSwitchMainframe
from .roles import CardGeometry, MatrixSpec

__all__ = ["KeysightE5250A"]


class KeysightE5250A(KeysightSwitchMainframe):
    """Keysight E5250A switch mainframe with E5252A 10 × 12 matrix cards in slots 1–4."""

    CARD_MODEL = "E5252A"
    MATRIX = MatrixSpec(
        slots=(1, 2, 3, 4),
        cards={"E5252A": CardGeometry("E5252A", 10, 12, tuple(str(i) for i in range(1, 11)))},
    )

    def __init__(self, adapter: Any, name: str = "Keysight E5250A", **kwargs: Any) -> None:
        super().__init__(adapter, name, **kwargs)
