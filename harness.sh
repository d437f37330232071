#!/usr/bin/env bash
# The README's two commands:
#   ./harness.sh matrix [run options]   set up, then run the matrix -> reports/<run>/
#   ./harness.sh test   [pytest args]   set up, then run the test suite (tox)
set -euo pipefail
cd "$(dirname "$0")"
what=${1:-}
shift || true
case "$what" in
  matrix) bash scripts/setup.sh; bash scripts/setup-pytorch26.sh || echo "[harness] PyTorch 2.6 root not made: its cells will say unavailable" >&2; exec /usr/bin/python3 -m harness run "$@" ;;
  test)   bash scripts/setup.sh; exec tox -q -- "$@" ;;
  *) echo "usage: ./harness.sh matrix|test [args]" >&2; exit 2 ;;
esac
