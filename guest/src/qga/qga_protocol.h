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
//   - otherwise the Runner runs the command; an "id" member is echoed beside
//     its answer, and a command without success-response that succeeded
//     (Outcome::silent) gets none.
// One command runs at a time, as in qemu-ga: while one is running (an
// asynchronous command has not replied yet), later input waits, cut into
// texts, in a backlog, and is handled in order once it replies. The backlog
// holds only what was fed meanwhile: its owner stops feeding while busy().
// A 0xFF byte and a stray '}' or ']' get one GenericError each, as in qemu-ga;
// an oversized or overdeep text gets one GenericError ("JSON token size limit
// exceeded" / "JSON nesting depth limit exceeded") where qemu-ga, whose
// limits are far larger, answers every token after the limit.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "qga/json_framer.h"
#include "qga/qga_commands.h"

namespace qtx::agent::qga {

class QgaProtocol {
 public:
  // One whole answer; called synchronously from feed().
  using Output = std::function<void(std::string)>;
  // Runs one command and replies exactly once, on the caller's thread, now
  // or later; the protocol must still exist when it replies (the owner drops
  // a reply that comes after it has gone). Normally run_command().
  using Runner = std::function<void(const std::string& name, const Json& args, Reply reply)>;

  struct Stats {
    std::uint64_t texts = 0;         // JSON texts cut by the framer
    std::uint64_t bytes_parsed = 0;  // bytes handed to the JSON parser (each at most once)
    std::uint64_t errors = 0;        // error answers, all causes
  };

  QgaProtocol(Runner run, Output out, JsonFramer::Limits limits = {});

  void feed(const char* data, std::size_t n);
  // No partial text, no command running, nothing waiting.
  bool idle() const { return framer_.idle() && !busy(); }
  // A command is running or input waits behind one.
  bool busy() const { return running_ || !backlog_.empty(); }
  std::size_t backlog_bytes() const { return backlog_bytes_; }
  const JsonFramer& framer() const { return framer_; }
  const Stats& stats() const { return stats_; }

 private:
  struct Waiting {
    JsonFramer::Event event;
    std::string text;
  };

  void on_event(JsonFramer::Event ev, std::string_view text);
  void handle_event(JsonFramer::Event ev, std::string_view text);
  void handle_text(std::string_view text);
  void on_reply(Outcome o, const std::optional<Json>& id);
  void drain();
  void answer(const Outcome& o, const Json* id);

  Runner run_;
  Output out_;
  JsonFramer framer_;
  Stats stats_;
  bool running_ = false;      // a command has not replied yet
  bool dispatching_ = false;  // inside run_(): a reply now is synchronous
  std::deque<Waiting> backlog_;
  std::size_t backlog_bytes_ = 0;
};

}  // namespace qtx::agent::qga
