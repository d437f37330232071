#!/usr/bin/env bash
# The README's two commands, and every subcommand of the harness, with Debian's interpreter
# (the python3 first on PATH may be another one, without PyTorch):
#   ./harness.sh matrix [run options]   set up, then run the matrix -> reports/<run>/
#   ./harness.sh test   [pytest args]   set up, then run the test suite (tox)
#   ./harness.sh run|diff|radar|cases|checks|finding|build-worker ... [args]
#                                       set up, then `python3 -m harness <subcommand>`
# --help / -h anywhere prints the help without setting anything up.
set -euo pipefail
cd "$(dirname "$0")"
PY=/usr/bin/python3
what=${1:-}
shift || true
for a in "$@"; do
  case "$a" in
    -h|--help)
      [ "$what" = test ] && { echo "usage: ./harness.sh test [pytest args]  (set-up, then tox: pytest and the linters)"; exit 0; }
      [ "$what" = matrix ] && what=run
      exec "$PY" -m harness "$what" --help ;;
  esac
done
case "$what" in
  matrix) bash scripts/setup.sh; bash scripts/setup-pytorch26.sh || echo "[harness] PyTorch 2.6 root not made: its cells will say unavailable" >&2; exec "$PY" -m harness run "$@" ;;
  test)   bash scripts/setup.sh; exec tox -q -- "$@" ;;
  ""|-h|--help) echo "usage: ./harness.sh matrix|test|run|diff|cases|checks|finding|build-worker [args]" >&2; exit 2 ;;
  *)      bash scripts/setup.sh; exec "$PY" -m harness "$what" "$@" ;;
esac
