// Byte-level BPE model (spec 8.4): a vocabulary of byte-level strings and ranked merges. Encoding
// one piece starts from one symbol per byte and repeatedly merges the adjacent pair of lowest rank
// (leftmost first among equal ranks) until no adjacent pair has a merge.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dsv4::text {

// Open-addressing map from a symbol pair to its merge (rank and resulting id).
class MergeTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  void reserve(size_t n);
  // Returns false if the pair was already present (the first, lower rank, is kept).
  bool insert(int32_t left, int32_t right, Merge m);
  const Merge* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.merge;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge{};
  };
  static uint64_t pack(int32_t l, int32_t r) {
    return (uint64_t(uint32_t(l)) << 32) | uint32_t(r);
  }
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return size_t(k);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
};

class BpeModel {
 public:
  // `vocab` maps byte-level strings to ids; `merges` are (left, right) strings in rank order.
  // `origin` names the file in errors (unknown symbols, missing byte symbols, duplicate ids).
  BpeModel(std::unordered_map<std::string, int32_t> vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
           const std::string& origin);

  // Working buffers of one caller.
  struct Scratch {
    struct Sym {
      int32_t id, prev, next;
    };
    std::vector<Sym> syms;
    // Min-heap of candidate merges, each (rank << 32 | position of the left symbol): lowest rank
    // first, leftmost first among equal ranks. Entries go stale when a symbol changes; they are
    // recognised on pop because the pair at that position no longer has that rank.
    std::vector<uint64_t> heap;
  };

  // Appends the ids of one piece of raw bytes to `out`.
  void encode_piece(std::string_view bytes, std::vector<int32_t>& out, Scratch& scratch) const;

  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }
  size_t merge_count() const { return merges_.size(); }

 private:
  void add_candidate(int32_t pos, Scratch& s) const;
  std::unordered_map<std::string, int32_t> vocab_;
  MergeTable merges_;
  int32_t byte_id_[256];
  bool ignore_merges_;
};

}  // namespace dsv4::text
