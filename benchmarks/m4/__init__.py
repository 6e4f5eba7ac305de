"""Cortex-M4 measurements of the generated C: cross-compiled images run on an emulated core.

- :mod:`~benchmarks.m4.build`: start-up code, linker script and harness around a model, cross-compiled;
- :mod:`~benchmarks.m4.emulator`: runs an image in unicorn, counts instructions and estimated cycles;
- :mod:`~benchmarks.m4.cycles`: the per-instruction cycle estimate (Cortex-M4 TRM);
- :mod:`~benchmarks.m4.layers`: maps code addresses to the network's layers;
- :mod:`~benchmarks.m4.sizes`: flash, static RAM and worst-case stack of an image;
- :mod:`~benchmarks.m4.measure`: all of it per example, and the alternatives beside it.
"""
