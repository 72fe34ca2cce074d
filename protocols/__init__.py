"""rramlab.protocols."""
