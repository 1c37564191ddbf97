"""Shared vocabulary: ids, spec, phases, errors, settings, clock, routing types.

Purely data: no I/O, no imports of any other Podium package.
"""
