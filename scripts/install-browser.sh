#!/usr/bin/env bash
# Install Debian's Chromium and ChromeDriver for the browser tests, only when missing.
# Never `playwright install`: the tests drive /usr/bin/chromium.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
exec "$(dirname "$0")/apt-install.sh" chromium chromium-driver
