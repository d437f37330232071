#!/usr/bin/env bash
# One-time, idempotent machine set-up for the conformance harness.
#
# Everything a fresh Debian 12 machine lacks (why each step: docs/setup.md):
#   1. Debian 13's libstdc++6 (TorchSharp 0.107's native library needs GLIBCXX_3.4.32),
#      with trixie pinned low so nothing else moves.  Must come before step 2.
#   2. Debian's python3-torch, torchvision (the model zoo), numpy, pytest, hypothesis and tox (PyPI is unreachable).
#   3. Debian's chromium, for the HTML report's browser test; Debian's patch, for --torchsharp-patch.
#   4. Debian's libpython3.11 (the pythonnet host embeds it: harness/drivers/pythonnet.py).
#   5. The .NET worker and the pythonnet host, built once per TorchSharp version
#      (python3 -m harness build-worker builds both).
# Each step checks first and does nothing when its result is already there, so the
# README's commands can call this every time and stay quick.
set -euo pipefail

log() { printf '[setup] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

PY=/usr/bin/python3
apt_updated=""
apt_update() {
  if [ -z "$apt_updated" ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
}

have_glibcxx() {
  local lib
  for lib in /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /usr/lib/*/libstdc++.so.6; do
    [ -e "$lib" ] || continue
    if grep -a -q -F 'GLIBCXX_3.4.32' "$lib"; then return 0; fi
  done
  return 1
}

bookworm_mirror() {
  # The URI of the entry that serves the bookworm suite (deb822 or one-line form).
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/{u=$2} /^Suites:/ && / bookworm( |$)/{print u; exit}' \
            /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ]; then
    uri=$(grep -h -E '^deb [^ ]+ bookworm ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk '{print $2; exit}')
  fi
  if [ -z "$uri" ]; then
    log "cannot find the bookworm mirror in /etc/apt/sources.list(.d): set up trixie's libstdc++6 by hand (docs/setup.md)"
    exit 1
  fi
  printf '%s' "$uri"
}

step_libstdcxx() {
  if have_glibcxx; then return 0; fi
  log "installing Debian 13's libstdc++6 (TorchSharp needs GLIBCXX_3.4.32)"
  local mirror; mirror=$(bookworm_mirror)
  $SUDO tee /etc/apt/sources.list.d/trixie.sources >/dev/null <<SRC
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  $SUDO tee /etc/apt/preferences.d/trixie >/dev/null <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
  apt_updated=""
  apt_update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t trixie libstdc++6 >/dev/null
  have_glibcxx || { log "libstdc++6 from trixie did not provide GLIBCXX_3.4.32"; exit 1; }
}

step_python() {
  # pytest-xdist: the suite's tests in parallel (tox.ini); libjemalloc2: the matrix run's
  # allocator, which keeps freed memory for the next large tensor (harness/running/allocator.py)
  if [ -x "$PY" ] && "$PY" -c 'import torch, torchvision, numpy, pytest, xdist, hypothesis, mypy, flake8' 2>/dev/null \
      && command -v tox >/dev/null 2>&1 && [ -e /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ]; then
    return 0
  fi
  log "installing Debian's python3-torch, torchvision, numpy, pytest, pytest-xdist, hypothesis, mypy, flake8, tox, libjemalloc2"
  apt_update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    python3-torch python3-torchvision python3-numpy python3-pytest python3-pytest-xdist python3-hypothesis python3-mypy \
    python3-flake8 tox libjemalloc2 >/dev/null
}

step_chromium() {
  # Headless Chromium checks the HTML report in a real browser (tests/harness/test_html_browser.py).
  if [ -x /usr/bin/chromium ]; then return 0; fi
  log "installing Debian's chromium (for the HTML report's browser test)"
  apt_update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
}

step_patch() {
  # `patch` applies --torchsharp-patch files to a copy of a TorchSharp source (harness/builds/torchsharp_source.py).
  if command -v patch >/dev/null 2>&1; then return 0; fi
  log "installing Debian's patch (for --torchsharp-patch)"
  apt_update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq patch >/dev/null
}

step_libpython() {
  # The pythonnet host (dotnet/PyHost) loads Debian's CPython library at run time.
  if [ -e /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0 ]; then return 0; fi
  log "installing Debian's libpython3.11 (embedded by the pythonnet host)"
  apt_update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libpython3.11 >/dev/null
}

step_dotnet() {
  command -v dotnet >/dev/null 2>&1 || { log "the .NET SDK is missing (dotnet not on PATH)"; exit 1; }
}

step_libstdcxx
step_python
step_chromium
step_patch
step_libpython
step_dotnet
if [ "${SETUP_SKIP_WORKER:-}" != 1 ]; then
  cd "$(dirname "$0")/.."
  "$PY" -m harness build-worker
fi
log "ready"
