// The metrics server's task queue: every job runs, and enqueue() holds the
// accept loop back while the queue is full instead of queueing (and holding
// a socket for) every connection a scraper opens.
#include "bounded_task_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace qtx::host {
namespace {

// Waits for a state another thread reaches (bounded, so a bug fails the
// test instead of hanging it).
template <typename Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 40000; ++i) {
    if (pred()) return true;
    std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  return pred();
}

TEST(BoundedTaskQueue, AFullQueueBlocksTheProducerAndEveryJobRunsInOrder) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::mutex m;
  std::vector<int> ran;
  auto record = [&](int n) {
    std::lock_guard<std::mutex> lock(m);
    ran.push_back(n);
  };
  BoundedTaskQueue q(1, 2);
  std::atomic<bool> first_running{false};
  q.enqueue([&] {
    first_running = true;
    released.wait();  // holds the only thread
    record(0);
  });
  ASSERT_TRUE(eventually([&] { return first_running.load(); }));
  q.enqueue([&] { record(1); });
  q.enqueue([&] { record(2); });
  EXPECT_EQ(q.waiting(), 2u);
  // A fourth connection: its producer waits for room rather than queueing.
  std::thread producer([&] { q.enqueue([&] { record(3); }); });
  ASSERT_TRUE(eventually([&] { return q.blocked_enqueues() == 1; }));
  EXPECT_EQ(q.waiting(), 2u);
  release.set_value();
  producer.join();
  q.shutdown();  // runs what still waits, then joins
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(q.max_waiting_seen(), 2u);
  EXPECT_EQ(q.blocked_enqueues(), 0u);
}

TEST(BoundedTaskQueue, ShutdownRunsTheJobsStillWaiting) {
  std::atomic<int> ran{0};
  {
    BoundedTaskQueue q(2, 8);
    for (int i = 0; i < 8; ++i) q.enqueue([&] { ran++; });
  }  // the destructor shuts down
  EXPECT_EQ(ran.load(), 8);
}

}  // namespace
}  // namespace qtx::host
