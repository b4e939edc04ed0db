#include "io_thread.h"

#include <asio/post.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <future>

#include "link.h"

namespace qtx::host::detail {

IoThread::IoThread()
    : work_(asio::make_work_guard(io_)), read_buffer_(new char[kReadBufferSize]), rng_(std::random_device{}()) {
  std::promise<void> started;
  auto ready = started.get_future();
  thread_ = std::thread([this, &started] {
    thread_id_ = std::this_thread::get_id();
    started.set_value();
    run();
  });
  ready.wait();
}

IoThread::~IoThread() {
  // Reached only after shutdown() (the Manager calls it) or from the last
  // Link dropped after that; the thread is joined by then.
  if (thread_.joinable() && !on_thread()) shutdown();
}

void IoThread::run() {
  // Nothing a peer sends may stop this loop. A caller's callback cannot
  // throw through to here (Link catches at each call into user code); an
  // allocation failure can, and is reported while the loop goes on.
  for (;;) {
    try {
      io_.run();
      return;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "libqtx-host: exception on the I/O thread: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "libqtx-host: unknown exception on the I/O thread\n");
    }
  }
}

void IoThread::shutdown() {
  if (!thread_.joinable()) return;
  for (auto& link : links()) link->close();
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    stopped_.store(true);
    // Every link is closed and its calls ended; a deadline timer may still
    // wait for a head that is gone. Its wait would keep run() from ending.
    asio::post(io_, [this] {
      draining_ = true;
      for (auto& item : deadlines_) item.second->timer.cancel();
    });
  }
  // A closed link has cancelled its socket and timers; once their aborted
  // handlers ran (releasing the references they hold) and the work guard
  // is gone, run() returns by itself.
  work_.reset();
  thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  links_.clear();
  by_path_.clear();
}

void Deadline::clear() {
  if (list_ == nullptr) return;
  DeadlineList* list = list_;
  (prev_ ? prev_->next_ : list->head) = next_;
  (next_ ? next_->prev_ : list->tail) = prev_;
  prev_ = next_ = nullptr;
  list_ = nullptr;
  // The last deadline of its duration gone. A few such lists stay, their
  // timer armed for a head that left (it fires early, finds nothing and the
  // handler removes the list): the durations a program uses over and over
  // cost no timer operation per call. Beyond those the timer is cancelled
  // at once, so that durations used once (a caller whose every call has its
  // own remaining time) do not pile up.
  if (list->head == nullptr && list->armed && list->owner->deadlines_.size() > IoThread::kIdleDeadlineLists) {
    list->timer.cancel();
  }
}

void IoThread::set_deadline(Deadline& d, std::chrono::milliseconds timeout, Link* link, std::uint64_t call) {
  auto& slot = deadlines_[timeout];
  if (!slot) slot = std::make_unique<DeadlineList>(io_, timeout, this);
  DeadlineList& list = *slot;
  d.clear();
  d.list_ = &list;
  d.at_ = std::chrono::steady_clock::now() + timeout;
  d.link_ = link;
  d.call_ = call;
  d.prev_ = list.tail;
  (list.tail ? list.tail->next_ : list.head) = &d;
  list.tail = &d;
  // An armed timer waits for a deadline no later than the head's (heads
  // only move later); it re-arms when it fires early.
  if (!list.armed) arm(list);
}

void IoThread::arm(DeadlineList& list) {
  list.armed = true;
  const std::uint64_t gen = ++list.gen;
  list.timer.expires_at(list.head->at_);
  list.timer.async_wait([this, &list, gen](const asio::error_code& ec) {
    if (gen != list.gen) return;  // a later wait replaced this one
    list.armed = false;
    if (!ec) {
      expire(list);
    } else if (list.head != nullptr && !draining_) {
      arm(list);  // cancelled when it emptied; set again since
    }
    if (list.head == nullptr && !list.armed) deadlines_.erase(list.timeout);  // destroys `list`: last use
  });
}

void IoThread::expire(DeadlineList& list) {
  const auto now = std::chrono::steady_clock::now();
  while (list.head != nullptr && list.head->at_ <= now) {
    Deadline& d = *list.head;
    const std::uint64_t call = d.call_;
    // The call's entry owns `d`; its link is alive while `d` is set. Kept
    // alive through on_deadline, which runs user code.
    auto link = d.link_->shared_from_this();
    d.clear();
    link->on_deadline(call, list.timeout);
  }
  if (list.head != nullptr && !list.armed) arm(list);
}

void IoThread::add(const std::shared_ptr<Link>& link) {
  std::lock_guard<std::mutex> lock(mu_);
  links_.push_back(link);
  if (link->endpoint().kind != Endpoint::Kind::kAdopt) by_path_[link->endpoint().path] = link.get();
}

void IoThread::remove(const Link* link) {
  std::lock_guard<std::mutex> lock(mu_);
  if (link->endpoint().kind != Endpoint::Kind::kAdopt) {
    // A new link may hold the path already (its owner lock was released
    // before this link left the registry): remove only this one's entry.
    auto it = by_path_.find(link->endpoint().path);
    if (it != by_path_.end() && it->second == link) by_path_.erase(it);
  }
  links_.erase(std::remove_if(links_.begin(), links_.end(), [link](const auto& l) { return l.get() == link; }),
               links_.end());
}

std::shared_ptr<Link> IoThread::find(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_path_.find(path);
  return it == by_path_.end() ? nullptr : it->second->shared_from_this();
}

std::size_t IoThread::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return links_.size();
}

std::vector<std::shared_ptr<Link>> IoThread::links() const {
  std::lock_guard<std::mutex> lock(mu_);
  return links_;
}

}  // namespace qtx::host::detail
