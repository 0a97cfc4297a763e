// The hydration controls as command-line flags, shared by `mount` (the controls to start with)
// and `hydrate` (to change them at runtime), so both parse and limit them alike.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "control/control_protocol.h"

namespace clonefs::cli {

struct HydrationFlags {
  std::string rate;
  uint64_t threshold = 0, batch = 0;  // 0: not given
};

// --threshold, --batch, --rate.
void add_hydration_flags(CLI::App* app, HydrationFlags& flags);
// The requests the flags stand for, each checked as the daemon will check it (a batch or
// threshold over the limit, a rate that does not parse): EINVAL naming the value or the limit.
Result<std::vector<HydrateCommand>> hydration_commands(const HydrationFlags& flags);

}  // namespace clonefs::cli
