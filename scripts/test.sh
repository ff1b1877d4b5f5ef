#!/usr/bin/env bash
# The one command for the whole test suite on a fresh Debian machine:
# installs what the tests need, then runs pytest with any arguments given.
#   bash scripts/test.sh              # everything
#   bash scripts/test.sh -k smoke -x  # arguments go to pytest
# Exits with pytest's code; "no tests collected" (5) is a failure too.
set -euo pipefail

cd "$(dirname "$0")/.."

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

bash scripts/install-test-deps.sh

status=0
python3 -m pytest "$@" || status=$?

if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; treating that as a failure" >&2
fi
exit "$status"
