#include "logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <google/protobuf/stubs/logging.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>

#include "qtx/quote.h"

namespace qtx::agent {
namespace {

// %J: the syslog priority of the message, as journald's stream protocol reads it.
class PriorityFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static const char* kPrio[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
    const char* p = kPrio[static_cast<int>(msg.level)];
    dest.append(p, p + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<PriorityFlag>(); }
};

// stderr, or memory while held.
class HoldableStderrSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void set_hold(bool hold) {
    std::lock_guard<std::mutex> lock(mutex_);
    held_ = hold;
    if (held_) return;
    for (const auto& line : kept_) std::fwrite(line.data(), 1, line.size(), stderr);
    if (lost_ != 0) std::fprintf(stderr, "%zu log lines were lost while filesystems were frozen\n", lost_);
    kept_.clear();
    lost_ = 0;
    std::fflush(stderr);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    if (held_) {
      if (kept_.size() < kMaxKept) {
        kept_.emplace_back(buf.data(), buf.size());
      } else {
        ++lost_;
      }
      return;
    }
    std::fwrite(buf.data(), 1, buf.size(), stderr);
  }
  void flush_() override {
    if (!held_) std::fflush(stderr);
  }

 private:
  static constexpr std::size_t kMaxKept = 10000;
  bool held_ = false;
  std::deque<std::string> kept_;
  std::size_t lost_ = 0;
};

std::shared_ptr<HoldableStderrSink>& sink() {
  static std::shared_ptr<HoldableStderrSink> s = std::make_shared<HoldableStderrSink>();
  return s;
}

// The protobuf runtime's own messages. A host can provoke them at will (a
// string field with invalid UTF-8 in an otherwise valid frame), so they go
// through our logger at debug level instead of straight to stderr: they can
// neither flood the journal nor bypass the hold while filesystems are frozen.
// The frame itself is refused and counted by the session. The message is
// escaped like any text a peer can shape: it may quote what it parsed.
void protobuf_log(google::protobuf::LogLevel level, const char* file, int line, const std::string& message) {
  constexpr std::size_t kMaxMessage = 1000;
  if (level >= google::protobuf::LOGLEVEL_FATAL) {
    spdlog::critical("protobuf {}:{}: {}", file, line, qtx::printable(message, kMaxMessage));
  } else {
    spdlog::debug("protobuf {}:{}: {}", file, line, qtx::printable(message, kMaxMessage));
  }
}

}  // namespace

void set_log_hold(bool hold) { sink()->set_hold(hold); }

void setup_logging(const std::string& level) {
  auto logger = std::make_shared<spdlog::logger>("qtx-agent", sink());
  spdlog::register_logger(logger);
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (std::getenv("JOURNAL_STREAM") != nullptr) {
    formatter->add_flag<PriorityFlag>('J').set_pattern("%J%v");
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e qtx-agent %l: %v");
  }
  logger->set_formatter(std::move(formatter));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  google::protobuf::SetLogHandler(&protobuf_log);
  set_log_level(level);
}

void set_log_level(const std::string& level) { spdlog::set_level(spdlog::level::from_str(level)); }

}  // namespace qtx::agent
