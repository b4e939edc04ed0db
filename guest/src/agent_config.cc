#include "agent_config.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#define TOML_EXCEPTIONS 0
#define TOML_ENABLE_FORMATTERS 0
#include <toml++/toml.h>

namespace qtx::agent {
namespace {

std::string where(const std::string& origin, const toml::source_region& r) {
  return origin + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column);
}

// Reads typed keys out of one table and remembers which it consumed, so the
// keys nobody asked for can be reported as unknown.
class TableReader {
 public:
  TableReader(const toml::table& t, std::string name, const std::string& origin, ConfigLoad* out)
      : t_(t), name_(std::move(name)), origin_(origin), out_(out) {}

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

  void warn_unknown() {
    for (const auto& [k, v] : t_) {
      if (!used_.count(std::string(k.str()))) {
        out_->warnings.push_back(where(origin_, v.source()) + ": unknown key " + name_ + "." +
                                 std::string(k.str()) + " (ignored)");
      }
    }
  }

  void fail(const toml::node* n, const std::string& what) {
    if (!out_->status) return;
    out_->status = Status::invalid_argument(where(origin_, n->source()) + ": " + name_ + "." +
                                            current_ + " " + what);
  }

 private:
  const toml::node* take(const char* key) {
    used_.insert(key);
    current_ = key;
    return t_.get(key);
  }

  const toml::table& t_;
  std::string name_;
  const std::string& origin_;
  ConfigLoad* out_;
  std::set<std::string> used_;
  std::string current_;
};

const std::set<std::string>& known_log_levels() {
  static const std::set<std::string> k = {"trace", "debug", "info", "warn", "error", "off"};
  return k;
}

}  // namespace

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
  static const std::set<std::string> kSections = {"agent", "telemetry", "policy", "limits", "freeze", "power", "system"};
  for (const auto& [k, v] : root) {
    std::string key(k.str());
    if (!kSections.count(key)) {
      out.warnings.push_back(where(origin, v.source()) + ": unknown section or key " + key + " (ignored)");
    } else if (!v.is_table()) {
      out.status = Status::invalid_argument(where(origin, v.source()) + ": " + key + " must be a [section]");
      return out;
    }
  }
  auto section = [&](const char* name, auto&& read) {
    if (!out.status) return;
    const toml::table* t = root.get_as<toml::table>(name);
    if (t == nullptr) return;
    TableReader r(*t, name, origin, &out);
    read(r);
    if (out.status) r.warn_unknown();
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
    r.strings("allow", &c.allow);
    r.strings("deny", &c.deny);
    r.strings("file_roots", &c.file_roots);
    r.boolean("file_allow_hard_links", &c.file_allow_hard_links);
    r.integer("exec_default_timeout_ms", &c.exec_default_timeout_ms, 1, kU32);
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
  if (!out.status) return out;
  if (!known_log_levels().count(c.log_level)) {
    out.status = Status::invalid_argument(origin + ": agent.log_level must be one of trace, debug, info, warn, error, off");
    return out;
  }
  for (const auto& root_dir : c.file_roots) {
    if (root_dir.empty() || root_dir[0] != '/') {
      out.status = Status::invalid_argument(origin + ": policy.file_roots entries must be absolute paths: \"" + root_dir + "\"");
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
