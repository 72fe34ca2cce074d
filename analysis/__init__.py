"""rramlab.analysis: datasets, extraction, statistics and plots."""
