// Session state persistence and rewind (the Session::save / load / rewind / reuse_prefix
// implementation lives in session_io.cpp): model fingerprint and the KV memory check.
#pragma once
#include <cstdint>
#include <vector>

#include "format/config.h"
#include "model/weights.h"
#include "runtime/kv_budget.h"

namespace dsv4 {

// Throws a clear error when the KV cache of `context` tokens does not fit `limit` bytes
// (limit 0 = no limit). Called before anything is allocated.
void check_kv_fits(const ModelConfig& cfg, int64_t context, KvLayout layout, bool with_mtp,
                   uint64_t limit);

// Identifies a model for saved sessions: the config fields that shape the state, every tensor's
// name and shape, and a checksum of the first bytes of the embedding and head matrices (two
// checkpoints of one shape but different weights differ).
std::vector<uint8_t> model_fingerprint(const ModelWeights& w);

// "8G", "512M", "1.5T", "4096" (bytes) -> bytes; throws on anything else.
uint64_t parse_byte_size(const std::string& text);

}  // namespace dsv4
