"""The extract step: fetch APOD entries from the API, in chunks, into /data/raw untouched."""
