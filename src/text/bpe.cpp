#include "text/bpe.h"

#include <algorithm>
#include <functional>

#include "core/error.h"
#include "text/byte_level.h"

namespace dsv4::text {

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  size_ = 0;
  for (const Slot& s : old)
    if (s.key != kEmpty) insert(int32_t(s.key >> 32), int32_t(uint32_t(s.key)), s.merge);
}

bool MergeTable::insert(int32_t left, int32_t right, Merge m) {
  if ((size_ + 1) * 2 > slots_.size()) reserve(std::max<size_t>(size_ + 1, 8) * 2);
  const uint64_t key = pack(left, right);
  for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == key) return false;
    if (s.key == kEmpty) {
      s.key = key;
      s.merge = m;
      ++size_;
      return true;
    }
  }
}

BpeModel::BpeModel(std::unordered_map<std::string, int32_t> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
                   const std::string& origin)
    : vocab_(std::move(vocab)), ignore_merges_(ignore_merges) {
  for (int b = 0; b < 256; ++b) {
    const std::string sym = bytes_to_byte_level(std::string(1, char(b)));
    const auto it = vocab_.find(sym);
    if (it == vocab_.end())
      throw_error(origin, ": model.vocab lacks the byte-level symbol \"", sym, "\" of byte ", b,
                  " (only byte-level BPE vocabularies are supported)");
    byte_id_[b] = it->second;
  }
  merges_.reserve(merges.size());
  std::string joined;
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [l, rt] = merges[r];
    const auto li = vocab_.find(l), ri = vocab_.find(rt);
    if (li == vocab_.end() || ri == vocab_.end())
      throw_error(origin, ": model.merges[", r, "] (\"", l, "\", \"", rt, "\") refers to unknown symbol \"",
                  li == vocab_.end() ? l : rt, "\"");
    joined.assign(l).append(rt);
    const auto ji = vocab_.find(joined);
    if (ji == vocab_.end())
      throw_error(origin, ": model.merges[", r, "]: the merged symbol \"", joined, "\" is not in model.vocab");
    merges_.insert(li->second, ri->second, {int32_t(r), ji->second});  // duplicates: first rank wins
  }
}

void BpeModel::add_candidate(int32_t pos, Scratch& s) const {
  const int32_t nx = s.syms[pos].next;
  if (nx < 0) return;
  const MergeTable::Merge* m = merges_.find(s.syms[pos].id, s.syms[nx].id);
  if (!m) return;
  s.heap.push_back((uint64_t(uint32_t(m->rank)) << 32) | uint32_t(pos));
  std::push_heap(s.heap.begin(), s.heap.end(), std::greater<uint64_t>());
}

void BpeModel::encode_piece(std::string_view bytes, std::vector<int32_t>& out, Scratch& s) const {
  const size_t n = bytes.size();
  if (n == 0) return;
  if (n == 1) {
    out.push_back(byte_id_[uint8_t(bytes[0])]);
    return;
  }
  if (ignore_merges_) {
    const auto it = vocab_.find(bytes_to_byte_level(bytes));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  s.syms.resize(n);
  for (size_t i = 0; i < n; ++i)
    s.syms[i] = {byte_id_[uint8_t(bytes[i])], int32_t(i) - 1, i + 1 < n ? int32_t(i + 1) : -1};
  s.heap.clear();
  for (size_t i = 0; i + 1 < n; ++i) {
    if (const MergeTable::Merge* m = merges_.find(s.syms[i].id, s.syms[i + 1].id))
      s.heap.push_back((uint64_t(uint32_t(m->rank)) << 32) | uint32_t(i));
  }
  std::make_heap(s.heap.begin(), s.heap.end(), std::greater<uint64_t>());
  while (!s.heap.empty()) {
    std::pop_heap(s.heap.begin(), s.heap.end(), std::greater<uint64_t>());
    const uint64_t top = s.heap.back();
    s.heap.pop_back();
    const auto pos = int32_t(uint32_t(top));
    const auto rank = int32_t(top >> 32);
    Scratch::Sym& left = s.syms[pos];
    if (left.id < 0 || left.next < 0) continue;  // merged away, or now last
    Scratch::Sym& right = s.syms[left.next];
    const MergeTable::Merge* m = merges_.find(left.id, right.id);
    if (!m || m->rank != rank) continue;  // stale: this position now holds another pair
    left.id = m->result;
    left.next = right.next;
    if (right.next >= 0) s.syms[right.next].prev = pos;
    right.id = -1;  // dead
    if (left.prev >= 0) add_candidate(left.prev, s);
    add_candidate(pos, s);
  }
  for (int32_t i = 0; i >= 0; i = s.syms[i].next) out.push_back(s.syms[i].id);
}

}  // namespace dsv4::text
