#!/usr/bin/env bash
# Installs everything the test suite needs on a Debian machine (run as root):
# the locked test dependencies (requirements/test.lock, hash-checked; the newest
# releases with CONNECTOR_DEPS=latest) and the project, editable, into the Python
# that scripts/_lib.sh picks; Debian's Chromium for the browser tests, wrk for
# the benchmarks' smoke runs and redis-server for the Redis bus tests (which start
# and stop their own server). Idempotent: apt is skipped when all three exist.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/_lib.sh
. scripts/_lib.sh

# Browser tests drive Debian's Chromium (executable_path=/usr/bin/chromium);
# Playwright must never fetch a browser build of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export PIP_DISABLE_PIP_VERSION_CHECK=1
export DEBIAN_FRONTEND=noninteractive

pick_python
install_deps test

# Debian packages: Chromium for the browser tests, wrk for the benchmarks' smoke runs,
# redis-server for tests/realtime/test_bus_redis.py.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ -x /usr/bin/redis-server ] || missing+=(redis-server)
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-test-deps: chromium, wrk and redis-server present"
else
    echo "install-test-deps: installing Debian's ${missing[*]} (apt)"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in /usr/bin/chromium wrk /usr/bin/redis-server; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-test-deps: $tool still missing after apt-get install" >&2
        exit 1
    fi
done
