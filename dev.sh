#!/usr/bin/env bash
# Set-up and tasks for distkv-code.  Needs only Python 3.11 (python3) and bash.
#
#   ./dev.sh demo     start a local DistKV node, store/call/list/diff a procedure, stop
#   ./dev.sh test     run the whole test suite (what CI runs; pytest options pass through)
#   ./dev.sh fast     the fast lane: the tests not marked drill or slow (a few minutes)
#   ./dev.sh lint     ruff check, ruff format --check, mypy distkv_ext; names what failed
#   ./dev.sh bench    run the benchmarks (bench/)
#   ./dev.sh node     run a local DistKV node until Ctrl-C
#   ./dev.sh docs     regenerate man/ and completions/ from the commands
#
# Each creates (or reuses) the virtual environment .venv and installs the
# project and its pinned dependencies from constraints.txt into it.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${DISTKV_CODE_VENV:-.venv}
PY=${PYTHON:-python3}

# Debian packages the tests use, installed where missing (as root, with
# apt-get): systemd-analyze checks the unit files in systemd/.
debian_tools() {
    if ! command -v systemd-analyze >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian's systemd package (for systemd-analyze)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
    fi
}

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
    fi
    # re-install when the inputs change (cheap check: a stamp file)
    local stamp="$VENV/.distkv-code-stamp"
    local want
    want=$(cat constraints.txt setup.cfg pyproject.toml | cksum)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt \
            -e '.[test]' --config-settings editable_mode=compat
        "$VENV/bin/python" -m pip check
        echo "$want" > "$stamp"
    fi
    export PATH="$PWD/$VENV/bin:$PATH"
}

# Run every linter (also after one fails), then name the ones that failed.
lint() {
    local failed=()
    echo "== ruff check"
    "$VENV/bin/ruff" check || failed+=("ruff check")
    echo "== ruff format --check"
    "$VENV/bin/ruff" format --check || failed+=("ruff format --check")
    echo "== mypy distkv_ext"
    "$VENV/bin/mypy" distkv_ext || failed+=("mypy distkv_ext")
    if [ ${#failed[@]} -ne 0 ]; then
        local msg
        msg=$(printf '%s, ' "${failed[@]}")
        echo "lint FAILED: ${msg%, }" >&2
        return 1
    fi
    echo "lint passed"
}

cmd=${1:-help}
shift || true
case "$cmd" in
    demo)  setup; exec "$VENV/bin/distkv-code-demo" "$@" ;;
    test)  setup; debian_tools; exec "$VENV/bin/python" -m pytest "$@" ;;
    fast)  setup; debian_tools; exec "$VENV/bin/python" -m pytest -m "not drill and not slow" "$@" ;;
    lint)  setup; lint ;;
    bench) setup; exec "$VENV/bin/python" -m bench "$@" ;;
    node)  setup; exec "$VENV/bin/distkv-code-node" "$@" ;;
    docs)  setup; "$VENV/bin/python" -m distkv_ext.devtools.mangen man
           exec "$VENV/bin/python" -m distkv_ext.devtools.complete --scripts completions ;;
    *)     sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
