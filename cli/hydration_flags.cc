#include "hydration_flags.h"

#include "control/units.h"

namespace clonefs::cli {

void add_hydration_flags(CLI::App* app, HydrationFlags& flags) {
  app->add_option("--threshold", flags.threshold,
                  "Regions being copied at most at once (default 64, at most " +
                      std::to_string(kMaxHydrationThreshold) + ")")
      ->check(CLI::PositiveNumber);
  app->add_option("--batch", flags.batch,
                  "Contiguous regions per copy (default 16, at most " +
                      std::to_string(kMaxHydrationBatch) + ")")
      ->check(CLI::PositiveNumber);
  app->add_option("--rate", flags.rate,
                  "Copy bandwidth limit in bytes per second; units K, M, G (200M); 0 = unlimited");
}

Result<std::vector<HydrateCommand>> hydration_commands(const HydrationFlags& flags) {
  std::vector<HydrateCommand> commands;
  if (!flags.rate.empty()) {
    auto rate = parse_byte_size(flags.rate, "rate");
    if (!rate) return rate.status();
    commands.push_back({HydrateCommand::Kind::kRate, *rate});
  }
  if (flags.threshold) commands.push_back({HydrateCommand::Kind::kThreshold, flags.threshold});
  if (flags.batch) commands.push_back({HydrateCommand::Kind::kBatch, flags.batch});
  // Checked here as the daemon checks them: its refusal comes back as a bare EINVAL, and a
  // command line half applied is worse than one refused.
  for (const HydrateCommand& command : commands) {
    auto checked = parse_hydrate_command(format_hydrate_command(command));
    if (!checked) return checked.status();
  }
  return commands;
}

}  // namespace clonefs::cli
