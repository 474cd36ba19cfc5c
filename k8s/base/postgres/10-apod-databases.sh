# shellcheck shell=bash
# The database bootstrap of BOTH deployments: Kubernetes mounts it from the ConfigMap
# apod-postgres-init, docker-compose.yml bind-mounts this file. Sourced by the postgres
# image's entrypoint (/docker-entrypoint-initdb.d) when it initialises an empty data
# directory: the Airflow metadata database and the APOD database, each with its own
# roles. Idempotent: safe to run again by hand (roles and databases that exist are kept,
# their passwords reset to the secrets' values).
#
# Passwords are read from files in APOD_PG_SECRETS_DIR (a mounted Secret; compose's
# secrets) and reach psql through its environment (\getenv), never its command line.
#
#   airflow      owns database airflow (Airflow's metadata)
#   apod_admin   owns database apod, CREATEROLE: `apod-load init-db` (Job apod-db-init)
#                connects as it and creates the schema, the table and the loader role
#                apod_loader with its grants (a role made here could not be altered by
#                apod_admin on PostgreSQL 16+)
(
  set -eu
  secrets="${APOD_PG_SECRETS_DIR:-/run/secrets/postgres}"
  read_secret() { tr -d '\r\n' <"$secrets/$1"; }
  AIRFLOW_DB_PASSWORD=$(read_secret airflow-db-password)
  APOD_ADMIN_PASSWORD=$(read_secret apod-admin-password)
  export AIRFLOW_DB_PASSWORD APOD_ADMIN_PASSWORD

  psql -v ON_ERROR_STOP=1 -X -q --username "${POSTGRES_USER:-postgres}" \
    --dbname "${POSTGRES_DB:-postgres}" <<'SQL'
\getenv airflow_password AIRFLOW_DB_PASSWORD
\getenv admin_password APOD_ADMIN_PASSWORD

SELECT format('CREATE ROLE %I LOGIN', r) FROM unnest(ARRAY['airflow', 'apod_admin']) AS r
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec
ALTER ROLE airflow LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'airflow_password';
ALTER ROLE apod_admin LOGIN NOSUPERUSER NOCREATEDB CREATEROLE PASSWORD :'admin_password';

SELECT 'CREATE DATABASE airflow OWNER airflow ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'airflow') \gexec
SELECT 'CREATE DATABASE apod OWNER apod_admin ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'apod') \gexec

-- Each database is reachable only by its own roles (init-db grants the loader CONNECT).
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
REVOKE ALL ON DATABASE apod FROM PUBLIC;
\connect apod
-- Only the owner may create in schema public (the default since PostgreSQL 15).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
)
