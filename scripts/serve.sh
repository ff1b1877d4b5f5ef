#!/usr/bin/env bash
# The one command that installs and starts the service (SQLite + in-process bus):
# installs the locked dependencies (requirements/run.lock) and the project, then
# runs `connector serve` with any arguments given, in the directory it was started
# from (the default database is ./data/connector.db there). CONNECTOR_* settings
# apply as usual; CONNECTOR_DEPS=latest installs the newest releases instead.
#   bash scripts/serve.sh
set -euo pipefail

here=$PWD
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_lib.sh
. scripts/_lib.sh

pick_python
install_deps run
bin=$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
cd "$here"
exec "$bin/connector" serve "$@"
