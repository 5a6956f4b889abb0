// Replacement of the global operator new that counts calls. Kept in its own translation unit, away
// from inlined container code, so the compiler sees matching new/delete pairs.
#include <atomic>
#include <cstdlib>
#include <new>

#include "tests/unit/alloc_counter.h"

namespace {
std::atomic<long> g_news{0};
}

namespace dsv4::testing_support {
long allocation_count() { return g_news.load(std::memory_order_relaxed); }
}  // namespace dsv4::testing_support

void* operator new(std::size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
// The nothrow and array forms too, so every global new/delete pair goes through malloc/free
// (std::stable_sort's temporary buffer uses the nothrow form; ASan flags a mismatched pair).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_news.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
