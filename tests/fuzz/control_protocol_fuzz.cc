// The control channel's request texts (control/control_protocol.h), as the daemon parses what a
// local user sends through the ioctl: OK or one refusal; what it accepts formats back to text it
// parses to the same request.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "control/control_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (clonefs::is_plan_command(text)) {
    auto plan = clonefs::parse_plan_command(text);
    if (plan.is_ok()) {
      for (const clonefs::RegionRun& run : plan->runs)
        if (run.count == 0) std::abort();
      for (const std::string& part : clonefs::format_plan_commands(plan->runs))
        if (!clonefs::parse_plan_command(part).is_ok()) std::abort();
    }
    return 0;
  }
  auto command = clonefs::parse_hydrate_command(text);
  if (!command.is_ok()) return 0;
  auto again = clonefs::parse_hydrate_command(clonefs::format_hydrate_command(*command));
  if (!again.is_ok() || again->kind != command->kind || again->value != command->value)
    std::abort();
  return 0;
}
