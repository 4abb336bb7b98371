#!/usr/bin/env bash
# Restore a backup.sh dump into an EMPTY database (create it first: createdb, or CREATE DATABASE).
#   deploy/scripts/restore.sh DUMP_FILE
# Reads DATABASE_URL (the target). One transaction: it restores everything or nothing. Afterwards
# run `flask --app app ledger verify`: it must report the ledger valid before the API serves again.
set -euo pipefail

dump="${1:?usage: restore.sh DUMP_FILE}"
: "${DATABASE_URL:?set DATABASE_URL to the (empty) database to restore into}"
url="${DATABASE_URL/postgresql+psycopg:/postgresql:}"
url="${url/postgres+psycopg:/postgresql:}"
[ -r "$dump" ] || { echo "restore.sh: cannot read $dump" >&2; exit 2; }

tables=$(psql "$url" -Atqc "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
if [ "$tables" != "0" ]; then
  echo "restore.sh: the target database is not empty ($tables tables); restore into a fresh one" >&2
  exit 3
fi

pg_restore --no-owner --no-privileges --single-transaction --exit-on-error --dbname="$url" "$dump"
echo "restored $dump; now run: flask --app app ledger verify"
