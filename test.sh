#!/usr/bin/env bash
# The test command, here and in CI (.ci/run): installs what the tests
# drive when it is missing, then checks formatting and lints and runs the
# tests. Arguments go to `cargo test`: `./test.sh --test cli`.
#
# Installing needs Debian's apt-get as root (or sudo that asks no
# password) and pip; what cannot be installed is named, and the tests
# that need it then fail saying so: they never skip.
set -euo pipefail
cd "$(dirname "$0")"

playwright=1.49.1 # tests/browser/play.py names the same pin

say() {
    echo "test.sh: $*" >&2
}

# Runs a command as root: directly, or through sudo if it asks no password.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo "$@"
    else
        return 1
    fi
}

# Installs Debian packages, or says why not.
apt_install() {
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get)
    if ! command -v apt-get >/dev/null; then
        say "no apt-get here: install $* by hand"
    elif ! as_root true; then
        say "not root, and sudo asks a password: apt-get install $* by hand"
    else
        say "installing $*"
        if ! { as_root "${apt[@]}" update -qq && as_root "${apt[@]}" install -y -qq "$@" >/dev/null; }; then
            say "apt-get could not install $*"
        fi
    fi
}

# Installs Python packages for python3, or says why not.
pip_install() {
    say "installing $*"
    # Debian's own python3 refuses pip installs (PEP 668) unless told.
    if ! python3 -m pip install -q "$@" \
        && ! python3 -m pip install -q --break-system-packages "$@"; then
        say "could not install $*: python3 -m pip install $*"
    fi
}

# Real peers the end-to-end tests drive: ffmpeg and ffprobe (publisher
# and player), nginx with its RTMP module (origin and comparison peer),
# Debian's Chromium (the browser tests play the player page in it,
# headless; Playwright's own browser download is not used), promtool
# (Debian's prometheus package: tests/metrics.rs checks /metrics with it),
# and pip for what follows.
debs=()
if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
    debs+=(ffmpeg)
fi
command -v nginx >/dev/null || debs+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || debs+=(libnginx-mod-rtmp)
[ -x /usr/bin/chromium ] || debs+=(chromium)
command -v promtool >/dev/null || debs+=(prometheus)
python3 -m pip --version >/dev/null 2>&1 || debs+=(python3-pip)
if [ "${#debs[@]}" -gt 0 ]; then
    apt_install "${debs[@]}"
fi

# ffmpeg 9 (static, from PyPI) publishes and plays enhanced RTMP (HEVC,
# AV1, Opus), which Debian's ffmpeg 5.1 cannot; Playwright drives
# Chromium for the browser tests.
wheels=()
python3 -c 'import imageio_ffmpeg' 2>/dev/null || wheels+=(imageio-ffmpeg)
if ! python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('playwright') != '$playwright')" 2>/dev/null; then
    wheels+=("playwright==$playwright")
fi
if [ "${#wheels[@]}" -gt 0 ]; then
    pip_install "${wheels[@]}"
fi

# The checks below need rustfmt and clippy, which a minimal rustup
# profile leaves out.
if command -v rustup >/dev/null; then
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
    cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked "$@"
