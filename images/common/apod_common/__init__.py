"""Code shared by the APOD pipeline steps: record schema, settings, paths, logging."""

__version__ = "0.1.0"
