#!/usr/bin/env bash
# One finding's standalone repro(s) from the repository root (docs/findings/):
#   scripts/finding.sh SLUG [--torchsharp VERSION]     |  scripts/finding.sh all  |  scripts/finding.sh --list
# Same as `/usr/bin/python3 -m harness finding ...` (Debian's Python: the one with torch).
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 -m harness finding "$@"
