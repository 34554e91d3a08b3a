#!/usr/bin/env bash
# Install Debian packages for the tests: `scripts/apt-install.sh PACKAGE...`.
# Uses sudo when not root, and a temporary policy-rc.d so that no package starts a
# system-wide service (the tests start their own servers on loopback).
set -euo pipefail

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no apt-get here: install $* by hand" >&2
    exit 2
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
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
$SUDO apt-get install -y -q --no-install-recommends "$@"
