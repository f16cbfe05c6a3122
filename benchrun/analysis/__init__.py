"""Comparing runs that are already on disk: the noise tests and floors (noise), the machine's
run-to-run calibration (calibration), and `benchrun diff` (diff). Reads result files only."""
