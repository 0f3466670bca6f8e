#!/usr/bin/env bash
# Sets up everything dubkit needs on a fresh Debian/Ubuntu machine with Python 3.11: ffmpeg (apt, when missing),
# a virtual environment in .venv, and the pinned dependencies. Quick when already done (a stamp of the pins).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else "$@"; fi; }

apt_install() {
  # apt-get update only once per run, and only when something is missing.
  if [ -z "${_APT_UPDATED:-}" ]; then as_root apt-get update -qq >&2; _APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  log "installing ffmpeg (apt)"
  apt_install ffmpeg
fi
# Extras for the test run: headless Chromium for the report screenshot test, sonic-pi's CC0 samples for the
# foley library. Best effort: their tests skip when absent.
if [ "${DUBKIT_SETUP_EXTRAS:-0}" = 1 ]; then
  missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  [ -d /usr/share/sonic-pi/samples ] || missing+=(sonic-pi-samples)
  if [ ${#missing[@]} -gt 0 ]; then log "installing ${missing[*]} (apt)"; apt_install "${missing[@]}" || log "could not install ${missing[*]}; their tests will be skipped"; fi
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/pip ]; then
  # Debian's python3.11 needs python3.11-venv for `-m venv` (ensurepip); pyenv/official builds have it.
  if ! "$PY" -c 'import ensurepip' 2>/dev/null; then
    log "installing python3-venv (apt)"
    apt_install "$("$PY" -c 'import sys; print(f"python3.{sys.version_info.minor}-venv")')"
  fi
  log "creating .venv with $($PY --version)"
  rm -rf .venv
  "$PY" -m venv .venv || { rm -rf .venv; log "could not create .venv"; exit 1; }
fi

stamp=.venv/.dubkit-installed
want=$(cat pyproject.toml requirements.lock 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing pinned dependencies into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -c requirements.lock -e '.[dev]' >&2
  echo "$want" > "$stamp"
else
  log "dependencies up to date"
fi
# The authors' TangoFlux, the oracle the faithful-preset tests compare with. Its package pins torch 2.4 and
# friends it does not need for inference, so it goes in without its dependencies (version from the lock).
tf_pin=$(grep -i '^tangoflux==' requirements.lock)
if [ "$(.venv/bin/python -c 'import importlib.metadata as m; print("tangoflux==" + m.version("tangoflux"))' 2>/dev/null)" != "$tf_pin" ]; then
  log "installing $tf_pin (--no-deps, test oracle)"
  .venv/bin/python -m pip install -q --no-deps "$tf_pin" >&2
fi
