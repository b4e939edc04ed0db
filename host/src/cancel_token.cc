#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "qtx/host/agent.h"

namespace qtx::host {

// Shared by the token and its registrations, so that a registration may
// outlive the token (a call still ending when the caller lets go of it).
struct CancelToken::State {
  std::mutex mu;
  bool fired = false;
  std::uint64_t next_key = 1;
  std::unordered_map<std::uint64_t, std::function<void()>> hooks;
};

CancelToken::CancelToken() : state_(std::make_shared<State>()) {}
CancelToken::~CancelToken() = default;

std::shared_ptr<CancelToken> CancelToken::create() { return std::shared_ptr<CancelToken>(new CancelToken()); }

// The hooks run outside the lock: each posts to an I/O thread, and one may
// end its call at once on this thread, whose Registration then unregisters.
void CancelToken::fire() {
  std::unordered_map<std::uint64_t, std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->fired) return;
    state_->fired = true;
    hooks.swap(state_->hooks);
  }
  for (auto& [key, hook] : hooks) hook();
}

bool CancelToken::fired() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->fired;
}

std::unique_ptr<CancelToken::Registration> CancelToken::add(std::function<void()> on_fire) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->fired) return nullptr;
  const std::uint64_t key = state_->next_key++;
  state_->hooks.emplace(key, std::move(on_fire));
  return std::unique_ptr<Registration>(new Registration(state_, key));
}

CancelToken::Registration::Registration(std::shared_ptr<CancelToken::State> state, std::uint64_t key)
    : state_(std::move(state)), key_(key) {}

CancelToken::Registration::~Registration() {
  std::function<void()> hook;  // destroyed outside the lock
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->hooks.find(key_);
  if (it == state_->hooks.end()) return;
  hook = std::move(it->second);
  state_->hooks.erase(it);
}

}  // namespace qtx::host
