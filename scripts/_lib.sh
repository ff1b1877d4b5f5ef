# Sourced by scripts/serve.sh, scripts/test.sh and scripts/install-test-deps.sh
# (never run on its own): which Python the project goes into, and how it is installed.
#
# The Python: $PYTHON if set, else `python3` from PATH (a virtualenv's when one is
# active). A Python that is "externally managed" (PEP 668: Debian's /usr/bin/python3
# outside a virtualenv) refuses pip installs; there the project's own virtualenv
# .venv/ is used instead (created on first use), unless PIP_BREAK_SYSTEM_PACKAGES
# is set, which tells pip to install there all the same.
#
# The dependencies: by default exactly the versions in requirements/*.lock, checked
# against their hashes (the lock holds every package, so pip resolves nothing), then
# the project itself with --no-deps. CONNECTOR_DEPS=latest installs the newest
# releases that pyproject.toml allows instead (no lock, no hashes).

pick_python() {
    PY=${PYTHON:-python3}
    if ! command -v "$PY" >/dev/null 2>&1; then
        echo "$0: no $PY on PATH (set PYTHON=/path/to/python3.11)" >&2
        exit 1
    fi
    if [ -z "${PIP_BREAK_SYSTEM_PACKAGES:-}" ] && "$PY" - <<'EOF'
import os, sys, sysconfig
managed = os.path.isfile(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
sys.exit(0 if managed and sys.prefix == sys.base_prefix else 1)
EOF
    then
        if [ ! -x .venv/bin/python ]; then
            echo "$0: $PY is externally managed (PEP 668): using a virtualenv in .venv/" >&2
            "$PY" -m venv .venv || {
                echo "$0: could not create .venv (on Debian: apt-get install python3-venv)" >&2
                exit 1
            }
        fi
        PY=.venv/bin/python
    fi
    export PY
}

# install_deps run|test: the locked (or newest) dependencies, then the project:
# `run` a regular install of the service, `test` an editable one with the test extra.
install_deps() {
    local what=$1
    local pip=("$PY" -m pip install --quiet --root-user-action=ignore
               --disable-pip-version-check)
    local project=(.) newest=(.)
    if [ "$what" = test ]; then project=(-e .); newest=(-e ".[test]"); fi
    case "${CONNECTOR_DEPS:-locked}" in
        locked)
            echo "$0: installing requirements/$what.lock (hash-checked), then the project"
            "${pip[@]}" --require-hashes -r "requirements/$what.lock"
            # The lock holds the build backend too: nothing unpinned is fetched to build.
            "${pip[@]}" --no-deps --no-build-isolation "${project[@]}"
            ;;
        latest)
            echo "$0: CONNECTOR_DEPS=latest: the newest releases pyproject.toml allows, no lock"
            "${pip[@]}" --upgrade --upgrade-strategy eager "${newest[@]}"
            ;;
        *)
            echo "$0: CONNECTOR_DEPS must be 'locked' (the default) or 'latest'" >&2
            exit 2
            ;;
    esac
}
