"""pyvisa plugin shim: ``pyvisa.ResourceManager("@rramlab")`` loads the rramlab simulated bench."""

from rramlab.simulator.visa_library import RramlabVisaLibrary

WRAPPER_CLASS = RramlabVisaLibrary

__all__ = ["WRAPPER_CLASS"]
