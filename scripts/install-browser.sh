#!/usr/bin/env bash
# Install Debian's Chromium (and its driver) for the browser tests in tests/e2e, only when
# /usr/bin/chromium is missing. Needs root (or sudo). The tests drive this browser with
# the Python playwright package; they never run `playwright install` (no downloads).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no apt-get here: install Chromium at /usr/bin/chromium for tests/e2e" >&2
    exit 2
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update && $SUDO apt-get install -y chromium chromium-driver
