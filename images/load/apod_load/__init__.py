"""The load step: upsert a staged APOD batch into Postgres, merge it into the dataset CSV."""
