// Hydration controls that outlive a mount: a request from `clonefs hydrate` is applied to the
// running hydrator and saved in the metadata; the controls given at mount are applied over the
// saved ones and saved in turn. The daemon's side; the CLI only parses (control_protocol.h).
#pragma once

#include <span>

#include "control/control_protocol.h"
#include "engine/hydrator.h"
#include "meta/hydration_settings.h"

namespace clonefs {

// Applies `command` to a running hydrator, without saving it.
void apply_hydrate_command(Hydrator& hydrator, const HydrateCommand& command);
// Applies a part of a plan (replacing or extending the hydrator's plan).
void apply_plan_command(Hydrator& hydrator, const PlanCommand& command);

// `settings` after `command` (a hold pauses, as a pause does).
HydrationSettings with_command(HydrationSettings settings, const HydrateCommand& command);

// The controls a mount starts with: those saved, else the defaults, with `given` (the mount's
// own flags) applied over them. What the flags changed is saved before the mount goes on, so a
// clone cannot run with controls its next mount would not know.
Result<HydrationSettings> settings_for_mount(HydrationSettingsStore& store,
                                             std::span<const HydrateCommand> given);

// Applies `command` to the running hydrator, then saves the hydrator's controls so the next
// mount starts with them. A hold (unmount's pause for its final commit) is not saved: it is not
// the user's. An error means the command is applied but not saved (never EINVAL, which the
// channel keeps for a refused request).
Status steer_hydration(Hydrator& hydrator, HydrationSettingsStore& store,
                       const HydrateCommand& command);

}  // namespace clonefs
