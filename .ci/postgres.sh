# Sourced by .ci/run: make the local PostgreSQL usable by tests/test_postgres.py and require it.
# Works on a fresh machine (PostgreSQL installed, cluster stopped, no role or database for us) and is
# idempotent. Needs root (CI runs as root): roles are created through the `postgres` OS account, because
# the stock pg_hba only lets that account in without a password (peer auth on the Unix socket).
# Over TCP the stock pg_hba asks for a password (scram-sha-256 on 127.0.0.1), so the role gets one.

STRATUS_PG_ROLE=stratus
STRATUS_PG_PASSWORD=stratus
STRATUS_PG_DB=stratus_test

as_postgres() { runuser -u postgres -- "$@"; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "ci: PostgreSQL is not installed (pg_ctlcluster missing); tests/test_postgres.py is required" >&2
  exit 1
fi
if ! compgen -G "/etc/postgresql/*/main" >/dev/null; then
  # packages installed without a cluster: create the default one
  pg_createcluster "$(ls /usr/lib/postgresql | sort -n | tail -1)" main
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  for v in /etc/postgresql/*; do
    pg_ctlcluster --skip-systemctl-redirect "$(basename "$v")" main start || true
  done
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
# ALTER as well as CREATE, so a role left by an earlier run with another password still matches the DSN.
as_postgres psql -q -v ON_ERROR_STOP=1 <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$STRATUS_PG_ROLE') THEN
    CREATE ROLE $STRATUS_PG_ROLE LOGIN PASSWORD '$STRATUS_PG_PASSWORD';
  ELSE
    ALTER ROLE $STRATUS_PG_ROLE LOGIN PASSWORD '$STRATUS_PG_PASSWORD';
  END IF;
END
\$\$;
SQL
if ! as_postgres psql -tAc "SELECT 1 FROM pg_database WHERE datname = '$STRATUS_PG_DB'" | grep -q 1; then
  as_postgres createdb -O "$STRATUS_PG_ROLE" "$STRATUS_PG_DB"
fi

export STRATUS_TEST_PG_DSN="postgresql://$STRATUS_PG_ROLE:$STRATUS_PG_PASSWORD@127.0.0.1:5432/$STRATUS_PG_DB"
export STRATUS_REQUIRE_PG=1  # in CI an unreachable server fails tests/test_postgres.py instead of skipping it
