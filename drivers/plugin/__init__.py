"""pyvisa plugin package ``pyvisa_rramlab_record`` (this folder, mapped in pyproject.toml).

``pyvisa.ResourceManager("session.jsonl@rramlab_record")`` records every VISA call of the system VISA
library (or of ``?backend=NAME&library=PATH``) to ``session.jsonl``; see :mod:`rramlab.drivers.recording`.
"""

from rramlab.drivers.recording import RecordingVisaLibrary

WRAPPER_CLASS = RecordingVisaLibrary

__all__ = ["WRAPPER_CLASS"]
