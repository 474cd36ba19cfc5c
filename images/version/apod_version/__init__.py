"""APOD pipeline step `version`: DVC-track the dataset CSV and commit its metadata to git."""
