#include "app.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "version.h"

namespace clonefs::cli {

int fail(const Status& status) {
  std::fprintf(stderr, "clonefs: %s\n", status.message().c_str());
  return kExitError;
}

int usage_error(const Status& status) {
  std::fprintf(stderr, "clonefs: %s\n", status.message().c_str());
  return kExitUsage;
}

void warn(const std::string& message) { std::fprintf(stderr, "clonefs: %s\n", message.c_str()); }

int run(int argc, char** argv) {
  CLI::App app{
      "clonefs: dm-clone in userspace. Presents a read-only SOURCE image as one writable file "
      "(IMAGE),\n"
      "backed by a DESTINATION raw file that is filled in the background; a SQLite METADATA file "
      "records\n"
      "which regions the destination holds. Attach IMAGE with losetup, mkfs, mount.",
      "clonefs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", version_text(),
                       "Print the version and the git commit it was built from");
  app.footer("Run 'clonefs SUBCOMMAND --help' for a subcommand's options.");
  std::vector<Command> commands = {add_create_command(app),  add_mount_command(app),
                                   add_status_command(app),  add_unmount_command(app),
                                   add_hydrate_command(app), add_finalize_command(app)};
  for (const Command& command : commands)
    command.app->footer("");  // the root's footer is for the root
  // CLI11 would only say "A subcommand is required" for a misspelt one; name it instead.
  auto known = [&](const std::string& name) {
    return std::any_of(commands.begin(), commands.end(),
                       [&](const Command& c) { return c.app->get_name() == name; });
  };
  if (argc > 1 && argv[1][0] != '-' && !known(argv[1])) {
    std::fprintf(
        stderr,
        "clonefs: unknown subcommand \"%s\" (expected create, mount, status, unmount, hydrate or "
        "finalize)\nRun 'clonefs --help' for usage.\n",
        argv[1]);
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "clonefs: %s\nRun 'clonefs --help' for usage.\n", e.what());
    return kExitUsage;
  }
  for (const Command& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  return kExitUsage;  // unreachable: a subcommand is required
}

}  // namespace clonefs::cli
