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
  }
  // A closed link has cancelled its socket and timers; once their aborted
  // handlers ran (releasing the references they hold) and the work guard
  // is gone, run() returns by itself.
  work_.reset();
  thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  links_.clear();
}

void IoThread::add(const std::shared_ptr<Link>& link) {
  std::lock_guard<std::mutex> lock(mu_);
  links_.push_back(link);
}

void IoThread::remove(const Link* link) {
  std::lock_guard<std::mutex> lock(mu_);
  links_.erase(std::remove_if(links_.begin(), links_.end(), [link](const auto& l) { return l.get() == link; }),
               links_.end());
}

std::vector<std::shared_ptr<Link>> IoThread::links() const {
  std::lock_guard<std::mutex> lock(mu_);
  return links_;
}

}  // namespace qtx::host::detail
