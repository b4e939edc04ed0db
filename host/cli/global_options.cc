#include "global_options.h"

#include <memory>
#include <utility>
#include <vector>

namespace qtx::cli {
namespace {

// The help of a subcommand also lists the root's options that it does not
// shadow with one of its own, since they are accepted after its name.
class HelpWithGlobals : public CLI::Formatter {
 public:
  // After the command's own options and its subcommands, before the footer.
  std::string make_subcommands(const CLI::App* app, CLI::AppFormatMode mode) const override {
    std::string out = CLI::Formatter::make_subcommands(app, mode);
    const CLI::App* root = app;
    while (root->get_parent() != nullptr) root = root->get_parent();
    if (root == app || mode == CLI::AppFormatMode::Sub) return out;
    std::vector<const CLI::Option*> globals = root->get_options([&](const CLI::Option* opt) {
      if (opt == root->get_help_ptr() || opt == root->get_version_ptr() || !opt->nonpositional()) return false;
      for (const CLI::App* a = app; a != root; a = a->get_parent()) {
        for (const auto& name : opt->get_lnames()) {
          if (a->get_option_no_throw("--" + name) != nullptr) return false;
        }
      }
      return true;
    });
    if (!globals.empty()) out += make_group("Global options (before or after the command)", false, globals);
    return out;
  }
};

}  // namespace

void add_global_options(CLI::App& app, GlobalOptions& g) {
  app.fallthrough();
  app.formatter(std::make_shared<HelpWithGlobals>());
  app.add_option("-s,--socket", g.socket, "The VM's channel socket (QEMU chardev); default $QTX_SOCKET")
      ->envname("QTX_SOCKET");
  app.add_flag("--listen", g.listen, "Listen on the socket and let QEMU connect (chardev server=off)");
  app.add_flag("--json", g.json, "Machine-readable output: one JSON document on stdout");
  app.add_option("--connect-timeout", g.connect_timeout, "Seconds to wait for the agent's handshake (default 5)")
      ->check(CLI::PositiveNumber);
  app.add_option("--timeout", g.timeout,
                 "Seconds the command may take once connected, 0 for none; past it the command exits 5. Default: "
                 "30; freeze and thaw 120; cp 60 plus 1 per MiB; exec none (with exec --timeout S: S plus 30); "
                 "telemetry --watch none")
      ->check(CLI::NonNegativeNumber);
  // Before and after the command name: the later one wins.
  for (CLI::Option* opt : app.get_options()) {
    if (opt != app.get_help_ptr() && opt != app.get_version_ptr())
      opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  }
}

}  // namespace qtx::cli
