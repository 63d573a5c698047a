#!/usr/bin/env bash
# Install the system packages the project needs, only where they are missing (Debian/Ubuntu).
#   scripts/setup_system.sh          Graphviz `dot` (diagram layout and SVG/PNG/PDF export)
#   scripts/setup_system.sh --test   also Chromium (the real-browser test)
set -euo pipefail
need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
if [[ "${1:-}" == "--test" ]]; then
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
fi
[[ ${#need[@]} -eq 0 ]] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Please install: ${need[*]} (no apt-get on this system)" >&2
  exit 1
fi
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
echo "Installing system packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" fonts-dejavu-core >/dev/null
