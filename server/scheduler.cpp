#include "scheduler.h"

#include "core/error.h"

namespace dsv4::server {

std::vector<JobEvent> Job::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return !events_.empty(); });
  std::vector<JobEvent> out(std::make_move_iterator(events_.begin()),
                            std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

void Job::post(JobEvent e) {
  {
    std::lock_guard lk(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

Scheduler::Scheduler(Engine& engine, const Tokenizer& tok, SchedulerOptions opts)
    : engine_(engine), tok_(tok), opts_(opts), vocab_size_(engine.info().vocab_size) {
  if (opts_.parallel < 1) throw_error("serve: --parallel must be >= 1, got ", opts_.parallel);
  if (opts_.max_context < 2) throw_error("serve: --ctx must be >= 2, got ", opts_.max_context);
  SessionOptions so;
  so.max_context = opts_.max_context;
  so.mem_limit = opts_.mem_limit;
  so.prefill_chunk = opts_.forward_rows;
  slots_.resize(static_cast<size_t>(opts_.parallel));
  for (auto& s : slots_) s.session = engine_.new_session(so);
  worker_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

std::shared_ptr<Job> Scheduler::submit(std::vector<int32_t> prompt, GenerateOptions options) {
  auto job = std::make_shared<Job>(std::move(prompt), std::move(options));
  {
    std::lock_guard lk(mu_);
    if (stop_ || queue_.size() >= opts_.max_queue) return nullptr;
    queue_.push_back(job);
  }
  cv_.notify_all();
  return job;
}

SchedulerStats Scheduler::stats() {
  std::lock_guard lk(mu_);
  return {active_, queue_.size(), completed_};
}

void Scheduler::release(Slot& s) {
  s.gen.reset();
  s.job.reset();
  std::lock_guard lk(mu_);
  --active_;
  ++completed_;
}

void Scheduler::admit(std::vector<std::shared_ptr<Job>>& incoming) {
  for (auto& job : incoming) {
    if (job->cancelled()) {
      JobEvent e;
      e.kind = JobEvent::Kind::Done;
      e.finish = FinishReason::Cancelled;
      job->post(std::move(e));
      std::lock_guard lk(mu_);
      ++completed_;
      continue;
    }
    // The free slot that already holds the longest prefix of this prompt; without one, an empty
    // slot, else the least recently used (its cached conversation is the least likely to return).
    Slot* best = nullptr;
    int64_t best_reuse = -1;
    auto better = [](const Slot& a, int64_t reuse_a, const Slot& b, int64_t reuse_b) {
      if (reuse_a != reuse_b) return reuse_a > reuse_b;
      const bool empty_a = a.session->position() == 0, empty_b = b.session->position() == 0;
      if (empty_a != empty_b) return empty_a;
      return a.last_used < b.last_used;
    };
    for (auto& s : slots_) {
      if (s.gen) continue;
      int64_t reuse = Generation::reusable_prefix(*s.session, job->prompt_);
      if (job->options_.min_reuse <= 0 || reuse < job->options_.min_reuse) reuse = 0;
      if (!best || better(s, reuse, *best, best_reuse)) {
        best = &s;
        best_reuse = reuse;
      }
    }
    if (!best) throw_error("scheduler: no free slot for an admitted job (internal error)");
    GenerateOptions o = job->options_;
    o.cancel = &job->cancelled_;
    o.prefill_chunk = opts_.prefill_chunk;
    try {
      best->gen = std::make_unique<Generation>(*best->session, tok_, job->prompt_, std::move(o),
                                               opts_.max_context, vocab_size_);
      best->job = job;
      best->last_used = ++admissions_;
      std::lock_guard lk(mu_);
      ++active_;
    } catch (const std::exception& ex) {
      JobEvent e;
      e.kind = JobEvent::Kind::Error;
      e.error = ex.what();
      job->post(std::move(e));
      std::lock_guard lk(mu_);
      ++completed_;
    }
  }
  incoming.clear();
}

void Scheduler::step(Slot& s) {
  StepResult r;
  try {
    r = s.gen->step();
  } catch (const std::exception& ex) {
    JobEvent e;
    e.kind = JobEvent::Kind::Error;
    e.error = ex.what();
    s.job->post(std::move(e));
    s.session->reset();
    release(s);
    return;
  }
  if (!r.text.empty()) {
    JobEvent e;
    e.text = std::move(r.text);
    s.job->post(std::move(e));
  }
  if (r.finished) {
    JobEvent e;
    e.kind = JobEvent::Kind::Done;
    e.finish = s.gen->finish_reason();
    e.stats = s.gen->stats();
    s.job->post(std::move(e));
    release(s);
  }
}

void Scheduler::run() {
  std::vector<std::shared_ptr<Job>> incoming;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || active_ > 0 || !queue_.empty(); });
      if (stop_) break;
      while (!queue_.empty() && active_ + incoming.size() < slots_.size()) {
        incoming.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    admit(incoming);
    for (auto& s : slots_)
      if (s.gen) step(s);
  }
  // Shutting down: nobody will generate for these jobs any more.
  auto abandon = [](const std::shared_ptr<Job>& job) {
    JobEvent e;
    e.kind = JobEvent::Kind::Error;
    e.error = "the server is shutting down";
    job->post(std::move(e));
  };
  for (auto& s : slots_)
    if (s.job) abandon(s.job);
  std::lock_guard lk(mu_);
  for (auto& job : queue_) abandon(job);
  queue_.clear();
}

}  // namespace dsv4::server
