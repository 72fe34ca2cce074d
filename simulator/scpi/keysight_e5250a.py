"""Emulated Keysight (Agilent/HP) E5250A low-leakage switch mainframe with E5252A matrix cards.

Behaviour: :mod:`.keysight_matrix` (shared with the B2200A). E5252A cards are 10 inputs × 12
outputs in slots 1-4 (the E5255A multiplexer is not emulated). Rows of the bench file are the input
numbers ``"1"`` … ``"10"``; columns ``(slot, output 1-12)``. Auto configuration (card ``0``) numbers
the outputs 01-48 across the installed cards in slot order.

Evidence (tags: [M] = E5250A User's Guide, Edition 9/11)
========================================================================================
Channel list         ``(@cNNNN[,…][:…])``: card digit 0-4, two-digit input, two-digit output [M 5-6,
                     Figure 5-1]; E5252A inputs 01-10, outputs 01-12 [M 5-15].
Connection rule      Single Route / Free per card, all cards as one in auto config [M 5-9];
                     ``SROU``/``FREE``, sequences ``BBM``/``MBBR``/``NSEQ`` [M 4155C/4156C User's Guide
                     Vol.2 8-35, which drives the E5250A]; changing the rule does not change the
                     connections [M same].
Bias mode            bias port = an input 1-10 of the E5252A; connected to every bias-enabled output not
                     connected to another input; always break-before-make; bias and couple port differ
                     [M 5-11]. Default port 10 [U, as B2200A].
``*IDN?``            ``HEWLETT-PACKARD,E5250A,0,<firmware>`` [U: format assumed like the B2200A
                     "maker,model,0,revision"; an Agilent-era unit may say ``AGILENT``].
``:SYST:ERR?``       ``+0,"No error"`` / ``<code>,"<text>"`` with SCPI texts [U: as the B2200A, whose error
                     system claims E5250A compatibility]. Depth 30 [U].
``:CLOS:CARD? c``    ``(@10101,10202)`` 5 digits ascending, empty ``(@)`` [U, as B2200A].
``:ROUT:FUNC``       ``NCON``/``ACON`` [M: normal/auto configuration]; default NCON [U; public drivers
                     address card 1 after ``*RST`` [C SweepMe E5250A driver]].
``:SYST:CTYP? c``    ``E5252A,0,<firmware>``, empty slot ``0,0,0`` [U]. ``:SYST:CDES? c`` [U].
Ground mode          none on the E5250A [U: only bias and couple modes documented in ch. 5].
Errors for bad channels / modes, ranges, timing: as the B2200A module (all [U]/[ASSUMP]).
"""

from __future__ import annotations

from typing import ClassVar

from ..models import CardShape, emulator
from .keysight_matrix import KeysightSwitchMatrix

_ROWS10 = tuple(str(i) for i in range(1, 11))


@emulator("E5250A")
class KeysightE5250A(KeysightSwitchMatrix):
    """E5250A mainframe with E5252A 10×12 matrix cards (see module docstring)."""

    MANUFACTURER = "HEWLETT-PACKARD"
    MODEL = "E5250A"
    IDN_FORMAT = "{manufacturer},{model},0,{firmware}"
    CARDS: ClassVar[dict[str, CardShape]] = {"E5252A": CardShape("10x12 Matrix Switch", 10, 12, _ROWS10)}
    INPUTS = 10
    DEFAULT_CONFIG = "NCON"
    HAS_GROUND_MODE = False
    COUPLE_PORTS = (1, 3, 5, 7, 9)
    ERROR_FORMAT = '{code:+d},"{message}"'
    ERROR_QUEUE_DEPTH = 30
    ERROR_MAP: ClassVar[dict[int, int]] = {-171: -260}
    ERROR_TEXTS: ClassVar[dict[int, str]] = {-260: "Expression error",
                                            3014: "Cannot directly specify Bias Port channel"}
    RELAY_CLOSE = 5e-3      # s [ASSUMP]
    RELAY_OPEN = 5e-3       # s [ASSUMP]

    def build(self) -> None:
        super().build()
        self.command(":SYSTem:CCONfig? <card_number>", lambda call: self.cards.get(self._card_slot(call), "0"))

    def card_type(self, slot: int) -> str:
        card = self.cards.get(slot)
        return f"{card},0,{self.firmware}" if card else "0,0,0"

    def card_description(self, slot: int) -> str:
        card = self.cards.get(slot)
        return f"{card} {self.CARDS[card].description}" if card else "0"
