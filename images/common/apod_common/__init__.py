"""Code shared by the APOD pipeline steps: their runtime (files, locks, redaction, the
CLI runner), the record schema and rules, and the files that pass between steps."""
