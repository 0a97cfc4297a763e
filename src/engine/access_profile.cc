#include "engine/access_profile.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <sstream>

#include "io/posix_devices.h"
#include "io/safe_files.h"
#include "io/unique_fd.h"

namespace clonefs {
namespace {

constexpr std::string_view kMagic = "clonefs-profile 1";

Status malformed(const std::string& origin, uint64_t line, const std::string& what) {
  return Status::error(EINVAL, "profile " + origin + " line " + std::to_string(line) + ": " + what +
                                   " (not a clonefs access profile? see docs/PROFILE.md)");
}

bool parse_u64(std::string_view text, uint64_t& value) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::string format_profile(const AccessProfile& profile) {
  std::string out;
  out.reserve(128 + profile.runs.size() * 20);
  out += kMagic;
  out += "\nsource-size " + std::to_string(profile.source_size);
  out += "\nsource-fingerprint " + profile.source_fingerprint;
  out += "\nregion-size " + std::to_string(profile.region_size);
  out += "\nruns " + std::to_string(profile.runs.size()) + "\n";
  for (const RegionRun& run : profile.runs) {
    out += std::to_string(run.first) + " " + std::to_string(run.count) + "\n";
  }
  out += "end\n";
  return out;
}

Result<AccessProfile> parse_profile(const std::string& text, const std::string& origin) {
  std::istringstream in(text);
  std::string line;
  uint64_t number = 0;
  auto next = [&]() -> bool {
    ++number;
    return static_cast<bool>(std::getline(in, line));
  };
  // "key value" with a decimal or (fingerprint) non-empty value.
  auto field = [&](std::string_view key, std::string& value) -> Status {
    if (!next()) return malformed(origin, number, "ends before \"" + std::string(key) + "\"");
    if (!line.starts_with(std::string(key) + " ") || line.size() == key.size() + 1) {
      return malformed(origin, number, "expected \"" + std::string(key) + " VALUE\"");
    }
    value = line.substr(key.size() + 1);
    return Status::ok();
  };
  auto numeric = [&](std::string_view key, uint64_t& value) -> Status {
    std::string text_value;
    CLONEFS_RETURN_IF_ERROR(field(key, text_value));
    if (!parse_u64(text_value, value)) {
      return malformed(origin, number, "\"" + text_value + "\" is not a decimal number");
    }
    return Status::ok();
  };
  if (!next() || line != kMagic) {
    return malformed(origin, number, "expected \"" + std::string(kMagic) + "\"");
  }
  AccessProfile profile;
  uint64_t runs = 0;
  CLONEFS_RETURN_IF_ERROR(numeric("source-size", profile.source_size));
  CLONEFS_RETURN_IF_ERROR(field("source-fingerprint", profile.source_fingerprint));
  CLONEFS_RETURN_IF_ERROR(numeric("region-size", profile.region_size));
  CLONEFS_RETURN_IF_ERROR(numeric("runs", runs));
  if (profile.region_size == 0) return malformed(origin, number - 1, "region size 0");
  if (runs > kMaxProfileRuns) {
    return malformed(origin, number, "more than " + std::to_string(kMaxProfileRuns) + " runs");
  }
  profile.runs.reserve(runs);
  for (uint64_t i = 0; i < runs; ++i) {
    if (!next()) return malformed(origin, number, "ends after " + std::to_string(i) + " runs");
    const auto space = line.find(' ');
    RegionRun run;
    if (space == std::string::npos ||
        !parse_u64(std::string_view(line).substr(0, space), run.first) ||
        !parse_u64(std::string_view(line).substr(space + 1), run.count) || run.count == 0) {
      return malformed(origin, number, "expected \"FIRST COUNT\", got \"" + line + "\"");
    }
    profile.runs.push_back(run);
  }
  if (!next() || line != "end") return malformed(origin, number, "expected \"end\"");
  return profile;
}

Status write_profile(const std::string& path, const AccessProfile& profile) {
  // Durable: a profile is kept across mounts and read back by a restarted serving process.
  return replace_file(path, format_profile(profile), {.mode = 0644, .durable = true})
      .with_context("profile");
}

Result<AccessProfile> read_profile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::from_errno(errno, "profile " + path);
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::from_errno(errno, "read profile " + path);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    // The largest valid profile is well under this: anything bigger is not one.
    if (text.size() > (kMaxProfileRuns + 16) * 48) {
      return Status::error(EINVAL, "profile " + path +
                                       " is too large: not a clonefs access profile (see "
                                       "docs/PROFILE.md)");
    }
  }
  return parse_profile(text, path);
}

Result<std::vector<RegionRun>> profile_plan(const AccessProfile& profile, const std::string& path,
                                            const CloneRecord& record, const Geometry& geometry) {
  if (profile.source_size != record.source_size ||
      profile.source_fingerprint != record.source_fingerprint) {
    return Status::error(EINVAL, "profile " + path + " was recorded on another source (size " +
                                     std::to_string(profile.source_size) + ", fingerprint " +
                                     profile.source_fingerprint + "); this clone's source " +
                                     record.source_path + " has size " +
                                     std::to_string(record.source_size) + ", fingerprint " +
                                     record.source_fingerprint);
  }
  std::vector<RegionRun> plan;
  plan.reserve(profile.runs.size());
  for (const RegionRun& run : profile.runs) {
    // Bytes of the profile's regions, clamped to the image, then this clone's regions.
    if (run.first > geometry.image_size() / profile.region_size) continue;
    const uint64_t begin = run.first * profile.region_size;
    const uint64_t end =
        std::min(geometry.image_size(),
                 begin + std::min(run.count, geometry.image_size() / profile.region_size + 1) *
                             profile.region_size);
    if (begin >= end) continue;
    const uint64_t first = geometry.region_of(begin);
    plan.push_back({first, geometry.region_of(end - 1) - first + 1});
  }
  return plan;
}

ProfileRecorder::ProfileRecorder(std::string path, const CloneRecord& record,
                                 const Geometry& geometry, std::chrono::milliseconds period,
                                 uint64_t max_runs)
    : path_(std::move(path)),
      period_(period),
      max_runs_(max_runs),
      region_count_(geometry.region_count()),
      seen_((geometry.region_count() + 63) / 64) {
  profile_.source_size = record.source_size;
  profile_.source_fingerprint = record.source_fingerprint;
  profile_.region_size = geometry.region_size();
  writer_ = std::thread([this] { writer_loop(); });
}

ProfileRecorder::~ProfileRecorder() { (void)stop(false); }

void ProfileRecorder::regions_accessed(uint64_t first, uint64_t count) noexcept {
  const uint64_t end = std::min(region_count_, first + count);
  auto seen = [&](uint64_t r) {
    return (seen_[r / 64].load(std::memory_order_relaxed) >> (r % 64)) & 1;
  };
  uint64_t r = first;
  while (r < end && seen(r)) ++r;
  if (r == end) return;
  std::lock_guard lock(mu_);
  if (full_ || stopping_) return;
  for (; r < end; ++r) {
    if (seen(r)) continue;
    seen_[r / 64].fetch_or(uint64_t{1} << (r % 64), std::memory_order_relaxed);
    std::vector<RegionRun>& runs = profile_.runs;
    if (!runs.empty() && runs.back().first + runs.back().count == r) {
      ++runs.back().count;
    } else if (runs.size() < max_runs_) {
      runs.push_back({r, 1});
    } else {
      full_ = true;
      return;
    }
    ++generation_;
  }
}

Status ProfileRecorder::resume(const AccessProfile& earlier) {
  std::lock_guard lock(mu_);
  if (earlier.source_size != profile_.source_size ||
      earlier.source_fingerprint != profile_.source_fingerprint ||
      earlier.region_size != profile_.region_size) {
    return Status::error(EINVAL, "profile " + path_ + " was recorded for another clone");
  }
  for (const RegionRun& run : earlier.runs) {
    if (run.count == 0 || run.first >= region_count_ || run.count > region_count_ - run.first)
      return Status::error(EINVAL, "profile " + path_ + " has a run past the image's end");
  }
  profile_.runs = earlier.runs;
  if (profile_.runs.size() > max_runs_) profile_.runs.resize(max_runs_);
  for (const RegionRun& run : profile_.runs) {
    for (uint64_t r = run.first; r < run.first + run.count; ++r)
      seen_[r / 64].fetch_or(uint64_t{1} << (r % 64), std::memory_order_relaxed);
  }
  return Status::ok();
}

AccessProfile ProfileRecorder::snapshot() const {
  std::lock_guard lock(mu_);
  return profile_;
}

Status ProfileRecorder::write_now() {
  std::lock_guard writing(write_mu_);
  AccessProfile profile;
  uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    if (generation_ == written_ && written_ != 0) return Status::ok();
    profile = profile_;
    generation = generation_;
  }
  CLONEFS_RETURN_IF_ERROR(write_profile(path_, profile));
  std::lock_guard lock(mu_);
  written_ = std::max(written_, generation);
  return Status::ok();
}

void ProfileRecorder::writer_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, period_, [&] { return stopping_; });
    if (stopping_ || generation_ == written_) continue;
    lock.unlock();
    (void)write_now();  // a failed periodic write is tried again; stop() reports its own
    lock.lock();
  }
}

Status ProfileRecorder::stop(bool write) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !writer_.joinable()) return Status::ok();
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  return write ? write_now() : Status::ok();
}

}  // namespace clonefs
