// Runs build/bin/qtx-agent as a child process with a config file, for
// integration tests. The agent connects to a HostListener (unix-connect).
#pragma once

#include <sys/types.h>

#include <string>

namespace qtx::testing {

// Whether this build runs under AddressSanitizer (gcc and clang say so
// differently). RSS bounds hold only without it (or ThreadSanitizer), whose
// shadow memory and quarantine inflate RSS; under ASan, LeakSanitizer checks the agent at exit
// instead (and the fixtures require exit status 0). Likewise whether it runs
// under ThreadSanitizer, for tests that sample instead of sweeping there.
#if defined(__has_feature)
#define QTX_TEST_HAS_FEATURE(x) __has_feature(x)
#else
#define QTX_TEST_HAS_FEATURE(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || QTX_TEST_HAS_FEATURE(address_sanitizer)
inline constexpr bool kUnderAsan = true;
#else
inline constexpr bool kUnderAsan = false;
#endif
#if defined(__SANITIZE_THREAD__) || QTX_TEST_HAS_FEATURE(thread_sanitizer)
inline constexpr bool kUnderTsan = true;
#else
inline constexpr bool kUnderTsan = false;
#endif
inline constexpr bool kUnderSanitizer = kUnderAsan || kUnderTsan;
inline constexpr bool kRssIsMeaningful = !kUnderSanitizer;

class AgentProcess {
 public:
  // `config_toml` is written to a temporary file; the transport is
  // unix-connect:`socket_path`, or `socket_path` itself when it is a
  // transport spec ("unix-listen:PATH", "unix-connect:PATH"). Extra environment can be given as "K=V".
  // With `own_uts_namespace` (root only) the agent gets a private hostname,
  // so hostname tests cannot change the machine's.
  AgentProcess(const std::string& socket_path, const std::string& config_toml, const std::string& log_level = "debug",
               bool own_uts_namespace = false);
  ~AgentProcess();

  pid_t pid() const { return pid_; }
  // Sends `sig` and waits for exit; returns the exit status as from waitpid
  // (or -1 if it did not exit within `timeout_ms`, after which it is killed).
  int signal_and_wait(int sig, int timeout_ms = 10000);
  // Waits for exit without signalling.
  int wait_exit(int timeout_ms);
  bool running();

  int open_fds() const;              // entries in /proc/PID/fd
  std::string describe_fds() const;  // "fd -> target" lines, for failure messages
  long rss_kib() const;              // VmRSS
  std::string log() const;           // what the agent wrote to stderr so far
  std::string config_path() const { return dir_ + "/agent.conf"; }

  // $QTX_AGENT_BINARY when set (say, a plain agent for tests built with a
  // sanitizer), else the build's own.
  static std::string agent_binary();

  // Waits for any child process to exit, with a deadline (through a pidfd).
  class Waiter {
   public:
    explicit Waiter(pid_t pid) : pid_(pid) {}
    // The wait status, or -1 when `timeout_ms` passed first (not reaped then).
    int wait(int timeout_ms);

   private:
    pid_t pid_;
  };

 private:
  pid_t pid_ = -1;
  std::string dir_;
  std::string log_path_;
};

}  // namespace qtx::testing
