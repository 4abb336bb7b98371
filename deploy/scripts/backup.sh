#!/usr/bin/env bash
# Back up the datafair PostgreSQL database to one custom-format dump (pg_dump -Fc).
#   deploy/scripts/backup.sh [OUTPUT_FILE]          (default: datafair-YYYYmmddTHHMMSSZ.dump)
# Reads DATABASE_URL (postgresql:// or postgresql+psycopg://). The dump is consistent (one snapshot)
# and includes the ledger's append-only triggers; restore it with restore.sh, then run
# `flask --app app ledger verify` against the restored database.
set -euo pipefail

: "${DATABASE_URL:?set DATABASE_URL to the database to back up}"
url="${DATABASE_URL/postgresql+psycopg:/postgresql:}"
url="${url/postgres+psycopg:/postgresql:}"
case "$url" in
  postgresql://*|postgres://*) ;;
  *) echo "backup.sh: DATABASE_URL must be a PostgreSQL URL (SQLite: copy the file with sqlite3 .backup)" >&2; exit 2 ;;
esac

out="${1:-datafair-$(date -u +%Y%m%dT%H%M%SZ).dump}"
tmp="${out}.partial"
trap 'rm -f "$tmp"' EXIT

pg_dump --format=custom --compress=6 --no-owner --no-privileges --dbname="$url" --file="$tmp"
# A dump that pg_restore cannot list is not a backup.
pg_restore --list "$tmp" > /dev/null
mv "$tmp" "$out"
trap - EXIT
echo "backup written: $out ($(wc -c < "$out") bytes)"
