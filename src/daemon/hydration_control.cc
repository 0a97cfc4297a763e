#include "daemon/hydration_control.h"

#include <mutex>

namespace clonefs {

HydrationSettings with_command(HydrationSettings settings, const HydrateCommand& command) {
  switch (command.kind) {
    case HydrateCommand::Kind::kPause:
    case HydrateCommand::Kind::kHold:
      settings.paused = true;
      break;
    case HydrateCommand::Kind::kResume:
      settings.paused = false;
      break;
    case HydrateCommand::Kind::kThreshold:
      settings.threshold = command.value;
      break;
    case HydrateCommand::Kind::kBatch:
      settings.batch = command.value;
      break;
    case HydrateCommand::Kind::kRate:
      settings.rate = command.value;
      break;
  }
  return settings;
}

Result<HydrationSettings> settings_for_mount(HydrationSettingsStore& store,
                                             std::span<const HydrateCommand> given) {
  auto saved = store.load_hydration_settings();
  if (!saved) return saved.status();
  HydrationSettings settings = saved->value_or(HydrationSettings{});
  for (const HydrateCommand& command : given) settings = with_command(settings, command);
  if (!given.empty() && settings != saved->value_or(HydrationSettings{})) {
    CLONEFS_RETURN_IF_ERROR(store.save_hydration_settings(settings).with_context(
        "cannot save the hydration controls given at mount"));
  }
  return settings;
}

Status steer_hydration(Hydrator& hydrator, HydrationSettingsStore& store,
                       const HydrateCommand& command) {
  // One request at a time from apply to save, so that two at once cannot save in the wrong
  // order and leave the metadata with a control the hydrator no longer has.
  static std::mutex one_at_a_time;
  std::lock_guard lock(one_at_a_time);
  apply_hydrate_command(hydrator, command);
  if (command.kind == HydrateCommand::Kind::kHold) return Status::ok();
  Status saved = store.save_hydration_settings(hydrator.status().settings);
  if (saved) return saved;
  // On the channel EINVAL means "refused"; this request was applied.
  return Status::error(saved.code() == EINVAL ? EIO : saved.code(),
                       "hydration control \"" + format_hydrate_command(command) +
                           "\" applied, but not saved for the next mount: " + saved.message());
}

void apply_hydrate_command(Hydrator& hydrator, const HydrateCommand& command) {
  switch (command.kind) {
    case HydrateCommand::Kind::kPause:
    case HydrateCommand::Kind::kHold:
      hydrator.set_paused(true);
      break;
    case HydrateCommand::Kind::kResume:
      hydrator.set_paused(false);
      break;
    case HydrateCommand::Kind::kThreshold:
      hydrator.set_threshold(command.value);
      break;
    case HydrateCommand::Kind::kBatch:
      hydrator.set_batch(command.value);
      break;
    case HydrateCommand::Kind::kRate:
      hydrator.set_rate(command.value);
      break;
  }
}

void apply_plan_command(Hydrator& hydrator, const PlanCommand& command) {
  if (command.append) {
    hydrator.append_plan(command.runs);
  } else {
    hydrator.set_plan(command.runs);
  }
}

}  // namespace clonefs
