// `clonefs hydrate IMAGE --profile FILE | --files PATH...`: what to hydrate first, worked out by
// the CLI (the profile checked against the clone's source, the files' extents found) and sent to
// the daemon as a plan of region runs.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace clonefs::cli {

// Sends the plan; returns the line to print ("N regions of PROFILE queued first").
Result<std::string> send_profile_plan(const std::string& image, const std::string& profile);
Result<std::string> send_files_plan(const std::string& image,
                                    const std::vector<std::string>& paths);

}  // namespace clonefs::cli
