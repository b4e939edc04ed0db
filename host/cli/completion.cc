#include "completion.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

namespace qtx::cli {
namespace {

constexpr const char* kCommandName = "completion";

// What the shell needs to know at one command path ("" for the root,
// "vm wiring" for a nested one): its subcommands, the options accepted
// there (its own and the global ones) and which of those take a value.
struct CommandNode {
  std::string path;
  std::vector<std::string> subcommands;
  std::vector<std::string> options;
  std::vector<std::string> valued;  // options followed by a value
};

void add_option_names(const CLI::Option* opt, CommandNode* node) {
  if (!opt->nonpositional()) return;
  std::vector<std::string> names;
  for (const auto& s : opt->get_snames()) names.push_back("-" + s);
  for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
  for (auto& n : names) {
    // A command's own option shadows the global one of the same name.
    if (std::find(node->options.begin(), node->options.end(), n) != node->options.end()) continue;
    if (opt->get_expected_min() > 0) node->valued.push_back(n);  // not a flag
    node->options.push_back(std::move(n));
  }
}

void collect(const CLI::App& app, const CLI::App& root, const std::string& path, std::vector<CommandNode>* out) {
  CommandNode node;
  node.path = path;
  for (const CLI::Option* opt : app.get_options()) add_option_names(opt, &node);
  // Global options are accepted after any command name (global_options.h).
  if (&app != &root) {
    for (const CLI::Option* opt : root.get_options()) add_option_names(opt, &node);
  }
  std::vector<const CLI::App*> children;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name().empty() || sub->get_name() == kCommandName || sub->get_group().empty()) continue;
    node.subcommands.push_back(sub->get_name());
    children.push_back(sub);
  }
  out->push_back(node);
  for (const CLI::App* sub : children) {
    collect(*sub, root, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
  }
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

// The tables as shell functions; bash and zsh read them alike.
//   _qtx_subcommands PATH   the subcommands at PATH
//   _qtx_options PATH       the options accepted at PATH
//   _qtx_takes_value PATH OPTION   true when OPTION at PATH is followed by a value
// Names hold no quote or space (they are option and command names).
std::string tables(const std::vector<CommandNode>& nodes) {
  std::string subs = "_qtx_subcommands() {\n  case \"$1\" in\n";
  std::string opts = "_qtx_options() {\n  case \"$1\" in\n";
  std::string valued = "_qtx_takes_value() {\n  case \"$1|$2\" in\n";
  std::string valued_cases;
  for (const auto& n : nodes) {
    subs += "    \"" + n.path + "\") echo \"" + join(n.subcommands) + "\" ;;\n";
    opts += "    \"" + n.path + "\") echo \"" + join(n.options) + "\" ;;\n";
    for (const auto& v : n.valued) valued_cases += (valued_cases.empty() ? "    \"" : "|\"") + n.path + "|" + v + "\"";
  }
  subs += "  esac\n}\n";
  opts += "  esac\n}\n";
  if (!valued_cases.empty()) valued += valued_cases + ") return 0 ;;\n";
  valued += "  esac\n  return 1\n}\n";
  return subs + opts + valued;
}

constexpr const char* kBash = R"sh(
# The command path of the words before the cursor: subcommand names,
# skipping options and their values; stops at "--" (the rest is a guest
# command line).
_qtx() {
  local cur="${COMP_WORDS[COMP_CWORD]}" prev="" cmdpath="" i w
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${COMP_WORDS[i]}"
    [[ "$w" == "--" ]] && return 0
    if [[ "$w" == -* ]]; then
      if [[ "$w" != *=* ]] && _qtx_takes_value "$cmdpath" "$w"; then ((i++)); fi
      continue
    fi
    if [[ " $(_qtx_subcommands "$cmdpath") " == *" $w "* ]]; then cmdpath="${cmdpath:+$cmdpath }$w"; fi
  done
  ((COMP_CWORD > 1)) && prev="${COMP_WORDS[COMP_CWORD-1]}"
  if [[ "$prev" == -* ]] && _qtx_takes_value "$cmdpath" "$prev"; then
    COMPREPLY=($(compgen -f -- "$cur"))
  elif [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_qtx_options "$cmdpath")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_qtx_subcommands "$cmdpath")" -- "$cur"))
    ((${#COMPREPLY[@]} == 0)) && COMPREPLY=($(compgen -f -- "$cur"))
  fi
  return 0
}
complete -F _qtx qtx
)sh";

constexpr const char* kZsh = R"sh(
# The command path of the words before the cursor, as in the bash script.
_qtx() {
  local cmdpath="" w prev=""
  local -i i
  for ((i = 2; i < CURRENT; i++)); do
    w="${words[i]}"
    if [[ "$w" == "--" ]]; then _files; return; fi
    if [[ "$w" == -* ]]; then
      if [[ "$w" != *=* ]] && _qtx_takes_value "$cmdpath" "$w"; then ((i++)); fi
      continue
    fi
    if [[ " $(_qtx_subcommands "$cmdpath") " == *" $w "* ]]; then cmdpath="${cmdpath:+$cmdpath }$w"; fi
  done
  ((CURRENT > 2)) && prev="${words[CURRENT-1]}"
  if [[ "$prev" == -* ]] && _qtx_takes_value "$cmdpath" "$prev"; then
    _files
  elif [[ "${words[CURRENT]}" == -* ]]; then
    compadd -- ${=$(_qtx_options "$cmdpath")}
  else
    local -a subs
    subs=(${=$(_qtx_subcommands "$cmdpath")})
    if ((${#subs})); then compadd -- $subs; else _files; fi
  fi
}
_qtx "$@"
)sh";

}  // namespace

std::string completion_script(const CLI::App& app, const std::string& shell) {
  std::vector<CommandNode> nodes;
  collect(app, app, "", &nodes);
  const bool zsh = shell == "zsh";
  std::string s = zsh ? "#compdef qtx\n" : "";
  s += "# " + std::string(zsh ? "zsh" : "bash") + " completion for qtx, generated by `qtx completion " + shell +
       "` from its command line.\n";
  return s + tables(nodes) + (zsh ? kZsh : kBash);
}

void add_completion_command(CLI::App& app, std::function<int()>* run) {
  auto shell = std::make_shared<std::string>();
  auto* c = app.add_subcommand(kCommandName, "Print the bash or zsh completion script");
  c->group("");  // hidden: the package installs the scripts
  c->add_option("shell", *shell, "bash or zsh")->required()->check(CLI::IsMember({"bash", "zsh"}));
  const CLI::App* root = &app;
  c->callback([root, shell, run] {
    *run = [root, shell] {
      std::fputs(completion_script(*root, *shell).c_str(), stdout);
      return 0;
    };
  });
}

}  // namespace qtx::cli
