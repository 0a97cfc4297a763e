#include "fuse/mount_profiles.h"

namespace clonefs {
namespace {

// A successor records into the profile its killed predecessor was recording (its last periodic
// write): without this, the successor's first write would replace the mount's profile with only
// what came after the kill. A file missing or unusable starts the recording afresh, as a mount.
void resume_recording(ProfileRecorder& recorder, const std::string& path, spdlog::logger& log) {
  auto earlier = read_profile(path);
  if (!earlier) {
    if (earlier.status().code() != ENOENT) {
      log.warn("recording the access profile afresh: {}", earlier.status().message());
    }
    return;
  }
  if (Status resumed = recorder.resume(*earlier); !resumed) {
    log.warn("recording the access profile afresh: {}", resumed.message());
  } else {
    log.info("access profile {}: carrying on the previous serving process's {} runs", path,
             earlier->runs.size());
  }
}

}  // namespace

Result<std::vector<RegionRun>> profile_hydration_plan(const std::string& profile_path,
                                                      Clone& clone) {
  if (profile_path.empty()) return std::vector<RegionRun>{};
  auto profile = read_profile(profile_path);
  if (!profile) return profile.status();
  return profile_plan(*profile, profile_path, clone.record(), clone.engine().geometry());
}

ProfileRecording::ProfileRecording(const std::string& path, Clone& clone, bool resume,
                                   spdlog::logger& log)
    : clone_(clone), log_(log), path_(path) {
  if (path_.empty()) return;
  recorder_.emplace(path_, clone_.record(), clone_.engine().geometry());
  if (resume) resume_recording(*recorder_, path_, log_);
  clone_.engine().add_observer(&*recorder_);
}

void ProfileRecording::finish() {
  if (!recorder_) return;
  clone_.engine().remove_observer(&*recorder_);
  if (Status written = recorder_->stop(); !written) {
    log_.error("cannot write the access profile: {}", written.message());
  } else {
    log_.info("access profile written to {} ({} runs)", path_, recorder_->snapshot().runs.size());
  }
}

void ProfileRecording::abandon() {
  if (recorder_) clone_.engine().remove_observer(&*recorder_);
}

}  // namespace clonefs
