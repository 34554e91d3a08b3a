#!/usr/bin/env bash
# Install Orthanc and its DICOMweb plugin for the DICOMweb integration tests, only when
# they are missing. The packaged service is not used: the tests start their own Orthanc
# with its own storage folder, port and configuration.
set -euo pipefail

if command -v Orthanc >/dev/null 2>&1 && dpkg -s orthanc-dicomweb >/dev/null 2>&1; then
    exit 0
fi
"$(dirname "$0")/apt-install.sh" orthanc orthanc-dicomweb
command -v Orthanc >/dev/null
