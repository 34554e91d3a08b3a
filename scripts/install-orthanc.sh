#!/usr/bin/env bash
# Install Orthanc and its DICOMweb plugin (Debian packages) for the DICOMweb
# integration tests, only when they are missing. Needs root (or sudo).
# The service the package registers is not used: the tests start their own
# Orthanc with its own storage folder, port and configuration.
set -euo pipefail

if command -v Orthanc >/dev/null 2>&1 && dpkg -s orthanc-dicomweb >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# policy-rc.d keeps the package from starting the system-wide Orthanc service.
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

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends orthanc orthanc-dicomweb >/dev/null
command -v Orthanc >/dev/null
