#!/usr/bin/env bash
# Set-up and tasks for distkv-code.  Needs only Python 3.11 (python3) and bash.
#
#   ./dev.sh demo     a local node, three runners, a job moving after kill -9, procedures; stops
#                     everything (--keep: leaves it running, with the status page, until Ctrl-C)
#   ./dev.sh test     run the whole test suite (what CI runs; in 3 processes, TEST_WORKERS=1: one; pytest options pass through)
#   ./dev.sh fast     the fast lane: the tests not marked drill or slow (a few minutes)
#   ./dev.sh lint     ruff check, ruff format --check, mypy distkv_ext; names what failed
#   ./dev.sh bench    run the benchmarks (bench/)
#   ./dev.sh node     run a local DistKV node until Ctrl-C
#   ./dev.sh docs     regenerate man/ and completions/ from the commands
#   ./dev.sh screenshot  docs/status-page.png: the status page of a demo fleet
#
# Each creates (or reuses) the virtual environment .venv and installs the
# project and its pinned dependencies from constraints.txt into it.  test,
# fast, bench and screenshot also install the Debian packages they need
# (chromium, chromium-driver, systemd, faketime) where missing.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${DISTKV_CODE_VENV:-.venv}
PY=${PYTHON:-python3}

# Debian packages the tests use, installed where missing (as root, with
# apt-get): systemd-analyze checks the unit files in systemd/.

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
    fi
    # re-install when the inputs change (cheap check: a stamp file)
    local stamp="$VENV/.distkv-code-stamp"
    local want
    want=$(cat constraints.txt setup.cfg setup.py pyproject.toml | cksum)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt \
            -e '.[test]' --config-settings editable_mode=compat
        "$VENV/bin/python" -m pip check
        echo "$want" > "$stamp"
    fi
    # an editable install carries no distkv_code.pth (see setup.py): copy it
    local pth=distkv_ext/codekit/upstream/distkv_code.pth site
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    cmp -s "$pth" "$site/distkv_code.pth" || cp "$pth" "$site/distkv_code.pth"
    export PATH="$PWD/$VENV/bin:$PATH"
}

# Debian packages the tests need, installed where missing (as root, or
# with password-less sudo): chromium and chromium-driver (the browser test),
# systemd (systemd-analyze, for the units' test).
debian_packages() {
    local missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
    command -v faketime >/dev/null 2>&1 || missing+=(faketime)  # the clock-skew drill
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "dev.sh: missing Debian packages ${missing[*]} and not root: tests that need them will fail" >&2
            echo "dev.sh: install them with: apt-get install ${missing[*]}" >&2
            return 0
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "dev.sh: missing ${missing[*]} and no apt-get: tests that need them will fail" >&2
        return 0
    fi
    echo "== installing Debian's ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
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

# The whole suite (what CI runs): two runs, every test but the fault
# drills in TEST_WORKERS processes (default 3; pytest-xdist: these tests
# mostly wait, and 3 workers take 13 min here instead of 36), then the
# drills one at a time (they load the machine, kill processes and
# measure), and the tests marked "alone" (they fail beside others); both
# always run, and the status is the first run's if it failed, else the
# second's (pytest's: 1 a test failed, 5 none ran).
# TEST_WORKERS=1, or arguments: one pytest (with them), one test at a time.
run_tests() {
    local workers=${TEST_WORKERS:-3}
    if [ $# -ne 0 ] || [ "$workers" -le 1 ]; then
        exec "$VENV/bin/python" -m pytest "$@"
    fi
    local rc=0 drills=0
    "$VENV/bin/python" -m pytest -n "$workers" -m "not drill and not alone" || rc=$?
    "$VENV/bin/python" -m pytest -m "drill or alone" || drills=$?
    if [ "$rc" -ne 0 ]; then
        return "$rc"
    fi
    return "$drills"
}

cmd=${1:-help}
shift || true
case "$cmd" in
    demo)  setup; exec "$VENV/bin/distkv-code-demo" "$@" ;;
    test)  setup; debian_packages; run_tests "$@" ;;
    fast)  setup; debian_packages; exec "$VENV/bin/python" -m pytest -m "not drill and not slow" "$@" ;;
    lint)  setup; lint ;;
    bench) setup; debian_packages; exec "$VENV/bin/python" -m bench "$@" ;;
    screenshot) setup; debian_packages; exec "$VENV/bin/python" -m distkv_ext.devtools.screenshot "${1:-docs/status-page.png}" ;;
    node)  setup; exec "$VENV/bin/distkv-code-node" "$@" ;;
    docs)  setup; "$VENV/bin/python" -m distkv_ext.devtools.mangen man
           exec "$VENV/bin/python" -m distkv_ext.devtools.complete --scripts completions ;;
    *)     sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
