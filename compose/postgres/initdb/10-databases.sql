-- First start of the Postgres volume only (docker-entrypoint-initdb.d), as the superuser.
-- Two databases with their own roles: Airflow's metadata and the APOD data. The apod
-- schema, its table and the loader role's grants are made by `apod-load init-db`
-- (compose service apod-db-init), which connects as apod_admin.
--
-- Passwords come from the compose secrets (files under /run/secrets), read with psql's
-- backtick expansion so they never appear in a statement log or on a command line.
\set ON_ERROR_STOP on
\set airflow_password `cat /run/secrets/airflow_db_password`
\set apod_admin_password `cat /run/secrets/apod_admin_password`

CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
-- Only its owner (and the superuser) may connect to a database: the APOD roles cannot
-- reach Airflow's metadata, and Airflow's role cannot reach the APOD data.
REVOKE ALL ON DATABASE airflow FROM PUBLIC;

-- apod_admin owns the APOD database and may create the loader role (CREATEROLE): it
-- needs no superuser rights for init-db.
CREATE ROLE apod_admin LOGIN CREATEROLE PASSWORD :'apod_admin_password';
CREATE DATABASE apod OWNER apod_admin;
REVOKE ALL ON DATABASE apod FROM PUBLIC;
\connect apod
-- Since PostgreSQL 15 nobody but the owner may create in schema public; state it
-- anyway so the same holds on older servers.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
