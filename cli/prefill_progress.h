// Prefill progress on stderr and Ctrl-C handling shared by the commands that prefill long prompts.
// PrefillProgress::fn() is a ProgressFn: it draws a bar with tokens/s and ETA when stderr is a
// terminal (or when forced), and returns false once SIGINT was received, so the session stops
// after the current chunk and stays valid at that position.
#pragma once
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>

#include "dsv4/engine.h"

namespace dsv4::cli {

inline std::atomic<bool>& interrupted() {
  static std::atomic<bool> flag{false};
  return flag;
}

class PrefillProgress {
 public:
  // show: -1 = when stderr is a terminal, 0 = never, 1 = always (one line per update when not a tty)
  explicit PrefillProgress(int show = -1) : tty_(::isatty(2) != 0), show_(show < 0 ? tty_ : show != 0) {
    interrupted() = false;
    prev_ = std::signal(SIGINT, [](int) { interrupted() = true; });
  }
  ~PrefillProgress() {
    std::signal(SIGINT, prev_);
    if (show_ && drawn_ && tty_) std::fputc('\n', stderr);
  }
  PrefillProgress(const PrefillProgress&) = delete;
  PrefillProgress& operator=(const PrefillProgress&) = delete;

  bool cancelled() const { return interrupted(); }
  // `offset`: tokens already done before this prefill call (for resumed runs), added to the display.
  ProgressFn fn(int64_t offset = 0, int64_t grand_total = 0) {
    t0_ = std::chrono::steady_clock::now();
    return [this, offset, grand_total](int64_t done, int64_t total) {
      if (show_) draw(offset + done, grand_total > 0 ? grand_total : offset + total, done);
      return !interrupted();
    };
  }

 private:
  void draw(int64_t done, int64_t total, int64_t done_here) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double rate = s > 0 ? static_cast<double>(done_here) / s : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0.0;
    constexpr int kWidth = 30;
    const int fill = total > 0 ? static_cast<int>(kWidth * static_cast<double>(done) / static_cast<double>(total)) : 0;
    char bar[kWidth + 1];
    for (int i = 0; i < kWidth; ++i) bar[i] = i < fill ? '#' : '.';
    bar[kWidth] = '\0';
    std::fprintf(stderr, "%sprefill [%s] %lld/%lld tokens  %.0f tok/s  ETA %dm%02ds%s", tty_ ? "\r" : "", bar,
                 static_cast<long long>(done), static_cast<long long>(total), rate, static_cast<int>(eta) / 60,
                 static_cast<int>(eta) % 60, tty_ ? "" : "\n");
    std::fflush(stderr);
    drawn_ = true;
  }
  bool tty_, show_;
  bool drawn_ = false;
  void (*prev_)(int) = nullptr;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace dsv4::cli
