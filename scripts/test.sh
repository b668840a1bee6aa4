#!/usr/bin/env bash
# Installs dependencies, builds (CUDA code too when nvcc is found) and runs the whole test suite with CTest.
# Usage: scripts/test.sh [build-dir]   (ENGINE_SANITIZE=ON in the environment builds with ASan + UBSan)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
bash scripts/install-deps.sh
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DENGINE_SANITIZE="${ENGINE_SANITIZE:-OFF}" \
  ${ENGINE_CUDA_ARCHITECTURES:+-DENGINE_CUDA_ARCHITECTURES=$ENGINE_CUDA_ARCHITECTURES}
cmake --build "$BUILD" -j "$(nproc)"
cd "$BUILD" && ctest --output-on-failure -j 1
