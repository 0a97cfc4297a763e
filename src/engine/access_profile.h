// Access profiles (docs/PROFILE.md): the order in which a mount first used the image's regions,
// recorded as runs of regions, replayed on another clone of the same source to hydrate those
// regions first.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/access_observer.h"
#include "meta/geometry.h"
#include "meta/metadata_store.h"
#include "meta/region_run.h"
#include "util/status.h"

namespace clonefs {

// The most runs a profile holds (about 1.3 MiB of text): a boot or a job start touches far
// fewer; past it, recording stops and what was recorded is kept.
inline constexpr uint64_t kMaxProfileRuns = 65536;

struct AccessProfile {
  uint64_t source_size = 0;
  std::string source_fingerprint;
  uint64_t region_size = 0;
  std::vector<RegionRun> runs;  // in the order first used; regions of region_size
};

// The text form, docs/PROFILE.md.
std::string format_profile(const AccessProfile& profile);
// EINVAL naming `origin` and the line on anything malformed.
Result<AccessProfile> parse_profile(const std::string& text, const std::string& origin);
// Writes `path` atomically: a temporary file beside it, fsync, rename, fsync of the directory.
Status write_profile(const std::string& path, const AccessProfile& profile);
Result<AccessProfile> read_profile(const std::string& path);

// The profile's runs in the regions of `geometry`, refusing a profile of another source
// (EINVAL naming the file and both identities). A profile recorded at another region size is
// converted (a run covers every region it touches).
Result<std::vector<RegionRun>> profile_plan(const AccessProfile& profile, const std::string& path,
                                            const CloneRecord& record, const Geometry& geometry);

// Records the order of first use of the regions while it observes the engine, and writes the
// profile every `period` when it grew and at stop().
class ProfileRecorder : public AccessObserver {
 public:
  ProfileRecorder(std::string path, const CloneRecord& record, const Geometry& geometry,
                  std::chrono::milliseconds period = std::chrono::seconds(10),
                  uint64_t max_runs = kMaxProfileRuns);
  ~ProfileRecorder() override;  // stops without writing if stop() was not called
  ProfileRecorder(const ProfileRecorder&) = delete;
  ProfileRecorder& operator=(const ProfileRecorder&) = delete;

  // Carries on a recording a killed serving process of the same mount left in the file (its
  // last periodic write): `earlier`'s runs come first, their regions are not recorded again.
  // Before the recorder observes anything. EINVAL, changing nothing, for a profile of another
  // source or region size.
  Status resume(const AccessProfile& earlier);
  // Stops the periodic writer and, if `write`, writes the profile a last time.
  Status stop(bool write = true);
  AccessProfile snapshot() const;

  void user_io() noexcept override {}
  void read_fell_through(uint64_t, uint64_t, RegionRun) noexcept override {}
  void regions_accessed(uint64_t first, uint64_t count) noexcept override;

 private:
  void writer_loop();
  Status write_now();

  const std::string path_;
  const std::chrono::milliseconds period_;
  const uint64_t max_runs_;
  const uint64_t region_count_;
  // One bit per region first used; read without mu_ so regions already seen cost no lock.
  std::vector<std::atomic<uint64_t>> seen_;
  mutable std::mutex mu_;
  AccessProfile profile_;    // guarded by mu_
  uint64_t generation_ = 0;  // guarded by mu_: bumped by every new run or region
  uint64_t written_ = 0;     // guarded by mu_: the generation last written
  bool full_ = false;        // guarded by mu_
  bool stopping_ = false;    // guarded by mu_
  std::condition_variable wake_;
  std::mutex write_mu_;  // one write of the file at a time
  std::thread writer_;
};

}  // namespace clonefs
