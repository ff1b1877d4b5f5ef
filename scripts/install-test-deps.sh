#!/usr/bin/env bash
# Installs everything the test suite needs on a Debian machine (run as root):
# the project with its `test` extra, and Debian's Chromium for the browser tests.
# Idempotent: apt is skipped when /usr/bin/chromium already exists.
set -euo pipefail

cd "$(dirname "$0")/.."

# Browser tests drive Debian's Chromium (executable_path=/usr/bin/chromium);
# Playwright must never fetch a browser build of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export PIP_DISABLE_PIP_VERSION_CHECK=1
export DEBIAN_FRONTEND=noninteractive

echo "install-test-deps: pip install -e '.[test]'"
python3 -m pip install --quiet --root-user-action=ignore -e '.[test]'

if [ -x /usr/bin/chromium ]; then
    echo "install-test-deps: /usr/bin/chromium present"
else
    echo "install-test-deps: installing Debian's chromium (apt)"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
    if [ ! -x /usr/bin/chromium ]; then
        echo "install-test-deps: /usr/bin/chromium still missing after apt-get install" >&2
        exit 1
    fi
fi
