#!/usr/bin/env bash
# The one command for the whole test suite on a fresh Debian machine:
# installs what the tests need (scripts/install-test-deps.sh: the locked versions
# of requirements/test.lock, or the newest with CONNECTOR_DEPS=latest), then runs
# pytest with any arguments given, on the same Python.
#   bash scripts/test.sh                            # everything, locked versions
#   bash scripts/test.sh -k smoke -x                # arguments go to pytest
#   CONNECTOR_DEPS=latest bash scripts/test.sh      # with the newest releases of the day
# Exits with pytest's code; "no tests collected" (5) is a failure too.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/_lib.sh
. scripts/_lib.sh

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

bash scripts/install-test-deps.sh
pick_python

status=0
"$PY" -m pytest "$@" || status=$?

if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; treating that as a failure" >&2
fi
exit "$status"
