"""Podium: a self-hosted Model Endpoints platform."""

__version__ = "0.1.0"
