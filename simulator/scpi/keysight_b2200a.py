"""Emulated Keysight (Agilent) B2200A / B2201A switch mainframes with B2210A / B2211A matrix cards.

Behaviour: :mod:`.keysight_matrix` (shared with the E5250A). Cards are 14 inputs × 12 outputs; up to
four in slots 1-4. Rows of the bench file are the input numbers ``"1"`` … ``"14"``; columns are
``(slot, output 1-12)``. In auto configuration mode (card ``0``) outputs run 01-48 across the
installed cards in slot order.

Evidence (tags: [M] = B2200 User's Guide, Edition 2 unless noted)
=================================================================================================
``*IDN?``            ``AGILENT,B2200A,0,A.01.00`` — "AGILENT,model,0,revision" [M 5-7]. Serial field is
                     always ``0`` [M]; the revision is the bench file's ``firmware`` (give ``A.01.00``).
                     QCoDeS' pyvisa-sim file answers ``AGILENT TECHNOLOGIES,B2200A,0,A.01.00`` [C, sim only].
``*ESR?``            bits OPC 1, QYE 4, DDE 8, EXE 16, CME 32, PON 128; 2 and 64 unused [M 5-7].
Error classes        -1xx CME, -2xx EXE, -3xx DDE, -4xx QYE, B2200-specific (positive) DDE [M 7-2];
                     queue cleared by ``*CLS`` and at power-on [M 7-2]; ``*RST`` keeps it [C QCoDeS docstring].
Standard texts       -100…-113 as SCPI [M 7-3/7-4] (-111 = no white space between header and
                     parameter, -112 = keyword longer than twelve characters, -113 e.g. ``:ROUT:OPEN:COOD``),
                     -200/-220/-222/-223/-224/-260 "Expression error"
                     [M 7-7], -400/-410/-420/-430/-440 [M 7-9].
``:SYST:ERR?``       ``+3022,"Cannot directory specify Auto Ground Port channel"`` (sic, firmware typo) and
                     ``+3014,"Cannot directly specify Bias Port channel"`` read from a real B2200A
                     [C QCoDeS example notebook]; both set ESR DDE (8) [C same]. Empty queue
                     ``+0,"No error"`` [U: same format assumed]. Queue depth 30 [U].
``:ROUT:OPEN? (@…)`` ``0,1,1,0`` after ``:ROUT:OPEN:CARD ALL;…CLOS (@10101,10202)`` (1 = open) [M Ed.4 5-39];
                     ``:ROUT:CLOS?`` the inverse (1 = closed) [M summary table, via transcription [C]].
``:CLOS:CARD? 0``    ``(@00248,01012)`` (5 digits, ascending) [C QCoDeS sim written with hardware];
                     leading zeros might be stripped by the real firmware (QCoDeS parses both) [U];
                     nothing closed: ``(@)`` [U]. Reports bias / ground port connections too [C notebook].
Channel numbers      ``cIIOO``; "accepts channel strings without the leading zeros" [C SweepMe B2200 driver],
                     so items are read as integers (``248`` = card 0, input 2, output 48).
Ranges ``a:b``       rectangle of inputs × outputs between the corners, same card [U]; a range across
                     cards -260 [U].
Invalid channel      (card not addressable in the present mode, input > 14, output > 12×cards) -222 [U];
                     non-numeric item or malformed list -260 "Expression error" [U, code from M 7-7];
                     not a channel list -104 [U]. The whole command is rejected, nothing switches [U].
Rules / sequences    after ``*RST``: FREE and BBM [C notebook + QCoDeS sim]; ``:CONN:RULE? c`` → ``FREE``
                     or ``SROU``, ``:CONN:SEQ? c`` → ``NSEQ``, ``BBM`` or ``MBBR`` [C transcription of the
                     command summary]. Card ``ALL`` accepted for sets (``:ROUT:CONN:RULE ALL,FREE;SEQ
                     ALL,BBM`` [M 4-3]). Single route: a new connection releases the old path on that
                     input and on that output only; connections made under FREE persist when SROU is
                     set [C notebook, hardware output]; per card in NCON, all cards as one in ACON [M 3-14].
Bias mode            port default 10, every output bias-enabled after ``*RST``, bias port joined to every
                     enabled output not otherwise connected [C notebook, hardware]; port 1-14 or -1;
                     mode state queries ``0``/``1`` [C]. Bias and ground mode not both ON [C notebook]
                     → -221 [U code].
Ground mode          port default 12, no output ground-enabled after ``*RST`` [C notebook];
                     ``:AGND:UNUSED c,'5,6,7,8'``; query ``'5,6,7,8'`` (single quotes, no spaces) [U:
                     QCoDeS strips ``'`` and splits on ``,``]. Unused inputs are stored but not grounded
                     in the circuit; wire row ``"12"`` (or the chosen port) to ``gnd`` in the bench file
                     for the port itself.
Couple mode          pairs (1,2)…(13,14): ``:CLOS`` of either input/output of a pair closes odd→odd and
                     even→even (``3,17`` → ``(3,17),(4,18)``; ``2,11`` → ``(1,11),(2,12)``) [C notebook,
                     hardware]; ``:COUP:PORT c,'1,3,5'`` [C]; ``:COUP:PORT:DET`` finds no Kelvin cable [U].
``:ROUT:FUNC``       ``ACON``/``NCON`` [C transcription]; default ACON (QCoDeS and SweepMe address card 0
                     right after ``*RST`` on hardware [C]); ``*RST`` keeps it [U]; changing it opens every
                     relay [U].
``:SYST:CTYP? c``    ``B2210A,0,<firmware>`` / empty slot ``0,0,0`` [U: "model number and revision" only].
``:SYST:CDES? c``    ``B2210A 14ch x 12ch Femto Leakage Switch Matrix`` [U].
``:SYST:CCON? c``    card configuration for E5250A compatibility: ``B2210A`` per card [U].
Timing               relay close / open 5 ms each [ASSUMP; no figure found]; BBM opens then closes,
                     MBBR closes then opens (the circuit sees the intermediate set), NSEQ both at once.
Termination          LF in, LF out [M 5-7 "<newline><^END>"].
"""

from __future__ import annotations

from typing import ClassVar

from ..models import CardShape, emulator
from .keysight_matrix import KeysightSwitchMatrix

_ROWS14 = tuple(str(i) for i in range(1, 15))


@emulator("B2200A")
class KeysightB2200A(KeysightSwitchMatrix):
    """B2200A femto-leakage switch mainframe with B2210A cards (see module docstring)."""

    MANUFACTURER = "AGILENT"
    MODEL = "B2200A"
    IDN_FORMAT = "{manufacturer},{model},0,{firmware}"
    CARDS: ClassVar[dict[str, CardShape]] = {"B2210A": CardShape("14ch x 12ch Femto Leakage Switch Matrix",
                                                                 14, 12, _ROWS14)}
    CARD_DESCRIPTION: ClassVar[str] = "14ch x 12ch Femto Leakage Switch Matrix"
    INPUTS = 14
    DEFAULT_CONFIG = "ACON"
    HAS_GROUND_MODE = True
    ERROR_FORMAT = '{code:+d},"{message}"'
    ERROR_QUEUE_DEPTH = 30
    ERROR_MAP: ClassVar[dict[int, int]] = {-171: -260}
    ERROR_TEXTS: ClassVar[dict[int, str]] = {
        -260: "Expression error",
        3014: "Cannot directly specify Bias Port channel",
        3022: "Cannot directory specify Auto Ground Port channel",
    }
    RELAY_CLOSE = 5e-3      # s [ASSUMP]
    RELAY_OPEN = 5e-3       # s [ASSUMP]

    def build(self) -> None:
        super().build()
        self.command(":SYSTem:CCONfig? <card_number>", lambda call: self._ccon(self._card_slot(call)))

    def _ccon(self, slot: int) -> str:
        return self.cards.get(slot, "0")

    def card_type(self, slot: int) -> str:
        card = self.cards.get(slot)
        return f"{card},0,{self.firmware}" if card else "0,0,0"

    def card_description(self, slot: int) -> str:
        card = self.cards.get(slot)
        return f"{card} {self.CARDS[card].description}" if card else "0"


@emulator("B2201A")
class KeysightB2201A(KeysightB2200A):
    """B2201A 14ch low-leakage mainframe with B2211A cards (same command set as the B2200A)."""

    MODEL = "B2201A"
    CARDS: ClassVar[dict[str, CardShape]] = {"B2211A": CardShape("14ch x 12ch Low Leakage Switch Matrix",
                                                                 14, 12, _ROWS14)}
