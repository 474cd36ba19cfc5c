"""APOD pipeline step: validate and normalise extracted entries into a staged CSV batch."""

__version__ = "0.1.0"
