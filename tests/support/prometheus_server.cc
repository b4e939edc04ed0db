#include "support/prometheus_server.h"

#include <fcntl.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "support/exporter_process.h"

namespace qtx::testing {

using namespace std::chrono_literals;

PrometheusProcess::PrometheusProcess(const std::string& dir, int target_port) : dir_(dir) {
  std::ofstream(dir + "/prometheus.yml") << "global:\n"
                                            "  scrape_interval: 1s\n"
                                            "  scrape_timeout: 1s\n"
                                            "scrape_configs:\n"
                                            "  - job_name: qtx\n"
                                            "    static_configs:\n"
                                            "      - targets: ['127.0.0.1:"
                                         << target_port << "']\n";
  // A port that was free a moment ago; if another process takes it first,
  // Prometheus exits and the next one is tried.
  for (int attempt = 0; attempt < 5 && port_ == 0; ++attempt) {
    const int port = free_tcp_port();
    start(port);
    const bool ready = eventually([&] { return exited() || http_get(port, "/-/ready").has_value(); }, 300);
    if (ready && !exited()) port_ = port;
    else stop();
  }
}

PrometheusProcess::~PrometheusProcess() { stop(); }

std::string PrometheusProcess::log() const {
  std::ifstream in(dir_ + "/prometheus.log");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::optional<std::vector<Series>> PrometheusProcess::query(const std::string& expr) {
  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(10s);
  auto res = client.Get("/api/v1/query", httplib::Params{{"query", expr}}, httplib::Headers{});
  if (!res || res->status != 200) return std::nullopt;
  google::protobuf::Struct doc;
  if (!google::protobuf::util::JsonStringToMessage(res->body, &doc).ok()) return std::nullopt;
  const auto& f = doc.fields();
  if (!f.count("status") || f.at("status").string_value() != "success") return std::nullopt;
  std::vector<Series> out;
  for (const auto& r : f.at("data").struct_value().fields().at("result").list_value().values()) {
    Series s;
    for (const auto& [k, v] : r.struct_value().fields().at("metric").struct_value().fields()) {
      s.labels[k] = v.string_value();
    }
    const auto& value = r.struct_value().fields().at("value").list_value().values();
    if (value.size() == 2) s.value = value[1].string_value();
    out.push_back(std::move(s));
  }
  return out;
}

std::string PrometheusProcess::value(const std::string& expr) {
  auto r = query(expr);
  return r && r->size() == 1 ? (*r)[0].value : "";
}

void PrometheusProcess::start(int port) {
  pid_ = ::fork();
  if (pid_ == 0) {
    int log = ::open((dir_ + "/prometheus.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    const std::string config = "--config.file=" + dir_ + "/prometheus.yml";
    const std::string storage = "--storage.tsdb.path=" + dir_ + "/data";
    const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port);
    ::execlp("prometheus", "prometheus", config.c_str(), storage.c_str(), listen.c_str(), "--log.level=warn",
             static_cast<char*>(nullptr));
    _exit(127);
  }
}

bool PrometheusProcess::exited() {
  int status = 0;
  if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) pid_ = -1;
  return pid_ <= 0;
}

void PrometheusProcess::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

}  // namespace qtx::testing
