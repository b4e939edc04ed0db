#include "bounded_task_queue.h"

#include <algorithm>

namespace qtx::host {

BoundedTaskQueue::BoundedTaskQueue(std::size_t threads, std::size_t max_waiting)
    : max_waiting_(std::max<std::size_t>(max_waiting, 1)) {
  for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i) threads_.emplace_back([this] { work(); });
}

BoundedTaskQueue::~BoundedTaskQueue() { shutdown(); }

void BoundedTaskQueue::enqueue(std::function<void()> fn) {
  std::unique_lock<std::mutex> lock(mutex_);
  ++blocked_;
  has_room_.wait(lock, [this] { return jobs_.size() < max_waiting_ || shutting_down_; });
  --blocked_;
  jobs_.push_back(std::move(fn));
  max_seen_ = std::max(max_seen_, jobs_.size());
  has_job_.notify_one();
}

void BoundedTaskQueue::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shutting_down_ && threads_.empty()) return;
    shutting_down_ = true;
  }
  has_job_.notify_all();
  has_room_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void BoundedTaskQueue::work() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      has_job_.wait(lock, [this] { return !jobs_.empty() || shutting_down_; });
      if (jobs_.empty()) return;  // shutting down with nothing left to run
      job = std::move(jobs_.front());
      jobs_.pop_front();
      has_room_.notify_one();
    }
    job();
  }
}

std::size_t BoundedTaskQueue::waiting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return jobs_.size();
}

std::size_t BoundedTaskQueue::blocked_enqueues() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return blocked_;
}

std::size_t BoundedTaskQueue::max_waiting_seen() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return max_seen_;
}

}  // namespace qtx::host
