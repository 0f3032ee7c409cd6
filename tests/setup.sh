#!/usr/bin/env bash
# Installs what nbterm's tests need on a fresh Debian machine, then exits. Idempotent.
#   - system parts: OpenSSH server and client, rsync, tmux, git, inotify-tools (apt-get, as root)
#   - .venv/ with nbterm and its dev and demo extras
#   - as root: an unprivileged user "nbterm-test" for the loopback sshd to log in as, and a Python
#     environment with jupyter-server that this user can run (/opt/nbterm-test/remote-venv)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TEST_USER=nbterm-test
REMOTE_VENV=/opt/nbterm-test/remote-venv

say() { printf 'setup: %s\n' "$*" >&2; }
pip_quiet() {  # pip, with its output shown only when it fails
    local log
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then cat "$log" >&2; rm -f "$log"; return 1; fi
    rm -f "$log"
}

need_apt=()
command -v ssh >/dev/null || need_apt+=(openssh-client)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh-keygen >/dev/null || need_apt+=(openssh-client)
command -v rsync >/dev/null || need_apt+=(rsync)
command -v tmux >/dev/null || need_apt+=(tmux)
command -v git >/dev/null || need_apt+=(git)
# the "remote" of the tests may watch notebooks with inotify; without it nbterm polls (both tested)
command -v inotifywait >/dev/null || need_apt+=(inotify-tools)
# the real-browser test (tests/browser): Debian's Chromium and its driver, run headless
if [ "$(id -u)" = 0 ]; then
    # a folder that folds names as macOS's APFS does (tests/harness/foldfs.py): FUSE, as root
    command -v fusermount3 >/dev/null || need_apt+=(fuse3)
    command -v chromium >/dev/null || need_apt+=(chromium)
    command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
fi
can_make_venv() {  # Debian ships venv's pip bootstrap separately (python3-venv)
    local dir ok=1
    dir=$(mktemp -d)
    "$1" -m venv "$dir/v" >/dev/null 2>&1 && ok=0
    rm -rf "$dir"
    return $ok
}
if [ "$(id -u)" = 0 ]; then
    # the remote side of the tests runs as an unprivileged user, with Debian's python3
    if [ ! -x /usr/bin/python3 ]; then need_apt+=(python3 python3-venv)
    elif [ ! -x "$REMOTE_VENV/bin/jupyter-server" ] && ! can_make_venv /usr/bin/python3; then
        need_apt+=(python3-venv)
    fi
fi
if [ ! -x .venv/bin/python ] && [ "$(command -v "$PYTHON")" = /usr/bin/python3 ] \
    && ! can_make_venv "$PYTHON"; then
    need_apt+=(python3-venv)
fi

if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing ${need_apt[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    else
        say "missing system packages: ${need_apt[*]}"
        say "install them (for example: sudo apt-get install ${need_apt[*]}) and run again"
        exit 1
    fi
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    say "nbterm needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)"
    exit 1
fi

stamp=.venv/.nbterm-installed
if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "$PYTHON" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    say "installing nbterm with its dev and demo extras into .venv"
    pip_quiet .venv/bin/python -m pip install --disable-pip-version-check -U pip
    pip_quiet .venv/bin/python -m pip install --disable-pip-version-check -e '.[dev,demo]'
    touch "$stamp"
fi

if [ "$(id -u)" = 0 ]; then
    mkdir -p /run/sshd
    if ! id "$TEST_USER" >/dev/null 2>&1; then
        say "creating the unprivileged test user $TEST_USER"
        useradd --create-home --shell /bin/bash "$TEST_USER"
    fi
    # sshd with UsePAM no refuses accounts whose password is locked ("!"); "*" allows key logins only.
    usermod -p '*' "$TEST_USER"
    if [ ! -x "$REMOTE_VENV/bin/jupyter-server" ]; then
        say "creating the remote side's Python ($REMOTE_VENV, jupyter-server)"
        mkdir -p "$(dirname "$REMOTE_VENV")"
        /usr/bin/python3 -m venv "$REMOTE_VENV"
        pip_quiet "$REMOTE_VENV/bin/python" -m pip install --disable-pip-version-check jupyter-server
        chmod -R a+rX "$(dirname "$REMOTE_VENV")"
    fi
    # the real-browser test loads JupyterLab and runs a cell in a kernel
    if [ ! -x "$REMOTE_VENV/bin/jupyter-lab" ] || [ ! -d "$REMOTE_VENV/share/jupyter/kernels/python3" ]; then
        say "adding JupyterLab and ipykernel to the remote side's Python"
        pip_quiet "$REMOTE_VENV/bin/python" -m pip install --disable-pip-version-check jupyterlab ipykernel
        chmod -R a+rX "$(dirname "$REMOTE_VENV")"
    fi
    # the Jupyter-install test installs from these, offline: test traffic stays on loopback
    wheels="$(dirname "$REMOTE_VENV")/wheels"
    if [ ! -f "$wheels/.complete" ]; then
        say "downloading JupyterLab's wheels for the install test ($wheels)"
        mkdir -p "$wheels"
        pip_quiet "$REMOTE_VENV/bin/python" -m pip download --disable-pip-version-check \
            --dest "$wheels" jupyterlab ipykernel
        touch "$wheels/.complete"
        chmod -R a+rX "$wheels"
    fi
fi
say "ready"
