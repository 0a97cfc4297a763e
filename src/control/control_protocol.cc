#include "control/control_protocol.h"

#include <charconv>
#include <cstdint>

namespace clonefs {
namespace {

Result<uint64_t> parse_decimal(std::string_view text, std::string_view whole) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Status::error(EINVAL, "hydration control \"" + std::string(whole) + "\": \"" +
                                     std::string(text) + "\" is not a non-negative decimal number");
  }
  return value;
}

}  // namespace

Result<HydrateCommand> parse_hydrate_command(std::string_view text) {
  // Tolerate a trailing newline or NUL from hand-made requests.
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.remove_suffix(1);
  if (text == "pause") return HydrateCommand{HydrateCommand::Kind::kPause, 0};
  if (text == "resume") return HydrateCommand{HydrateCommand::Kind::kResume, 0};
  if (text == "hold") return HydrateCommand{HydrateCommand::Kind::kHold, 0};
  const std::pair<std::string_view, HydrateCommand::Kind> keyed[] = {
      {"threshold=", HydrateCommand::Kind::kThreshold},
      {"batch=", HydrateCommand::Kind::kBatch},
      {"rate=", HydrateCommand::Kind::kRate}};
  for (const auto& [prefix, kind] : keyed) {
    if (!text.starts_with(prefix)) continue;
    auto value = parse_decimal(text.substr(prefix.size()), text);
    if (!value) return value.status();
    if (kind != HydrateCommand::Kind::kRate && *value == 0) {
      return Status::error(EINVAL,
                           "hydration control \"" + std::string(text) + "\": must be at least 1");
    }
    // Refused here, not clamped by the hydrator, so the CLI (which parses what it is about to
    // send) and the ioctl both say so: a batch holds that many regions in flight at once.
    const uint64_t limit = kind == HydrateCommand::Kind::kBatch       ? kMaxHydrationBatch
                           : kind == HydrateCommand::Kind::kThreshold ? kMaxHydrationThreshold
                                                                      : UINT64_MAX;
    if (*value > limit) {
      return Status::error(EINVAL, "hydration control \"" + std::string(text) + "\": at most " +
                                       std::to_string(limit) + " regions");
    }
    return HydrateCommand{kind, *value};
  }
  return Status::error(EINVAL,
                       "unknown hydration control \"" + std::string(text) +
                           "\" (expected pause, resume, hold, threshold=N, batch=N or rate=N)");
}

std::string format_hydrate_command(const HydrateCommand& command) {
  switch (command.kind) {
    case HydrateCommand::Kind::kPause:
      return "pause";
    case HydrateCommand::Kind::kResume:
      return "resume";
    case HydrateCommand::Kind::kHold:
      return "hold";
    case HydrateCommand::Kind::kThreshold:
      return "threshold=" + std::to_string(command.value);
    case HydrateCommand::Kind::kBatch:
      return "batch=" + std::to_string(command.value);
    case HydrateCommand::Kind::kRate:
      return "rate=" + std::to_string(command.value);
  }
  return "";
}

}  // namespace clonefs
