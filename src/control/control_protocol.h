// The control channel between the `clonefs` CLI and a running mount: extended attributes on the
// IMAGE, served by the FUSE adapter. Names and value formats live here so both ends agree.
//
//   getxattr user.clonefs.status    -> the status JSON (status_report.h), live
//   getxattr user.clonefs.pid       -> the daemon's pid, decimal
//   getxattr user.clonefs.metadata  -> the metadata path the image is served from
//   getxattr user.clonefs.hydrate   -> the hydration settings, "paused=0 threshold=64 batch=16
//   rate=0" setxattr user.clonefs.hydrate   <- "pause" | "resume" | "threshold=N" | "batch=N" |
//   "rate=N"
//                                      (N decimal; rate in bytes per second, 0 = unlimited)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/hydrator.h"
#include "util/status.h"

namespace clonefs {

inline constexpr const char* kStatusXattr = "user.clonefs.status";
inline constexpr const char* kPidXattr = "user.clonefs.pid";
inline constexpr const char* kMetadataXattr = "user.clonefs.metadata";
inline constexpr const char* kHydrateXattr = "user.clonefs.hydrate";

// One hydration control request, as sent through setxattr(kHydrateXattr).
struct HydrateCommand {
  enum class Kind { kPause, kResume, kThreshold, kBatch, kRate } kind = Kind::kPause;
  uint64_t value = 0;  // for kThreshold, kBatch, kRate
};

// Parses a setxattr value; EINVAL naming the text on anything else.
Result<HydrateCommand> parse_hydrate_command(std::string_view text);
// The inverse, for the CLI.
std::string format_hydrate_command(const HydrateCommand& command);
// Applies a command to a running hydrator.
void apply_hydrate_command(Hydrator& hydrator, const HydrateCommand& command);
// The getxattr(kHydrateXattr) text for the current settings.
std::string format_hydration_settings(const HydrationSettings& settings);

}  // namespace clonefs
