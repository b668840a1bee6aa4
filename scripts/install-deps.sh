#!/usr/bin/env bash
# Installs the Debian packages the project builds with (run as root or with sudo). Idempotent.
set -euo pipefail
PKGS=(cmake g++ make libeigen3-dev libfmt-dev nlohmann-json3-dev doctest-dev zlib1g-dev libcli11-dev
      libnanoflann-dev libfastjet-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
echo "dependencies present: ${PKGS[*]}"
