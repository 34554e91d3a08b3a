#!/usr/bin/env bash
# Install the PostgreSQL server binaries for the tests, only when they are missing.
# The packaged service is not used: scripts/with-postgres.sh starts a throwaway server.
set -euo pipefail

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
exec "$(dirname "$0")/apt-install.sh" postgresql
