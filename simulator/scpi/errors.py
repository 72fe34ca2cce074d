"""SCPI error codes and texts (SCPI-99 vol. 2 ch. 21) and the exception handlers raise to queue one.

Negative codes are the SCPI standard's; instruments add their own (positive) codes through
``ScpiInstrument.ERROR_TEXTS`` and may rename standard texts the same way.
"""

from __future__ import annotations

# SCPI-99 Vol. 2 ch. 21.8: command errors -1xx (ESR CME), execution errors -2xx (EXE),
# device-specific errors -3xx (DDE), query errors -4xx (QYE); 0 = no error.
SCPI_ERRORS: dict[int, str] = {
    0: "No error",
    -100: "Command error",
    -101: "Invalid character",
    -102: "Syntax error",
    -103: "Invalid separator",
    -104: "Data type error",
    -105: "GET not allowed",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -110: "Command header error",
    -111: "Header separator error",
    -112: "Program mnemonic too long",
    -113: "Undefined header",
    -114: "Header suffix out of range",
    -115: "Unexpected number of parameters",
    -120: "Numeric data error",
    -121: "Invalid character in number",
    -123: "Exponent too large",
    -124: "Too many digits",
    -128: "Numeric data not allowed",
    -130: "Suffix error",
    -131: "Invalid suffix",
    -134: "Suffix too long",
    -138: "Suffix not allowed",
    -140: "Character data error",
    -141: "Invalid character data",
    -144: "Character data too long",
    -148: "Character data not allowed",
    -150: "String data error",
    -151: "Invalid string data",
    -158: "String data not allowed",
    -160: "Block data error",
    -161: "Invalid block data",
    -168: "Block data not allowed",
    -170: "Expression error",
    -171: "Invalid expression",
    -178: "Expression data not allowed",
    -200: "Execution error",
    -203: "Command protected",
    -210: "Trigger error",
    -211: "Trigger ignored",
    -213: "Init ignored",
    -214: "Trigger deadlock",
    -220: "Parameter error",
    -221: "Settings conflict",
    -222: "Data out of range",
    -223: "Too much data",
    -224: "Illegal parameter value",
    -225: "Out of memory",
    -230: "Data corrupt or stale",
    -240: "Hardware error",
    -241: "Hardware missing",
    -250: "Mass storage error",
    -300: "Device-specific error",
    -310: "System error",
    -311: "Memory error",
    -313: "Calibration memory lost",
    -315: "Configuration memory lost",
    -330: "Self-test failed",
    -350: "Queue overflow",
    -360: "Communication error",
    -363: "Input buffer overrun",
    -400: "Query error",
    -410: "Query INTERRUPTED",
    -420: "Query UNTERMINATED",
    -430: "Query DEADLOCKED",
    -440: "Query UNTERMINATED after indefinite response",
}

# IEEE 488.2 standard event status register bits
ESR_OPC = 1      # operation complete
ESR_RQC = 2      # request control
ESR_QYE = 4      # query error
ESR_DDE = 8      # device-dependent error
ESR_EXE = 16     # execution error
ESR_CME = 32     # command error
ESR_URQ = 64     # user request
ESR_PON = 128    # power on


def esr_bit_of(code: int) -> int:
    """The ESR bit a SCPI error class sets (-1xx CME, -2xx EXE, -3xx DDE, -4xx QYE; others DDE)."""
    if -199 <= code <= -100:
        return ESR_CME
    if -299 <= code <= -200:
        return ESR_EXE
    if -499 <= code <= -400:
        return ESR_QYE
    if code == 0:
        return 0
    return ESR_DDE


class ScpiError(Exception):
    """Raised by a command handler or parameter helper: the engine queues ``code`` (text from the
    instrument's table unless ``message`` is given) and, for command errors (-1xx), stops parsing
    the rest of the program message."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(f"{code}: {message or SCPI_ERRORS.get(code, '')}")
        self.code = code
        self.message = message
