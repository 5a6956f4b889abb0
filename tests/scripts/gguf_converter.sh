#!/usr/bin/env bash
# The tensor transforms of scripts/llamacpp/dsv4_to_gguf.py (the GGUF writer for the llama.cpp
# side-by-side): FP8 decode and block scales, FP4 -> ggml MXFP4 repacking, BF16 widening, vocab.
# Usage: gguf_converter.sh <dsv4> <build-dir>   (arguments unused)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
py=python3
$py -c 'import numpy' 2>/dev/null || py=/usr/bin/python3
exec "$py" "$root/scripts/llamacpp/test_dsv4_to_gguf.py" -v
