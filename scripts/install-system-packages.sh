#!/usr/bin/env bash
# System packages some tests and recipes need, installed where the user may (root or passwordless sudo); otherwise a
# warning, and the tests that need them skip with the reason. Run by `make demo` / `make test` (through the venv
# stamp) and so by CI. Idempotent: nothing is done when a package is already there.
set -uo pipefail
# Connectome Workbench: the reference for sphere resampling (tests/test_surface_wb.py). Idempotent: skipped when
# wb_command is already there; apt-get only when running as root (or with passwordless sudo).
if ! command -v wb_command >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
  export DEBIAN_FRONTEND=noninteractive
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends connectome-workbench; } ||
    echo "warning: connectome-workbench could not be installed; the wb_command agreement tests will skip" >&2
fi
# Real speech recordings for the movie soundtracks (stimuli/speech.py, movie_surface_like); same tolerant style.
if [ ! -d /usr/share/asterisk/sounds/en_US_f_Allison ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
  export DEBIAN_FRONTEND=noninteractive
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends asterisk-core-sounds-en-wav; } ||
    echo "warning: asterisk-core-sounds-en-wav could not be installed; the tests needing speech will skip" >&2
fi
