"""Stimulus encoders (a registry) and the on-disk embedding cache."""
