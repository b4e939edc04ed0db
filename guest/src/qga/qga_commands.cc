#include "qga/qga_commands.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>

#include "agent_config.h"
#include "agent_context.h"
#include "qga/qga_command_table.h"

namespace qtx::agent::qga {
namespace {

const char* type_name(Type t) {
  switch (t) {
    case Type::kInt: return "integer";
    case Type::kString: return "string";
    case Type::kBool: return "boolean";
    case Type::kArray: return "array";
    case Type::kObject: return "object";
    case Type::kNumber: return "number";
  }
  return "value";
}

bool has_type(const Json& v, Type t) {
  switch (t) {
    case Type::kInt:  // qemu's "int" is int64
      return v.is_number_integer() &&
             (!v.is_number_unsigned() || v.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX));
    case Type::kString: return v.is_string();
    case Type::kBool: return v.is_boolean();
    case Type::kArray: return v.is_array();
    case Type::kObject: return v.is_object();
    case Type::kNumber: return v.is_number();
  }
  return false;
}

// --- the protocol's own commands ---------------------------------------------

Outcome sync(const Json& args, bool delimited) {
  if (auto bad = check_params(args, {{"id", Type::kInt, true}})) return *bad;
  Outcome o = ok(args.at("id"));
  o.delimit = delimited;
  return o;
}

Outcome ping(CommandEnv&, const Json& args) {
  if (auto bad = check_params(args, {})) return *bad;
  return ok(Json::object());
}

Outcome info(CommandEnv& env, const Json& args) {
  if (auto bad = check_params(args, {})) return *bad;
  Json list = Json::array();
  for (const auto& c : command_list(env.agent.config)) {
    list.push_back({{"enabled", c.enabled}, {"name", c.name}, {"success-response", c.success_response}});
  }
  return ok({{"version", QTX_VERSION}, {"supported_commands", std::move(list)}});
}

// --- the table -----------------------------------------------------------------

// Every command, sorted by name; built once.
const std::vector<Command>& commands() {
  static const std::vector<Command> table = [] {
    std::vector<Command> t;
    add_protocol_commands(&t);
    add_system_info_commands(&t);
    std::sort(t.begin(), t.end(), [](const Command& a, const Command& b) { return std::string_view(a.name) < b.name; });
    return t;
  }();
  return table;
}

// Commands qemu-ga registers on Linux but disables (Windows only).
const char* const kDisabledOnLinux[] = {"guest-get-devices"};

const Command* find(std::string_view name) {
  for (const auto& c : commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

bool enabled(const Command& c, const AgentConfig& config) { return c.kind[0] == '\0' || config.allows(c.kind); }

}  // namespace

std::optional<Outcome> check_params(const Json& args, std::initializer_list<Param> params) {
  for (const Param& p : params) {
    auto it = args.find(p.name);
    if (it == args.end()) {
      if (p.required) return Outcome::generic(std::string("Parameter '") + p.name + "' is missing");
      continue;
    }
    if (!has_type(*it, p.type)) {
      return Outcome::generic(std::string("Invalid parameter type for '") + p.name +
                              "', expected: " + type_name(p.type));
    }
  }
  for (const auto& [key, value] : args.items()) {
    const bool known =
        std::any_of(params.begin(), params.end(), [&key = key](const Param& p) { return key == p.name; });
    if (!known) return Outcome::generic("Parameter '" + key + "' is unexpected");
  }
  return std::nullopt;
}

void add_protocol_commands(std::vector<Command>* out) {
  out->insert(out->end(), {
                              {"guest-info", "", info},
                              {"guest-ping", "", ping},
                              {"guest-sync", "", [](CommandEnv&, const Json& a) { return sync(a, false); }},
                              {"guest-sync-delimited", "", [](CommandEnv&, const Json& a) { return sync(a, true); }},
                          });
}

const char* policy_kind(std::string_view name) {
  const Command* c = find(name);
  return c != nullptr ? c->kind : nullptr;
}

std::vector<CommandInfo> command_list(const AgentConfig& config) {
  std::vector<CommandInfo> out;
  for (const auto& c : commands()) out.push_back({c.name, enabled(c, config), c.success_response});
  for (const char* name : kDisabledOnLinux) out.push_back({name, false, true});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

void run_command(CommandEnv& env, const std::string& name, const Json& args, Reply reply) {
  const AgentConfig& config = env.agent.config;
  const Command* c = find(name);
  const bool windows_only = std::find_if(std::begin(kDisabledOnLinux), std::end(kDisabledOnLinux),
                                         [&](const char* n) { return name == n; }) != std::end(kDisabledOnLinux);
  if (c != nullptr && !enabled(*c, config)) spdlog::info("audit: denied qemu-ga {} by policy ({})", name, c->kind);
  if (windows_only || (c != nullptr && !enabled(*c, config))) {
    return reply(Outcome::error("CommandNotFound", "Command " + name + " has been disabled"));
  }
  if (c == nullptr) return reply(Outcome::error("CommandNotFound", "The command " + name + " has not been found"));
  if (c->run != nullptr) {
    Outcome o;
    try {
      o = c->run(env, args);
    } catch (const std::exception& e) {  // a bug must not take the agent down
      o = Outcome::generic(name + " failed: " + e.what());
    }
    return reply(std::move(o));
  }
  // An asynchronous command may throw before or after it handed `reply` on;
  // the flag keeps the answer to exactly one.
  auto answered = std::make_shared<bool>(false);
  Reply once = [answered, reply](Outcome o) {
    if (*answered) return;
    *answered = true;
    reply(std::move(o));
  };
  try {
    c->start(env, args, once);
  } catch (const std::exception& e) {
    once(Outcome::generic(name + " failed: " + e.what()));
  }
}

}  // namespace qtx::agent::qga
