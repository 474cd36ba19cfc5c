"""The Docker gate: the only holder of the Docker socket (README.md)."""
