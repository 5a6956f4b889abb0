#!/usr/bin/env bash
# The test command: set up, build (warnings are errors), run every test with ctest.
# SANITIZE=1 builds into build-asan with ASan+UBSan and runs the same tests there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
if [ "${SANITIZE:-0}" = 1 ]; then
  export BUILD_DIR="${BUILD_DIR:-$root/build-asan}"
  # The tests run the CLI, the test binary and the decode watch's smoke run; the microbenchmarks
  # are not built here.
  # Line tables (-g1) are all the sanitizer reports need, and compile ~20% faster than -g.
  BUILD_TARGETS="dsv4 dsv4_tests dsv4_decode_watch" BUILD_TYPE=RelWithDebInfo "$root/scripts/build.sh" \
    -DDSV4_SANITIZE=ON -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
else
  export BUILD_DIR="${BUILD_DIR:-$root/build}"
  "$root/scripts/build.sh"
fi
cd "$BUILD_DIR"
ctest --output-on-failure -j"$(nproc)" ${CTEST_ARGS:-}
