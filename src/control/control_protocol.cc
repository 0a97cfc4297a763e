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

bool is_plan_command(std::string_view text) { return text.starts_with("plan"); }

Result<PlanCommand> parse_plan_command(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.remove_suffix(1);
  PlanCommand command;
  std::string_view list;
  if (text.starts_with("plan+=")) {
    command.append = true;
    list = text.substr(6);
  } else if (text.starts_with("plan=")) {
    list = text.substr(5);
  } else {
    return Status::error(EINVAL, "unknown plan request \"" + std::string(text.substr(0, 40)) +
                                     "\" (expected plan=F+N,... or plan+=F+N,...)");
  }
  if (list.ends_with(',')) {
    return Status::error(EINVAL, "plan request: a run is missing after the last comma");
  }
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    const size_t plus = item.find('+');
    auto first = parse_decimal(item.substr(0, plus), item);
    auto count = plus == std::string_view::npos ? Result<uint64_t>(Status::error(EINVAL, ""))
                                                : parse_decimal(item.substr(plus + 1), item);
    if (!first || !count || *count == 0) {
      return Status::error(EINVAL, "plan request: \"" + std::string(item) +
                                       "\" is not FIRST+COUNT (regions, count at least 1)");
    }
    command.runs.push_back({*first, *count});
  }
  return command;
}

std::vector<std::string> format_plan_commands(const std::vector<RegionRun>& runs) {
  std::vector<std::string> out;
  // Room for the NUL and one more run, whatever its digits.
  const size_t limit = sizeof(ControlText::text) - 48;
  std::string current = "plan=";
  bool first_item = true;
  for (const RegionRun& run : runs) {
    if (current.size() > limit) {
      out.push_back(std::move(current));
      current = "plan+=";
      first_item = true;
    }
    if (!first_item) current += ',';
    current += std::to_string(run.first) + "+" + std::to_string(run.count);
    first_item = false;
  }
  out.push_back(std::move(current));
  return out;
}

}  // namespace clonefs
