#!/usr/bin/env bash
# GPU check: configures and builds the CUDA build (Release, -DENGINE_CUDA=ON), prints nvidia-smi, runs the whole
# CTest suite (CPU and CUDA tests; the CUDA parity table is collected), the CUDA kernel tests under
# compute-sanitizer memcheck, and apps/bench_cuda, then writes a markdown report.
#
# Usage: scripts/gpu-check.sh [report.md]          (default docs/gpu-report-<date>.md; also copied to $OUT if set)
# Environment:
#   ARCH=90                CUDA architectures (default: the GPU's compute capability from nvidia-smi, else 90)
#   BUILD_DIR=build-gpu    build directory (kept between runs: a second run only rebuilds what changed)
#   STEPS="build test sanitizer bench"   steps to run now; results of earlier runs in the same BUILD_DIR are kept
#                          and every run rewrites the full report, so the steps can be split across invocations
#   JOBS=$(nproc)          build parallelism
#   BUILD_TIMEOUT=540 TEST_TIMEOUT=540 SANITIZER_TIMEOUT=300 BENCH_TIMEOUT=240   seconds per step; a timed-out build
#                          is resumed incrementally by the next run. With a 10-minute limit per command, run
#                          STEPS=build (repeat until "build ok"), then STEPS=test, then STEPS="sanitizer bench".
# Never stops at the first failure: every step records its status and log tail in the report. Exit status 0 only
# when every step that ran passed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATE=$(date -u +%Y-%m-%d)
REPORT=${1:-docs/gpu-report-$DATE.md}
BUILD=${BUILD_DIR:-build-gpu}
STEPS=${STEPS:-build test sanitizer bench}
JOBS=${JOBS:-$(nproc)}
STATE=$BUILD/gpu-check
mkdir -p "$STATE" "$(dirname "$REPORT")"
export PATH=$PATH:/usr/local/cuda/bin
FAILED=0

log() { printf '\n=== %s ===\n' "$*"; }
# record STEP STATUS: the status line of a step, kept for later runs' reports.
record() { echo "$2" > "$STATE/$1.status"; [ "$2" = ok ] || FAILED=1; }
tail_block() { [ -f "$1" ] || return 0; echo '```'; tail -n "${2:-40}" "$1" 2>/dev/null; echo '```'; }

# ---------------------------------------------------------------- environment and dependencies
log "environment"
nvidia-smi || echo "nvidia-smi not available"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
ARCH=${ARCH:-${CAP:-90}}
NVCC=$(command -v nvcc || true)
CUDA_VERSION=$([ -n "$NVCC" ] && "$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
{
  echo "| item | value |"
  echo "|---|---|"
  echo "| date (UTC) | $(date -u '+%Y-%m-%d %H:%M') |"
  echo "| host | $(hostname) , $(nproc) cores |"
  echo "| GPU | ${GPU:-none detected} |"
  echo "| driver | ${DRIVER:-n/a} |"
  echo "| CUDA toolkit (nvcc) | ${CUDA_VERSION:-nvcc not found} |"
  echo "| architectures built | $ARCH |"
  echo "| commit | $(git rev-parse --short HEAD 2>/dev/null) $(git diff --quiet 2>/dev/null || echo '(dirty)') |"
  echo "| compilers | $(g++ --version | head -1); cmake $(cmake --version | head -1 | awk '{print $3}') |"
} > "$STATE/env.md"
nvidia-smi > "$STATE/nvidia-smi.txt" 2>&1 || true

log "dependencies"
missing=()
for tool in cmake g++ make nvcc nvidia-smi; do command -v "$tool" > /dev/null || missing+=("program $tool"); done
for hdr in eigen3/Eigen/Core fmt/format.h nlohmann/json.hpp doctest/doctest.h zlib.h CLI/CLI.hpp; do
  [ -e "/usr/include/$hdr" ] || [ -e "/usr/local/include/$hdr" ] || [ -e "${CMAKE_PREFIX_PATH:-/nonexistent}/include/$hdr" ] ||
    missing+=("header $hdr")
done
CUDA_INC=$([ -n "$NVCC" ] && echo "$(dirname "$NVCC")/../include")
[ -e "${CUDA_INC:-/nonexistent}/cublas_v2.h" ] || [ -e /usr/include/cublas_v2.h ] || missing+=("cuBLAS headers")
if [ ${#missing[@]} -gt 0 ]; then
  echo "MISSING: ${missing[*]}"
  echo "(Debian: apt-get install cmake g++ libeigen3-dev libfmt-dev nlohmann-json3-dev doctest-dev zlib1g-dev libcli11-dev;"
  echo " CUDA toolkit with cuBLAS under /usr/local/cuda)"
  printf -- '- MISSING: %s\n' "${missing[@]}" > "$STATE/deps.md"
  record deps missing
else
  echo "all dependencies found"
  echo "all found (cmake, g++, nvcc, nvidia-smi, Eigen3, fmt, nlohmann-json, doctest, zlib, CLI11, cuBLAS)" > "$STATE/deps.md"
  record deps ok
fi

# ---------------------------------------------------------------- steps
step_build() {
  log "configure + build ($BUILD, arch $ARCH, -j$JOBS)"
  if cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DENGINE_CUDA=ON -DENGINE_CUDA_ARCHITECTURES="$ARCH" \
       > "$STATE/configure.log" 2>&1; then
    # -k: build every target that can be built, so one broken file still leaves the other tests runnable
    timeout "${BUILD_TIMEOUT:-540}" cmake --build "$BUILD" -j "$JOBS" -- -k > "$STATE/build.log" 2>&1
    local rc=$?
    grep -E "warning|error" "$STATE/build.log" | grep -v "^make" | sort -u | head -50 > "$STATE/build-diagnostics.txt"
    grep -E "undefined reference to .engine::cuda::" "$STATE/build.log" | sed 's/.*undefined reference to .//; s/.$//' |
      sort -u > "$STATE/missing-cuda-symbols.txt"
    [ $rc -eq 0 ] && record build ok || record build "FAILED (exit $rc; 124 = timed out, run STEPS=build again)"
  else
    record build "FAILED (configure)"
    cp "$STATE/configure.log" "$STATE/build.log"
  fi
  tail -5 "$STATE/build.log"
}

step_test() {
  log "ctest (whole suite)"
  rm -f "$STATE/parity.md"
  (cd "$BUILD" && ENGINE_PARITY_REPORT="$ROOT/$STATE/parity.md" timeout "${TEST_TIMEOUT:-540}" \
     ctest --output-on-failure --timeout 400 -j 1) > "$STATE/ctest.log" 2>&1
  local rc=$?
  tail -25 "$STATE/ctest.log"
  [ $rc -eq 0 ] && record test ok || record test "FAILED (exit $rc)"
  # the CUDA suite once more, verbose, so the report has its per-case summary and any skip notice
  (cd "$BUILD" && timeout 120 ./tests/cuda_tests) > "$STATE/cuda-tests.log" 2>&1
}

step_sanitizer() {
  log "compute-sanitizer memcheck (the whole CUDA test suite)"
  local cs
  cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  if [ ! -x "$cs" ]; then
    echo "compute-sanitizer not found" > "$STATE/sanitizer.log"
    record sanitizer "skipped (compute-sanitizer not found)"
    return
  fi
  timeout "${SANITIZER_TIMEOUT:-300}" "$cs" --tool memcheck --leak-check no --error-exitcode 9 \
    "$BUILD/tests/cuda_tests" > "$STATE/sanitizer.log" 2>&1
  local rc=$?
  tail -8 "$STATE/sanitizer.log"
  [ $rc -eq 0 ] && record sanitizer ok || record sanitizer "FAILED (exit $rc; 9 = memcheck errors, 124 = timeout)"
}

step_bench() {
  log "bench_cuda"
  timeout "${BENCH_TIMEOUT:-240}" "$BUILD/apps/bench_cuda" > "$STATE/bench.log" 2>&1
  local rc=$?
  cat "$STATE/bench.log"
  [ $rc -eq 0 ] && record bench ok || record bench "FAILED (exit $rc)"
}

for s in $STEPS; do
  case $s in
    build | test | sanitizer | bench) "step_$s" ;;
    *) echo "unknown step '$s' (build, test, sanitizer, bench)"; FAILED=1 ;;
  esac
done

# ---------------------------------------------------------------- report (from every step recorded so far)
status() { cat "$STATE/$1.status" 2>/dev/null || echo "not run"; }
{
  echo "# GPU check report ($DATE)"
  echo
  echo "Generated by scripts/gpu-check.sh (build dir \`$BUILD\`)."
  echo
  echo "## Environment"
  cat "$STATE/env.md"
  echo
  echo "Dependencies: $(cat "$STATE/deps.md" 2>/dev/null)"
  echo
  echo '```'
  cat "$STATE/nvidia-smi.txt"
  echo '```'
  echo
  echo "## Summary"
  echo "| step | status |"
  echo "|---|---|"
  for s in deps build test sanitizer bench; do echo "| $s | $(status $s) |"; done
  echo
  echo "## Build"
  if [ -s "$STATE/missing-cuda-symbols.txt" ]; then
    echo "Missing engine::cuda symbols (kernels not landed):"
    sed 's/^/- `/; s/$/`/' "$STATE/missing-cuda-symbols.txt"
  fi
  if [ -s "$STATE/build-diagnostics.txt" ]; then
    echo "Compiler diagnostics (unique, first 50):"
    tail_block "$STATE/build-diagnostics.txt" 50
  fi
  [ "$(status build)" = ok ] || tail_block "$STATE/build.log" 40
  echo
  echo "## Tests (ctest)"
  if [ -f "$STATE/ctest.log" ]; then
    grep -E "tests passed|tests failed|Total Test time" "$STATE/ctest.log"
    echo
    grep -E "^\s*[0-9]+/[0-9]+ Test" "$STATE/ctest.log" | sed 's/^/    /'
    echo
    if grep -q "SKIPPED: no CUDA device" "$STATE/ctest.log" "$STATE/cuda-tests.log" 2>/dev/null; then
      echo "**WARNING: the CUDA tests skipped (no CUDA device visible to the test process).**"
    fi
    echo "CUDA suite: $(grep -E '^\[doctest\] (test cases|assertions)' "$STATE/cuda-tests.log" 2>/dev/null | tr '\n' ' ')"
    if [ "$(status test)" != ok ]; then
      echo
      echo "Failures (last 120 lines of ctest output):"
      tail_block "$STATE/ctest.log" 120
    fi
  fi
  echo
  echo "## CPU-vs-CUDA parity (relative RMS error of every compared output and gradient)"
  if [ -f "$STATE/parity.md" ]; then
    echo "$(grep -c '| ok |' "$STATE/parity.md") ok, $(grep -c 'FAIL' "$STATE/parity.md") failed."
    echo
    grep FAIL "$STATE/parity.md" | head -50 | sed '1i| failed check | rel. RMS | max abs | status |\n|---|---|---|---|'
    echo
    echo "<details><summary>all parity checks</summary>"
    echo
    cat "$STATE/parity.md"
    echo
    echo "</details>"
  else
    echo "(no parity table: the CUDA tests did not run)"
  fi
  echo
  echo "## compute-sanitizer memcheck"
  [ -f "$STATE/sanitizer.log" ] && tail_block "$STATE/sanitizer.log" 15
  echo
  echo "## Benchmark (apps/bench_cuda)"
  [ -f "$STATE/bench.log" ] && cat "$STATE/bench.log"
} > "$REPORT"

echo
echo "report written to $REPORT"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT" && cp "$REPORT" "$OUT/" && cp -r "$STATE" "$OUT/gpu-check-logs" && echo "copied to $OUT"
fi
exit $FAILED
