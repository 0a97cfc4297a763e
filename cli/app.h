// The clonefs command line: subcommands register their options and the function that runs
// them; run() parses and dispatches. Errors reach the user as one line, "clonefs: ...".
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "util/status.h"

namespace clonefs::cli {

inline constexpr int kExitError = 1;  // the operation failed
inline constexpr int kExitUsage = 2;  // the command line was wrong

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Command add_create_command(CLI::App& root);
Command add_mount_command(CLI::App& root);
Command add_status_command(CLI::App& root);
Command add_unmount_command(CLI::App& root);
Command add_hydrate_command(CLI::App& root);
Command add_finalize_command(CLI::App& root);

// Prints "clonefs: <message>" on stderr; returns kExitError.
int fail(const Status& status);
// For a bad value found after parsing (a size that does not parse): returns kExitUsage.
int usage_error(const Status& status);
// Prints "clonefs: <message>" on stderr without failing.
void warn(const std::string& message);

int run(int argc, char** argv);

}  // namespace clonefs::cli
