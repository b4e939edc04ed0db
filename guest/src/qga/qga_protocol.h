// QgaProtocol: qemu-ga's request/response protocol over a byte stream,
// without I/O. Bytes in (feed), whole answers out (the Output callback, each
// one JSON object and "\n", after a 0xFF when guest-sync-delimited asked for
// it), in request order.
//
// Every JSON text the framer cuts gets exactly one answer, as qemu-ga 7.2
// gives it:
//   - not JSON (or a duplicate key):  GenericError "JSON parse error, ..."
//   - not an object:                  GenericError "QMP input must be a JSON object"
//   - members other than execute, arguments, id; execute not a string;
//     arguments not an object; no execute: GenericError with QMP's wording
//   - otherwise run_command(); an "id" member is echoed beside the answer.
// A 0xFF byte and a stray '}' or ']' get one GenericError each, as in qemu-ga;
// an oversized or overdeep text gets one GenericError ("JSON token size limit
// exceeded" / "JSON nesting depth limit exceeded") where qemu-ga, whose
// limits are far larger, answers every token after the limit.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "qga/json_framer.h"
#include "qga/qga_commands.h"

namespace qtx::agent::qga {

class QgaProtocol {
 public:
  // One whole answer; called synchronously from feed().
  using Output = std::function<void(std::string)>;
  // The configuration to apply to each request (the agent's current one:
  // SIGHUP may replace it between requests).
  using ConfigRef = std::function<const AgentConfig&()>;

  struct Stats {
    std::uint64_t texts = 0;         // JSON texts cut by the framer
    std::uint64_t bytes_parsed = 0;  // bytes handed to the JSON parser (each at most once)
    std::uint64_t errors = 0;        // error answers, all causes
  };

  QgaProtocol(ConfigRef config, Output out, JsonFramer::Limits limits = {});

  void feed(const char* data, std::size_t n);
  bool idle() const { return framer_.idle(); }
  const JsonFramer& framer() const { return framer_; }
  const Stats& stats() const { return stats_; }

 private:
  void on_event(JsonFramer::Event ev, std::string_view text);
  void handle_text(std::string_view text);
  void answer(const Outcome& o, const Json* id);

  ConfigRef config_;
  Output out_;
  JsonFramer framer_;
  Stats stats_;
};

}  // namespace qtx::agent::qga
