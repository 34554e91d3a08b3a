#!/usr/bin/env bash
# Install Debian's Redis server for the cluster tests and `make cluster`, only when missing.
# The packaged service is not used: the tests and scripts/cluster.sh start their own
# redis-server on a free loopback port.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
exec "$(dirname "$0")/apt-install.sh" redis-server
