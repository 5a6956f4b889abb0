#!/usr/bin/env bash
# The test command: set up, build (warnings are errors), run every test with ctest.
# SANITIZE=1 builds into build-asan with ASan+UBSan and runs the same tests there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
if [ "${SANITIZE:-0}" = 1 ]; then
  export BUILD_DIR="${BUILD_DIR:-$root/build-asan}"
  BUILD_TYPE=RelWithDebInfo "$root/scripts/build.sh" -DDSV4_SANITIZE=ON
else
  export BUILD_DIR="${BUILD_DIR:-$root/build}"
  "$root/scripts/build.sh"
fi
cd "$BUILD_DIR"
ctest --output-on-failure -j"$(nproc)" ${CTEST_ARGS:-}
