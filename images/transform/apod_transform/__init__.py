"""APOD pipeline step: validate and normalise extracted entries into a staged CSV batch."""
