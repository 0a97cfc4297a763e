// The control channel between the `clonefs` CLI and a running mount: two ioctls on the IMAGE,
// served by the FUSE adapter. FUSE forwards "restricted" ioctls, whose argument size is encoded in
// the request number, so both carry one fixed-size text buffer.
//
//   kStatusIoctl   (_IOR) -> ControlText: the status JSON (status.h), NUL-terminated
//   kHydrateIoctl  (_IOW) <- ControlText: "pause" | "resume" | "threshold=N" | "batch=N" |
//                            "rate=N" (N decimal; rate in bytes per second, 0 = unlimited) |
//                            "hold" (a pause not saved for the next mount) |
//                            "plan=F+N,F+N,..." (hydrate these runs of regions first, in this
//                            order, replacing the plan) | "plan+=F+N,..." (appended to it): a
//                            plan too long for one request is sent in several
//                            (format_plan_commands)
//
// Only root and the user who mounted may use them (EACCES). Why not extended attributes: FUSE
// clears SB_NOSEC, so the kernel asks a file system that answers getxattr for
// security.capability before every write(2) — one more round trip per write. Measured with fio
// 4 KiB random writes at QD16 on a hydrated image: 48k IOPS with an xattr channel, 70k without.
#pragma once

#include <linux/ioctl.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "meta/hydration_settings.h"
#include "meta/region_run.h"
#include "util/status.h"

namespace clonefs {

// The largest argument a restricted ioctl can carry (the size field of the request number).
struct ControlText {
  char text[(1u << _IOC_SIZEBITS) - 1];
};

inline constexpr unsigned kControlIoctlType = 0xCF;
inline constexpr unsigned kStatusIoctl = _IOR(kControlIoctlType, 1, ControlText);
inline constexpr unsigned kHydrateIoctl = _IOW(kControlIoctlType, 2, ControlText);

// Not part of the channel: a real extended attribute the daemon sets on the file IMAGE before
// mounting over it, so that `clonefs status IMAGE` finds the metadata while unmounted.
inline constexpr const char* kMetadataXattr = "user.clonefs.metadata";
// Also not part of the channel: marks an IMAGE file the mount created (it was missing), so that
// it is removed after the unmount even when the daemon that created it was killed.
inline constexpr const char* kCreatedImageXattr = "user.clonefs.created";

// One hydration control request, as sent through kHydrateIoctl.
struct HydrateCommand {
  // kHold: a pause that is not saved for the next mount (unmount's, for its final commit).
  enum class Kind { kPause, kResume, kThreshold, kBatch, kRate, kHold } kind = Kind::kPause;
  uint64_t value = 0;  // for kThreshold, kBatch, kRate
};

// Parses a request's text; EINVAL naming the text on anything else, and on a batch or threshold
// above kMaxHydrationBatch or kMaxHydrationThreshold (naming the limit).
Result<HydrateCommand> parse_hydrate_command(std::string_view text);
// The inverse, for the CLI.
std::string format_hydrate_command(const HydrateCommand& command);

// A part of a plan, as sent through kHydrateIoctl (not a control: nothing of it is saved).
struct PlanCommand {
  bool append = false;  // false: replaces the plan
  std::vector<RegionRun> runs;
};
bool is_plan_command(std::string_view text);
// EINVAL naming the run on anything malformed (a count of 0 included).
Result<PlanCommand> parse_plan_command(std::string_view text);
// The requests carrying `runs`, each fitting a ControlText: the first replaces the plan.
std::vector<std::string> format_plan_commands(const std::vector<RegionRun>& runs);

}  // namespace clonefs
