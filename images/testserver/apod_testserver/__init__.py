"""A stand-in for api.nasa.gov's APOD endpoint, for tests and offline demos.

It serves archive fixtures through the same gateway and service behaviour as the real
API (keys, rate-limit headers, error bodies, missing days) and lets tests inject faults.
"""
