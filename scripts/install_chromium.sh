#!/usr/bin/env bash
# The web widget's tests drive a real headless Chromium: Debian's `chromium` package (Playwright is pointed
# at /usr/bin/chromium; nothing is downloaded from Playwright's CDN).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "[setup] chromium is missing: install the Debian package 'chromium' (as root)" >&2; exit 1; }
  SUDO="sudo"
fi
echo "[setup] installing Debian's chromium for the browser tests"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null \
  || { $SUDO apt-get update -q >/dev/null && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; }
chromium --version
