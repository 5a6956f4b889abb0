// Request queue + one worker thread that owns every engine session.
//
// HTTP threads submit a Job (prompt tokens + options) and read its events; they never touch the
// engine. The worker admits queued jobs into free session slots (preferring the slot whose
// timeline is the longest prefix of the new prompt, so a follow-up turn reuses its KV state) and
// then steps every active generation once per iteration: one prefill chunk or one token each.
// A generation's tokens depend only on its own prompt, options and seed, never on what else runs.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dsv4/engine.h"
#include "dsv4/tokenizer.h"
#include "runtime/generate.h"

namespace dsv4::server {

struct JobEvent {
  enum class Kind { Text, Done, Error };
  Kind kind = Kind::Text;
  std::string text;                          // Text: newly decoded text
  FinishReason finish = FinishReason::None;  // Done
  GenerationStats stats;                     // Done
  std::string error;                         // Error: what went wrong (the job is over)
};

// One request's mailbox: the worker pushes events, the HTTP thread pops them.
class Job {
 public:
  Job(std::vector<int32_t> prompt, GenerateOptions options)
      : prompt_(std::move(prompt)), options_(std::move(options)) {}
  // Waits up to `timeout` for events; returns what arrived (empty on timeout).
  std::vector<JobEvent> wait(std::chrono::milliseconds timeout);
  void cancel() { cancelled_.store(true); }  // client gone: the worker stops at its next step
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class Scheduler;
  void post(JobEvent e);

  std::vector<int32_t> prompt_;
  GenerateOptions options_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<JobEvent> events_;
};

struct SchedulerOptions {
  int parallel = 4;            // sessions (requests generating at the same time)
  int64_t max_context = 4096;  // tokens per session
  uint64_t mem_limit = 0;      // bytes of KV cache per session (0 = no limit)
  int64_t prefill_chunk = 0;   // prompt tokens per step; 0 = whole prompt (see GenerateOptions)
  int64_t forward_rows = SessionOptions{}.prefill_chunk;  // rows per forward call inside a step
  size_t max_queue = 256;      // waiting jobs beyond the active ones; more -> rejected
};

struct SchedulerStats {
  size_t active = 0;
  size_t queued = 0;
  uint64_t completed = 0;
};

class Scheduler {
 public:
  Scheduler(Engine& engine, const Tokenizer& tok, SchedulerOptions opts);
  ~Scheduler();  // stops the worker; unfinished jobs get an Error event
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a job; nullptr when the queue is full (the caller answers 503).
  std::shared_ptr<Job> submit(std::vector<int32_t> prompt, GenerateOptions options);
  SchedulerStats stats();
  const SchedulerOptions& options() const { return opts_; }

 private:
  struct Slot {
    std::unique_ptr<Session> session;
    std::shared_ptr<Job> job;
    std::unique_ptr<Generation> gen;
    uint64_t last_used = 0;  // admission counter value when it last took a job (LRU eviction)
  };
  void run();
  void admit(std::vector<std::shared_ptr<Job>>& incoming);
  void step(Slot& s);
  void release(Slot& s);

  Engine& engine_;
  const Tokenizer& tok_;
  SchedulerOptions opts_;
  int64_t vocab_size_;
  std::vector<Slot> slots_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stop_ = false;
  size_t active_ = 0;
  uint64_t completed_ = 0;
  uint64_t admissions_ = 0;
  std::thread worker_;
};

}  // namespace dsv4::server
