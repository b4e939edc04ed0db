#include "qga/qga_protocol.h"

#include <set>
#include <vector>

namespace qtx::agent::qga {
namespace {

// Parses one JSON text. qemu refuses duplicate keys, which nlohmann would
// quietly merge: a per-object key set catches them (the depth is bounded by
// the framer, the sets' size by the text).
bool parse(std::string_view text, Json* out, std::string* why) {
  std::vector<std::set<std::string>> keys;
  bool duplicate = false;
  Json::parser_callback_t cb = [&](int, Json::parse_event_t ev, Json& parsed) {
    switch (ev) {
      case Json::parse_event_t::object_start: keys.emplace_back(); break;
      case Json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second) duplicate = true;
        break;
      default: break;
    }
    return true;
  };
  *out = Json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
  if (out->is_discarded()) {
    *why = "JSON parse error, invalid JSON syntax";
    return false;
  }
  if (duplicate) {
    *why = "JSON parse error, duplicate key";
    return false;
  }
  return true;
}

}  // namespace

QgaProtocol::QgaProtocol(Runner run, Output out, JsonFramer::Limits limits)
    : run_(std::move(run)),
      out_(std::move(out)),
      framer_(limits, [this](JsonFramer::Event ev, std::string_view text) { on_event(ev, text); }) {}

void QgaProtocol::feed(const char* data, std::size_t n) { framer_.feed(data, n); }

void QgaProtocol::on_event(JsonFramer::Event ev, std::string_view text) {
  if (busy()) {
    backlog_bytes_ += text.size();
    backlog_.push_back({ev, std::string(text)});
    return;
  }
  handle_event(ev, text);
}

// Handles what waited, in order, until a command goes asynchronous. Called
// from an asynchronous reply only: a synchronous one returns to the loop
// that is already handling input.
void QgaProtocol::drain() {
  while (!running_ && !backlog_.empty()) {
    Waiting w = std::move(backlog_.front());
    backlog_.pop_front();
    backlog_bytes_ -= w.text.size();
    handle_event(w.event, w.text);
  }
}

void QgaProtocol::handle_event(JsonFramer::Event ev, std::string_view text) {
  switch (ev) {
    case JsonFramer::Event::kText: return handle_text(text);
    case JsonFramer::Event::kSentinel:
      return answer(Outcome::generic("JSON parse error, stray '\xEF\xBF\xBD'"), nullptr);  // U+FFFD, as qemu-ga
    case JsonFramer::Event::kStrayClose: return answer(Outcome::generic("JSON parse error, expecting value"), nullptr);
    case JsonFramer::Event::kTooLarge: return answer(Outcome::generic("JSON token size limit exceeded"), nullptr);
    case JsonFramer::Event::kTooDeep: return answer(Outcome::generic("JSON nesting depth limit exceeded"), nullptr);
  }
}

void QgaProtocol::handle_text(std::string_view text) {
  stats_.texts++;
  stats_.bytes_parsed += text.size();
  Json req;
  std::string why;
  if (!parse(text, &req, &why)) return answer(Outcome::generic(why), nullptr);
  if (!req.is_object()) return answer(Outcome::generic("QMP input must be a JSON object"), nullptr);
  // Like qemu's dispatcher, the id is echoed with any answer to an object.
  const Json* id = nullptr;
  if (auto it = req.find("id"); it != req.end()) id = &*it;
  const Json* args = nullptr;
  const std::string* command = nullptr;
  for (const auto& [key, value] : req.items()) {
    if (key == "execute") {
      if (!value.is_string()) return answer(Outcome::generic("QMP input member 'execute' must be a string"), id);
      command = &value.get_ref<const std::string&>();
    } else if (key == "arguments") {
      if (!value.is_object()) {
        return answer(Outcome::generic("QMP input member 'arguments' must be an object"), id);
      }
      args = &value;
    } else if (key != "id") {
      return answer(Outcome::generic("QMP input member '" + key + "' is unexpected"), id);
    }
  }
  if (command == nullptr) return answer(Outcome::generic("QMP input lacks member 'execute'"), id);
  static const Json kNoArgs = Json::object();
  std::optional<Json> reply_id;
  if (id != nullptr) reply_id = *id;
  running_ = true;
  dispatching_ = true;
  run_(*command, args != nullptr ? *args : kNoArgs,
       [this, reply_id = std::move(reply_id)](Outcome o) { on_reply(std::move(o), reply_id); });
  dispatching_ = false;
}

void QgaProtocol::on_reply(Outcome o, const std::optional<Json>& id) {
  running_ = false;
  if (!(o.ok() && o.silent)) answer(o, id ? &*id : nullptr);
  if (!dispatching_) drain();
}

void QgaProtocol::answer(const Outcome& o, const Json* id) {
  Json rsp = Json::object();
  if (o.ok()) {
    rsp["return"] = o.ret;
  } else {
    stats_.errors++;
    rsp["error"] = {{"class", o.error_class}, {"desc", o.desc}};
  }
  if (id != nullptr) rsp["id"] = *id;
  std::string line;
  if (o.delimit) line.push_back(static_cast<char>(0xFF));
  write_json(rsp, &line);
  line.push_back('\n');
  out_(std::move(line));
}

}  // namespace qtx::agent::qga
