#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the portal's browser tests (tests/e2e/portal): installed
# from Debian's packages when missing (as root, e.g. on CI); never a browser download of a test
# tool's own. tests/conftest.py runs this when a selected test is marked `browser`.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "the portal's browser tests need Debian's chromium and chromium-driver:" >&2
  echo "  sudo apt-get install -y chromium chromium-driver" >&2
  exit 1
fi
echo "==> installing Debian's chromium and chromium-driver (browser tests)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
/usr/bin/chromium --version
