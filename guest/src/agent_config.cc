#include "agent_config.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>

#define TOML_EXCEPTIONS 0
#define TOML_ENABLE_FORMATTERS 0
#include <toml++/toml.h>

#include "dispatcher.h"
#include "qtx/quote.h"

namespace qtx::agent {
namespace {

std::string where(const std::string& origin, const toml::source_region& r) {
  return origin + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column);
}

// The closest of `candidates` to a misspelt `name` (case, '-' for '_', at
// most two letters off), or "" when none is close.
std::string closest(std::string_view name, const std::vector<std::string_view>& candidates) {
  constexpr std::size_t kMaxLength = 64;  // longer is no typo of a setting; bounds the work
  if (name.size() > kMaxLength) return "";
  std::string norm;
  for (const char ch : name) norm += ch == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string best;
  std::size_t best_distance = 3;
  for (const auto c : candidates) {
    if (c.size() > kMaxLength) continue;
    // Levenshtein distance, one row at a time.
    std::vector<std::size_t> row(c.size() + 1);
    for (std::size_t j = 0; j <= c.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= norm.size(); ++i) {
      std::size_t diagonal = row[0];
      row[0] = i;
      for (std::size_t j = 1; j <= c.size(); ++j) {
        const std::size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (norm[i - 1] == c[j - 1] ? 0 : 1)});
        diagonal = up;
      }
    }
    if (row[c.size()] < best_distance) {
      best_distance = row[c.size()];
      best = std::string(c);
    }
  }
  return best;
}

std::string did_you_mean(std::string_view name, const std::vector<std::string_view>& candidates) {
  const std::string c = closest(name, candidates);
  return c.empty() ? "" : " (did you mean " + c + "?)";
}

// Which section reads each key, filled as the sections are read: a key found
// elsewhere is reported with the section it belongs to.
using KeyHomes = std::map<std::string, std::string, std::less<>>;

// Reads typed keys out of one table and remembers which it consumed, so the
// keys nobody asked for can be refused as unknown or misplaced.
class TableReader {
 public:
  TableReader(const toml::table& t, std::string name, const std::string& origin, ConfigLoad* out, KeyHomes* homes)
      : t_(t), name_(std::move(name)), origin_(origin), out_(out), homes_(homes) {}

  template <typename T>
  void integer(const char* key, T* dst, std::int64_t lo, std::int64_t hi) {
    const toml::node* n = take(key);
    if (n == nullptr || !out_->status) return;
    // Type first: value<int64_t>() of a float node converts it, which is
    // undefined for one out of range (3e77).
    if (!n->is_integer()) return fail(n, "must be an integer");
    auto v = n->value<std::int64_t>();
    if (!v) return fail(n, "must be an integer");
    if (*v < lo || *v > hi) {
      return fail(n, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    }
    *dst = static_cast<T>(*v);
  }

  void boolean(const char* key, bool* dst) {
    const toml::node* n = take(key);
    if (n == nullptr || !out_->status) return;
    if (!n->is_boolean()) return fail(n, "must be true or false");
    *dst = *n->value<bool>();
  }

  void string(const char* key, std::string* dst) {
    const toml::node* n = take(key);
    if (n == nullptr || !out_->status) return;
    if (!n->is_string()) return fail(n, "must be a string");
    *dst = *n->value<std::string>();
  }

  void strings(const char* key, std::vector<std::string>* dst) {
    const toml::node* n = take(key);
    if (n == nullptr || !out_->status) return;
    const toml::array* a = n->as_array();
    if (a == nullptr) return fail(n, "must be an array of strings");
    std::vector<std::string> v;
    for (const auto& e : *a) {
      if (!e.is_string()) return fail(&e, "must be an array of strings");
      v.push_back(*e.value<std::string>());
    }
    *dst = std::move(v);
  }

  // true, false or "auto", kept as "true", "false" or "auto".
  void tristate(const char* key, std::string* dst) {
    const toml::node* n = take(key);
    if (n == nullptr || !out_->status) return;
    if (n->is_boolean()) {
      *dst = *n->value<bool>() ? "true" : "false";
    } else if (n->is_string() && *n->value<std::string>() == "auto") {
      *dst = "auto";
    } else {
      fail(n, "must be true, false or \"auto\"");
    }
  }

  // policy.allow / policy.deny: "*" or the names of request kinds.
  void kinds(const char* key, std::vector<std::string>* dst) {
    strings(key, dst);
    const toml::node* n = t_.get(key);
    if (n == nullptr || !out_->status) return;
    for (const auto& e : *n->as_array()) {
      const std::string& kind = e.as_string()->get();
      const auto& known = request_kind_names();
      if (kind == "*" || std::find(known.begin(), known.end(), kind) != known.end()) continue;
      return fail(&e, "names an unknown request kind \"" + printable(kind, 64) + "\"" + did_you_mean(kind, known));
    }
  }

  // The first key of this table that no reader took (by place in the file),
  // as an error: unknown, or read by another section.
  void first_unread(std::optional<std::pair<toml::source_position, std::string>>* first) const {
    for (const auto& [k, v] : t_) {
      const std::string key(k.str());
      if (used_.count(key)) continue;
      const toml::source_region& r = k.source();
      if (first->has_value() && !(r.begin < (*first)->first)) continue;
      std::string what;
      auto home = homes_->find(key);
      if (home != homes_->end()) {
        what = name_ + "." + printable(key, 64) + " is misplaced: " + key + " belongs in [" + home->second + "]";
      } else {
        std::vector<std::string_view> mine;
        for (const auto& u : used_) mine.emplace_back(u);
        what = "unknown key " + name_ + "." + printable(key, 64) + did_you_mean(key, mine);
      }
      first->emplace(r.begin, where(origin_, r) + ": " + what);
    }
  }

  void fail(const toml::node* n, const std::string& what) {
    if (!out_->status) return;
    out_->status = Status::invalid_argument(where(origin_, n->source()) + ": " + name_ + "." + current_ + " " + what);
  }

 private:
  const toml::node* take(const char* key) {
    used_.insert(key);
    homes_->emplace(key, name_);
    current_ = key;
    return t_.get(key);
  }

  const toml::table& t_;
  std::string name_;
  const std::string& origin_;
  ConfigLoad* out_;
  KeyHomes* homes_;
  std::set<std::string> used_;
  std::string current_;
};

const std::set<std::string>& known_log_levels() {
  static const std::set<std::string> k = {"trace", "debug", "info", "warn", "error", "off"};
  return k;
}

}  // namespace

bool is_known_log_level(const std::string& level) { return known_log_levels().count(level) != 0; }

bool AgentConfig::allows(const std::string& kind) const {
  if (std::find(deny.begin(), deny.end(), kind) != deny.end()) return false;
  if (std::find(deny.begin(), deny.end(), "*") != deny.end()) return false;
  return std::find(allow.begin(), allow.end(), "*") != allow.end() ||
         std::find(allow.begin(), allow.end(), kind) != allow.end();
}

ConfigLoad parse_config(const std::string& text, const std::string& origin, AgentConfig* config) {
  ConfigLoad out;
  // toml++ 3.3 (Debian 12) reaches __builtin_unreachable on some non-ASCII
  // characters (upstream issues #190 and #295): undefined behaviour in the
  // agent for one stray byte. Every setting is ASCII, so refuse the rest.
  std::size_t line = 1, column = 1;
  for (const char ch : text) {
    if (static_cast<unsigned char>(ch) >= 0x80) {
      out.status = Status::invalid_argument(origin + ":" + std::to_string(line) + ":" + std::to_string(column) +
                                            ": only ASCII is accepted in the configuration");
      return out;
    }
    if (ch == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  toml::parse_result parsed = toml::parse(text, origin);
  if (!parsed) {
    const auto& err = parsed.error();
    out.status = Status::invalid_argument(where(origin, err.source()) + ": " + std::string(err.description()));
    return out;
  }
  const toml::table& root = parsed.table();
  AgentConfig c = *config;
  static const std::vector<std::string_view> kSections = {"agent",  "telemetry", "policy", "limits",
                                                          "freeze", "power",     "system", "qga"};
  for (const auto& [k, v] : root) {
    if (std::find(kSections.begin(), kSections.end(), k.str()) != kSections.end() && !v.is_table()) {
      out.status =
          Status::invalid_argument(where(origin, v.source()) + ": " + std::string(k.str()) + " must be a [section]");
      return out;
    }
  }
  // Every section is read, present or not, so that every key has a home
  // before the unread ones are judged.
  KeyHomes homes;
  std::vector<TableReader> readers;
  readers.reserve(kSections.size());
  const toml::table kEmpty;
  auto section = [&](const char* name, auto&& read) {
    if (!out.status) return;
    const toml::table* t = root.get_as<toml::table>(name);
    readers.emplace_back(t != nullptr ? *t : kEmpty, name, origin, &out, &homes);
    read(readers.back());
  };
  constexpr std::int64_t kU32 = 0xffffffffLL;
  section("agent", [&](TableReader& r) {
    r.string("transport", &c.transport);
    r.string("log_level", &c.log_level);
    r.string("state_dir", &c.state_dir);
  });
  section("telemetry", [&](TableReader& r) {
    r.integer("interval_ms", &c.telemetry_interval_ms, 100, 24LL * 3600 * 1000);
    r.boolean("per_cpu", &c.telemetry_per_cpu);
  });
  section("policy", [&](TableReader& r) {
    r.kinds("allow", &c.allow);
    r.kinds("deny", &c.deny);
    r.strings("file_roots", &c.file_roots);
    r.boolean("file_allow_hard_links", &c.file_allow_hard_links);
    r.integer("exec_default_timeout_ms", &c.exec_default_timeout_ms, 1, kU32);
    r.boolean("process_kill_init", &c.process_kill_init);
  });
  section("limits", [&](TableReader& r) {
    r.integer("max_message", &c.max_message, 64 * 1024, 16LL * 1024 * 1024);
    r.integer("max_exec_output", &c.max_exec_output, 0, 1LL << 40);
    r.integer("max_concurrent_execs", &c.max_concurrent_execs, 0, 1024);
    r.integer("max_open_transfers", &c.max_open_transfers, 0, 1024);
    r.integer("write_timeout_ms", &c.write_timeout_ms, 100, kU32);
    r.integer("outbox_bytes", &c.outbox_bytes, 256 * 1024, 1LL << 32);
  });
  section("freeze", [&](TableReader& r) {
    r.string("hooks_dir", &c.freeze_hooks_dir);
    r.integer("timeout_ms", &c.freeze_timeout_ms, 1000, 24LL * 3600 * 1000);
    r.integer("max_timeout_ms", &c.freeze_max_timeout_ms, 1000, 24LL * 3600 * 1000);
  });
  section("power", [&](TableReader& r) {
    r.strings("poweroff", &c.poweroff_command);
    r.strings("reboot", &c.reboot_command);
    r.strings("halt", &c.halt_command);
  });
  section("system", [&](TableReader& r) {
    r.string("passwd_file", &c.passwd_file);
    r.string("shadow_file", &c.shadow_file);
    r.string("group_file", &c.group_file);
    r.string("hostname_file", &c.hostname_file);
  });
  section("qga", [&](TableReader& r) {
    r.tristate("enabled", &c.qga_enabled);
    r.string("transport", &c.qga_transport);
  });
  if (!out.status) return out;
  // A key or section nobody read is a typo or a misplacement: refused, since
  // ignoring it would run the agent with a policy its administrator did not
  // write (deny = [...] under [Policy] denies nothing). The first in the file
  // is reported.
  std::optional<std::pair<toml::source_position, std::string>> unread;
  for (const auto& [k, v] : root) {
    if (std::find(kSections.begin(), kSections.end(), k.str()) != kSections.end()) continue;
    const toml::source_region& r = v.is_table() ? v.source() : k.source();
    if (unread.has_value() && !(r.begin < unread->first)) continue;
    const std::string name(k.str());
    std::string what;
    auto home = homes.find(name);
    if (home != homes.end()) {
      what = name + " is misplaced: it belongs in [" + home->second + "]";
    } else {
      const std::string near = closest(name, kSections);
      what = v.is_table() ? "unknown section [" + printable(name, 64) + "]" +
                                (near.empty() ? "" : " (did you mean [" + near + "]?)")
                          : "unknown key " + printable(name, 64) + " outside any section";
    }
    unread.emplace(r.begin, where(origin, r) + ": " + what);
  }
  for (const auto& r : readers) r.first_unread(&unread);
  if (unread.has_value()) {
    out.status = Status::invalid_argument(unread->second);
    return out;
  }
  for (const std::string_view always : {"hello", "ping"}) {
    if (std::find(c.deny.begin(), c.deny.end(), always) != c.deny.end()) {
      out.warnings.push_back(origin + ": policy.deny names " + std::string(always) +
                             ", which is always allowed (the session needs it)");
    }
  }
  if (!known_log_levels().count(c.log_level)) {
    out.status =
        Status::invalid_argument(origin + ": agent.log_level must be one of trace, debug, info, warn, error, off");
    return out;
  }
  if (c.freeze_timeout_ms > c.freeze_max_timeout_ms) {
    out.status =
        Status::invalid_argument(origin + ": freeze.timeout_ms (" + std::to_string(c.freeze_timeout_ms) +
                                 ") is above freeze.max_timeout_ms (" + std::to_string(c.freeze_max_timeout_ms) + ")");
    return out;
  }
  for (const auto& root_dir : c.file_roots) {
    if (root_dir.empty() || root_dir[0] != '/') {
      out.status =
          Status::invalid_argument(origin + ": policy.file_roots entries must be absolute paths: \"" + root_dir + "\"");
      return out;
    }
  }
  *config = std::move(c);
  return out;
}

ConfigLoad load_config(const std::string& path, bool required, AgentConfig* config) {
  std::ifstream f(path);
  if (!f) {
    ConfigLoad out;
    if (required) out.status = Status::not_found("cannot read config file " + path);
    return out;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_config(ss.str(), path, config);
}

}  // namespace qtx::agent
