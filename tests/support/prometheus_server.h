// A real Prometheus server (Debian's prometheus package) as a process for
// integration tests: it scrapes one target every second and is read through
// its HTTP query API. Stopped with SIGTERM by the destructor.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qtx::testing {

// One series of an instant query: its labels and its value as Prometheus
// wrote it.
struct Series {
  std::map<std::string, std::string> labels;
  std::string value;
};

// Prometheus on 127.0.0.1 scraping 127.0.0.1:`target_port` (job "qtx"),
// its configuration, storage and log in `dir` (which the caller owns and
// removes). port() is 0 when it did not become ready.
class PrometheusProcess {
 public:
  PrometheusProcess(const std::string& dir, int target_port);
  ~PrometheusProcess();
  PrometheusProcess(const PrometheusProcess&) = delete;
  PrometheusProcess& operator=(const PrometheusProcess&) = delete;

  int port() const { return port_; }
  std::string log() const;

  // GET /api/v1/query; nullopt when the query failed.
  std::optional<std::vector<Series>> query(const std::string& expr);
  // The value of the one series `expr` selects, or "" when not exactly one.
  std::string value(const std::string& expr);

 private:
  void start(int port);
  bool exited();
  void stop();

  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace qtx::testing
