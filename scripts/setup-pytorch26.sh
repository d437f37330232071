#!/usr/bin/env bash
# A second, newer PyTorch for the matrix's PyTorch axis: Debian 13's python3-torch 2.6.0
# (Python 3.13, numpy 2.2) in a minimal trixie root under build/pytorch-2.6/root.
# Idempotent: a marker file records a finished root; the next call returns at once.
# Entered with unshare+chroot by harness/drivers/pytorch_worker.py (never through the
# root's ld.so from the host, which would silently load host libraries).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOTFS=${PYTORCH26_ROOT:-$PWD/build/pytorch-2.6/root}
MARKER="$ROOTFS/.harness-ready"
log() { printf '[setup-pytorch26] %s\n' "$*" >&2; }
SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
JEMALLOC=usr/lib/x86_64-linux-gnu/libjemalloc.so.2   # the run's allocator (harness/running/allocator.py)
# Packages the root gained after it was first made (safetensors: the safetensors route;
# torchvision: the model zoo); a root made before them gets them added here.
EXTRAS="python3-safetensors python3-torchvision"
add_extras() {
  $SUDO chroot "$ROOTFS" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $EXTRAS >/dev/null && apt-get clean"
}
if [ -f "$MARKER" ] && ! $SUDO chroot "$ROOTFS" python3 -c 'import safetensors, torchvision' 2>/dev/null; then
  log "adding $EXTRAS to the root"
  add_extras || log "could not add $EXTRAS: the 2.6 worker's safetensors and zoo cells will say unavailable"
fi
if [ -f "$MARKER" ]; then
  if [ ! -e "$ROOTFS/$JEMALLOC" ]; then  # a root made before the allocator: add it (best effort)
    log "adding libjemalloc2 to the root"
    $SUDO chroot "$ROOTFS" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libjemalloc2 >/dev/null && apt-get clean' \
      || log "could not add libjemalloc2: the 2.6 worker runs with glibc's allocator"
  fi
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq debootstrap >/dev/null
fi
mirror=$(awk '/^URIs:/{u=$2} /^Suites:/ && / bookworm( |$)/{print u; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
  mirror=$(grep -h -E '^deb [^ ]+ bookworm ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2; exit}')
fi
[ -n "$mirror" ] || { log "cannot find the bookworm mirror in /etc/apt/sources.list(.d)"; exit 1; }
rm -rf "$ROOTFS"
mkdir -p "$ROOTFS"
log "debootstrap trixie into $ROOTFS (about 25 s)"
$SUDO debootstrap --variant=minbase trixie "$ROOTFS" "$mirror" >/dev/null
log "installing python3-torch 2.6 inside (about 40 s)"
$SUDO chroot "$ROOTFS" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-torch python3-numpy libjemalloc2 '"$EXTRAS"' >/dev/null && apt-get clean'
mkdir -p "$ROOTFS/mnt/x"
$SUDO chroot "$ROOTFS" python3 -c 'import torch, numpy, safetensors, torchvision; print(torch.__version__, numpy.__version__, safetensors.__version__, torchvision.__version__)' >&2
touch "$MARKER"
log "ready"
