#!/usr/bin/env bash
# The main job: install dependencies, build, simulate TrackML events, train hmambav2 on them, run inference on a
# held-out event. Usage: scripts/main-job.sh [work-dir]   (default: runs/main-job)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-runs/main-job}
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
mkdir -p "$WORK"
build/apps/simulate --events 12 --out "$WORK/events" --seed 1
for app in train infer; do
  if [[ ! -x build/apps/$app ]]; then
    echo "main-job: build/apps/$app does not exist yet: the tracking models and programs (issue 7) are not built." >&2
    exit 2
  fi
done
build/apps/train --model hmambav2 --data "$WORK/events" --out "$WORK/run" --seed 1
build/apps/infer --checkpoint "$WORK/run/best.safetensors" --event "$WORK/events/event000000012"
