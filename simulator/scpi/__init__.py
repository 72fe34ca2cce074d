"""SCPI front end shared by the SCPI emulators (engine, command tree, parameters, error tables)."""

from .engine import ScpiInstrument
from .errors import SCPI_ERRORS, ScpiError
from .params import Call, ChannelRange, Param

__all__ = ["SCPI_ERRORS", "Call", "ChannelRange", "Param", "ScpiError", "ScpiInstrument"]
