#!/usr/bin/env bash
# Install Debian's Node.js and npm, only when npm is missing: `make lint` uses npm to
# install the browser code's linter (Biome, pinned in tools/web/package-lock.json).
set -euo pipefail

if command -v npm >/dev/null 2>&1; then
    exit 0
fi
exec "$(dirname "$0")/apt-install.sh" nodejs npm
