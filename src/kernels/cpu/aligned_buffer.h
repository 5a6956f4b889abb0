// Scratch vectors aligned to the 64-byte cache line, so that full-width (zmm) loads of panels and
// prepared activations never straddle two lines.
#pragma once
#include <cstddef>
#include <new>
#include <vector>

namespace dsv4::cpu {

template <class T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlign); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
};

template <class T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

// Grows `v` to at least n elements (never shrinks: no allocation once warmed up).
template <class T>
T* grow(AlignedVector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace dsv4::cpu
