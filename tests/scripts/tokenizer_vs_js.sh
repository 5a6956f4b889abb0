#!/usr/bin/env bash
# Tokenizer vs the JS reference (@huggingface/tokenizers) on a generated 1.2 MB corpus:
#   bash tokenizer_vs_js.sh <dsv4-binary> <build-dir>
# Requires identical ids for every corpus record and for the whole corpus as one text, and
# decode(encode(x)) == x. Needs tests/js/node_modules (scripts/setup.sh) and the DeepSeek-V4
# tokenizer files (scripts/fetch_tokenizer.sh; run here when missing).
set -euo pipefail
dsv4="$1"
build="$2"
root="$(cd "$(dirname "$0")/../.." && pwd)"
js="$root/tests/js"
tokdir="$js/tokenizer"
work="$build/tokenizer_vs_js"
mkdir -p "$work"

fail() { echo "tokenizer_vs_js: FAIL: $*" >&2; exit 1; }
[ -d "$js/node_modules/@huggingface/tokenizers" ] ||
  fail "$js/node_modules/@huggingface/tokenizers missing (run scripts/setup.sh)"
if [ ! -f "$tokdir/tokenizer.json" ]; then
  "$root/scripts/fetch_tokenizer.sh" "$tokdir" || fail "cannot fetch the tokenizer (scripts/fetch_tokenizer.sh)"
fi

node "$js/make_corpus.mjs" "$work/corpus"
node "$js/encode_reference.mjs" "$tokdir" "$work/corpus.jsonl" "$work/ref.ids"
node "$js/encode_reference.mjs" "$tokdir" --whole "$work/corpus.txt" "$work/ref_whole.ids"
"$dsv4" tokenize --model "$tokdir" --file "$work/corpus.jsonl" --jsonl --check-roundtrip >"$work/ours.ids" ||
  fail "dsv4 tokenize --jsonl failed (see above)"
"$dsv4" tokenize --model "$tokdir" --file "$work/corpus.txt" --ids --check-roundtrip >"$work/ours_whole.ids" ||
  fail "dsv4 tokenize --ids failed (see above)"

if ! cmp -s "$work/ref.ids" "$work/ours.ids"; then
  node "$js/report_mismatch.mjs" "$work/corpus.jsonl" "$work/ref.ids" "$work/ours.ids" >&2 || true
  fail "ids differ from the JS reference (files in $work)"
fi
cmp -s "$work/ref_whole.ids" "$work/ours_whole.ids" || fail "whole-corpus ids differ from the JS reference ($work)"
records=$(wc -l <"$work/ref.ids")
tokens=$(wc -w <"$work/ref_whole.ids")
echo "tokenizer_vs_js: OK ($records records, $tokens tokens identical, round trip exact)"
