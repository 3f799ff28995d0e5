"""Runs of solve, fix and bench: the index in the data folder, provenance, and export of
verified trajectories as training data."""
