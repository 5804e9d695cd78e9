#!/usr/bin/env bash
# Make sure the headless Chromium that tests/report/test_browser.py drives is installed
# (the Debian package). Installs it as root, or with sudo when that needs no password;
# otherwise says so and carries on (the browser test then skips, unless
# DOSEPRINT_REQUIRE_BROWSER=1 makes it fail).
set -euo pipefail

CHROMIUM="${DOSEPRINT_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: $CHROMIUM is missing and this system has no apt-get;" \
         "install Chromium to run the preview's browser test" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "note: $CHROMIUM is missing and installing it needs root;" \
         "run 'sudo apt-get install chromium' to run the preview's browser test" >&2
    exit 0
fi
echo "installing Chromium (Debian package) for the preview's browser test" >&2
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends chromium
