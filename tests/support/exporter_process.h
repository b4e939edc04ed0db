// `qtx exporter` as a process for integration tests: started with its
// arguments (--listen 127.0.0.1:0 is added), its address read from the one
// line it prints on stdout, stopped with SIGTERM. Also an HTTP GET and a
// bounded poll for tests that wait on what a server shows.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace qtx::testing {

class ExporterProcess {
 public:
  // Runs `qtx_binary exporter ARGS... --listen 127.0.0.1:0`, its stderr in
  // `log_path`; port() is 0 when it did not say where it listens within 10 s.
  ExporterProcess(const std::string& qtx_binary, const std::vector<std::string>& args, const std::string& log_path);
  ~ExporterProcess();
  ExporterProcess(const ExporterProcess&) = delete;
  ExporterProcess& operator=(const ExporterProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const;

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_path_;
};

// GET http://127.0.0.1:`port``path`: the body, or nullopt on any failure
// (no connection, a status other than 200).
std::optional<std::string> http_get(int port, const std::string& path, const std::string& accept = "");

// Calls `check` until it returns true, at most `attempts` times, `pause`
// apart: for conditions another process makes true in its own time (a
// scrape, a rescan). True when it held.
bool eventually(const std::function<bool()>& check, int attempts = 200,
                std::chrono::milliseconds pause = std::chrono::milliseconds(100));

// A TCP port on 127.0.0.1 that was free a moment ago (bound with port 0
// and released); the caller retries if another process takes it first.
int free_tcp_port();

}  // namespace qtx::testing
