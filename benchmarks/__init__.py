"""Measurements of the generated C (``make bench``); :mod:`benchmarks.m4` is the Cortex-M4 part."""
