#!/usr/bin/env bash
# Install the PostgreSQL server binaries (Debian/Ubuntu packages) for the tests, only
# when they are missing. Needs root (or sudo). The packaged service is not used:
# scripts/with-postgres.sh starts a throwaway server of its own.
set -euo pipefail

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no apt-get here: install the PostgreSQL 15 server, or set MEDLOOP_SKIP_POSTGRES=1" >&2
    exit 2
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# policy-rc.d keeps the package from starting the system-wide PostgreSQL service.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" -eq 1 ]; then
        $SUDO rm -f "$policy"
    fi
}
trap cleanup EXIT

$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends postgresql
