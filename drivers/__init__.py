"""rramlab.drivers."""
