#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the browser tests (tests/test_browser.py),
# unless both are already there. Idempotent and quiet; needs root or sudo. A failure here
# does not stop `make test`: the browser tests then fail with a message saying what is missing.
set -u
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "install_browser: not root and no sudo; install chromium and chromium-driver by hand" >&2
        exit 0
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: no apt-get; install Chromium and ChromeDriver by hand (CRS_CHROMIUM / CRS_CHROMEDRIVER)" >&2
    exit 0
fi
echo "install_browser: installing Debian's chromium and chromium-driver (once)..." >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { $SUDO apt-get update -qq && \
       $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver; } >"$log" 2>&1; then
    echo "install_browser: apt-get install chromium chromium-driver failed:" >&2
    tail -n 5 "$log" >&2
fi
rm -f "$log"
exit 0
