#!/usr/bin/env python3
"""Unit tests of dsv4_to_gguf.py's tensor transforms (numpy only; run by tests/scripts/gguf_converter.sh)."""

import sys
import unittest
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dsv4_to_gguf as conv  # noqa: E402

E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float64)


def decode_fp4_source(packed, scale):
    """The checkpoint's layout: element 2i in the low nibble of byte i, 2i+1 in the high one."""
    rows, half = packed.shape
    codes = np.stack((packed & 0xF, packed >> 4), axis=-1).reshape(rows, half * 2)
    factors = np.repeat(np.exp2(scale.astype(np.float64) - 127), 32, axis=1)
    return E2M1[codes] * factors


def decode_block_mxfp4(raw, cols):
    """ggml's block_mxfp4, written from its definition: e (E8M0), then qs[16] with element j in the
    low nibble of qs[j] and element j + 16 in the high one; value = kvalues[code] * 2^(e - 128),
    kvalues being twice the E2M1 values."""
    rows = raw.shape[0]
    blocks = raw.reshape(rows, cols // 32, 17)
    e, qs = blocks[:, :, 0].astype(np.float64), blocks[:, :, 1:]
    codes = np.concatenate((qs & 0xF, qs >> 4), axis=-1)  # elements 0..15, then 16..31
    return ((2 * E2M1)[codes] * np.exp2(e - 128)[:, :, None]).reshape(rows, cols)


class Fp8(unittest.TestCase):
    def test_known_codes(self):
        t = conv.E4M3
        self.assertEqual(t[0x00], 0.0)
        self.assertEqual(t[0x01], 2.0 ** -9)      # smallest subnormal
        self.assertEqual(t[0x07], 7 * 2.0 ** -9)  # largest subnormal
        self.assertEqual(t[0x08], 2.0 ** -6)      # smallest normal
        self.assertEqual(t[0x38], 1.0)
        self.assertEqual(t[0x7E], 448.0)
        self.assertEqual(t[0xFE], -448.0)
        self.assertEqual(t[0xB8], -1.0)
        self.assertTrue(np.isnan(t[0x7F]) and np.isnan(t[0xFF]))

    def test_block_scales_cover_ragged_edges(self):
        rng = np.random.default_rng(3)
        w = rng.integers(0, 0x7E, size=(200, 130), dtype=np.uint8)
        s = rng.integers(120, 135, size=(2, 2), dtype=np.uint8)
        out = conv.dequant_fp8(w, s)
        for r, c in [(0, 0), (127, 127), (128, 0), (0, 128), (199, 129), (150, 5)]:
            self.assertEqual(out[r, c], conv.E4M3[w[r, c]] * 2.0 ** (int(s[r // 128, c // 128]) - 127))


    def test_every_scaled_code_is_exact_in_bf16(self):
        w = np.arange(256, dtype=np.uint8).reshape(2, 128)
        w[w == 0x7F] = 0  # NaN codes are not weights
        w[w == 0xFF] = 0
        for s in (100, 127, 160):
            f = conv.dequant_fp8(w, np.array([[s]], np.uint8))
            back = conv.bf16_to_f32(conv.f32_to_bf16_exact(f).view(np.uint16))
            np.testing.assert_array_equal(back, f)


class Mxfp4(unittest.TestCase):
    def test_repack_keeps_every_value(self):
        rng = np.random.default_rng(7)
        rows, cols = 5, 96
        packed = rng.integers(0, 256, size=(rows, cols // 2), dtype=np.uint8)
        scale = rng.integers(110, 140, size=(rows, cols // 32), dtype=np.uint8)
        raw = conv.mxfp4_blocks(packed, scale)
        self.assertEqual(raw.shape, (rows, cols // 32 * 17))
        np.testing.assert_array_equal(decode_block_mxfp4(raw, cols), decode_fp4_source(packed, scale))

    def test_wrong_scale_shape_is_named(self):
        with self.assertRaisesRegex(ValueError, "FP4 scale shape"):
            conv.mxfp4_blocks(np.zeros((2, 32), np.uint8), np.zeros((2, 3), np.uint8))


class Bf16(unittest.TestCase):
    def test_widening(self):
        bits = np.array([0x3F80, 0xC000, 0x0000, 0x7F80], dtype=np.uint16)
        np.testing.assert_array_equal(conv.bf16_to_f32(bits), np.array([1.0, -2.0, 0.0, np.inf], np.float32))


class Vocab(unittest.TestCase):
    def test_every_merge_makes_a_token(self):
        tokens, types, merges = conv.byte_vocab(1000)
        self.assertEqual(len(tokens), 1000)
        self.assertEqual(len(set(tokens)), 1000)
        self.assertEqual(types[:3], [3, 3, 1])
        known = set(tokens)
        for m in merges:
            a, b = m.split(" ")
            self.assertIn(a, known)
            self.assertIn(b, known)
            self.assertIn(a + b, known)

    def test_tokenizer_json(self):
        tok = {"model": {"type": "BPE", "vocab": {"a": 3, "b": 4, "ab": 5}, "merges": ["a b"]},
               "added_tokens": [{"id": 0, "content": "<s>", "special": True},
                                {"id": 1, "content": "</s>", "special": True},
                                {"id": 6, "content": "<tool>", "special": False}]}
        tokens, types, merges = conv.hf_bpe_vocab(tok, 8)
        self.assertEqual(tokens, ["<s>", "</s>", "[PAD2]", "a", "b", "ab", "<tool>", "[PAD7]"])
        self.assertEqual(types, [3, 3, 5, 1, 1, 1, 4, 5])
        self.assertEqual(merges, ["a b"])
        with self.assertRaisesRegex(ValueError, "vocab_size"):
            conv.hf_bpe_vocab(tok, 6)

    def test_too_large(self):
        with self.assertRaises(ValueError):
            conv.byte_vocab(2 + 256 + 256 * 256 + 1)


if __name__ == "__main__":
    unittest.main()
