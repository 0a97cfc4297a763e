// A mount's access profiles (docs/PROFILE.md): the one hydration follows first (--profile), and
// the one this mount records (--record-profile), which a restarted serving process carries on.
#pragma once

#include <spdlog/logger.h>

#include <optional>
#include <string>
#include <vector>

#include "engine/access_profile.h"
#include "engine/clone.h"
#include "util/status.h"

namespace clonefs {

// The runs the profile at `profile_path` has hydration copy first; none for an empty path.
// Refused if the profile is of another source: read before anything is saved, so that such a
// mount changes nothing.
Result<std::vector<RegionRun>> profile_hydration_plan(const std::string& profile_path,
                                                      Clone& clone);

// This mount's recording, from the clone's engine's user I/O, while it lives. Nothing is recorded
// for an empty path.
class ProfileRecording {
 public:
  // `resume`: a restarted serving process records into the profile its killed predecessor was
  // recording (its last periodic write).
  ProfileRecording(const std::string& path, Clone& clone, bool resume, spdlog::logger& log);
  ProfileRecording(const ProfileRecording&) = delete;
  ProfileRecording& operator=(const ProfileRecording&) = delete;

  // Before the final commit: the profile is written once the last user I/O is in.
  void finish();
  // The mount failed to start: recording stops, nothing is written.
  void abandon();

 private:
  Clone& clone_;
  spdlog::logger& log_;
  const std::string path_;
  std::optional<ProfileRecorder> recorder_;
};

}  // namespace clonefs
