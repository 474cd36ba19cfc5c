#!/usr/bin/env bash
# Entrypoint of the apod-airflow image: `airflow <args>`, after one preparation step.
#
# The simple auth manager reads its users' passwords from a JSON file that it must be
# able to open for writing (it adds generated passwords for users it does not find).
# When AIRFLOW_ADMIN_PASSWORD_FILE names a secret, that file is rendered here from the
# secret, inside the container, so the password lives only in the secret (and in .env
# on the host), never in the image or in a world-readable file.
set -euo pipefail

passwords_file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-}"
if [ -n "${AIRFLOW_ADMIN_PASSWORD_FILE:-}" ] && [ -n "$passwords_file" ]; then
  python - "$AIRFLOW_ADMIN_PASSWORD_FILE" "$passwords_file" "${AIRFLOW_ADMIN_USERNAME:-admin}" <<'PY'
import json, os, sys

secret, target, user = sys.argv[1:4]
with open(secret, encoding="utf-8") as handle:
    password = handle.read().strip()
if not password:
    sys.exit(f"entrypoint: {secret} is empty")
os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
fd = os.open(target + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w", encoding="utf-8") as handle:
    json.dump({user: password}, handle)
    handle.write("\n")
os.replace(target + ".tmp", target)
PY
fi

exec airflow "$@"
