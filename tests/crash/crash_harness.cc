#include "crash/crash_harness.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <set>
#include <stdexcept>
#include <unordered_set>

#include "crash/crash_states.h"
#include "crash/recording_destination.h"
#include "crash/recording_vfs.h"
#include "crash/recovery_check.h"
#include "engine/clone.h"
#include "support/temp_dir.h"

namespace clonefs::crash {
namespace {

// Nothing here needs real durability (crash states are synthesised), so prefer a RAM disk: the
// live run's and the recoveries' fsyncs then cost nothing. CLONEFS_CRASH_DIR overrides.
class ScratchDir {
 public:
  ScratchDir() {
    const char* chosen = std::getenv("CLONEFS_CRASH_DIR");
    std::string base = chosen && *chosen                 ? chosen
                       : ::access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                         : "/tmp";
    std::string pattern = base + "/clonefs-crash-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp " + pattern);
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Regions of random data, of zeros and of holes, so hydration both copies and skips.
std::vector<std::byte> write_source(const std::string& path, const Geometry& g, uint64_t seed) {
  std::vector<std::byte> source(g.image_size());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(g.image_size())) != 0) {
    throw std::runtime_error("create source " + path);
  }
  std::mt19937_64 rng(seed);
  for (uint64_t r = 0; r < g.region_count(); ++r) {
    Extent e = g.region_extent(r);
    uint64_t kind = rng() % 6;  // 0: hole, 1: written zeros, else data
    if (kind == 0) continue;
    auto bytes =
        kind == 1 ? std::vector<std::byte>(e.length()) : testing::random_bytes(e.length(), rng());
    std::copy(bytes.begin(), bytes.end(), source.begin() + static_cast<ptrdiff_t>(e.begin));
    if (::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(e.begin)) !=
        static_cast<ssize_t>(bytes.size())) {
      throw std::runtime_error("write source " + path);
    }
  }
  ::close(fd);
  return source;
}

FileImage snapshot(const std::string& path) {
  if (!std::filesystem::exists(path)) return {};
  return {true, testing::read_file(path)};
}

// Runs the workload on the live clone with every persistence-relevant call recorded.
Status record_workload(const CloneFiles& files, std::span<const Op> ops,
                       const ScenarioOptions& options, ImageModel& model, Trace& trace,
                       std::vector<bool>& ever_valid, ScenarioReport& report) {
  RecordingVfs::Scope recording(files.metadata, trace);
  OpenOptions open;
  open.engine.commit_period = options.commit_period;
  open.engine.copy_on_read = options.copy_on_read;
  open.engine.best_copy_method = options.best_copy_method;
  open.metadata.vfs = RecordingVfs::kName;
  std::atomic<uint64_t> copies{0};
  open.wrappers.destination =
      [&trace, &copies,
       &options](std::unique_ptr<DestinationDevice> real) -> std::unique_ptr<DestinationDevice> {
    auto recording = std::make_unique<RecordingDestination>(std::move(real), trace, &copies);
    recording->emulate_reflink = options.emulate_reflink;
    if (options.wrap_destination) return options.wrap_destination(std::move(recording));
    return recording;
  };
  auto clone = Clone::open(files.metadata, open);
  if (!clone) return clone.status();
  report.copy_method = (*clone)->engine().copy_method();
  (*clone)->engine().set_write_through(options.write_through);
  Status ran = run_workload((*clone)->engine(), ops, model, trace, options.background_hydration);
  report.kernel_copies = copies.load();
  report.bytes_written_through = (*clone)->engine().counters().bytes_written_through.load();
  CLONEFS_RETURN_IF_ERROR(ran);
  const RegionBitmap& bits = (*clone)->engine().bitmap();
  for (uint64_t r = 0; r < bits.region_count(); ++r) ever_valid.push_back(bits.test(r));
  return Status::ok();  // the clone closes its database here, still recorded: a checkpoint
}

std::set<size_t> crash_points(const std::vector<Event>& events, size_t random_points,
                              std::mt19937_64& rng) {
  std::set<size_t> points{events.size()};
  for (size_t i = 0; i < events.size(); ++i) {
    switch (events[i].kind) {
      case EventKind::kSync:
        points.insert(i);
        points.insert(i + 1);
        break;
      case EventKind::kAck:
      case EventKind::kDelete:
      case EventKind::kTruncate:
        points.insert(i + 1);
        break;
      default:
        break;
    }
  }
  for (size_t i = 0; i < random_points; ++i) points.insert(rng() % (events.size() + 1));
  return points;
}

std::vector<CrashState> states_at(const DiskModel& disk, const ScenarioOptions& options,
                                  std::mt19937_64& rng) {
  std::vector<CrashState> states{disk.drop_pending(), disk.keep_pending()};
  if (uint64_t n = disk.enumeration_size(options.exhaustive_limit); n > 0) {
    for (uint64_t i = 0; i < n; ++i) states.push_back(disk.enumerated(i));
    return states;
  }
  for (size_t i = 0; i < options.random_states; ++i) {
    states.push_back(
        disk.random_pending(rng, /*garble=*/i % 2 == 1, "random #" + std::to_string(i + 1)));
  }
  return states;
}

std::string failure_report(uint64_t seed, std::span<const Op> ops, const std::vector<Event>& events,
                           size_t point, const CrashState& state, const std::string& broken) {
  std::string out = "seed " + std::to_string(seed) + ", crash before event " +
                    std::to_string(point) + " of " + std::to_string(events.size()) + ", state \"" +
                    state.how + "\"\n" + broken + "\nworkload: " + describe(ops) +
                    "\ntrace around the crash:";
  for (size_t i = point >= 6 ? point - 6 : 0; i < std::min(events.size(), point + 2); ++i) {
    out += (i == point ? "\n  --- power lost here ---" : "") + std::string("\n  ") +
           describe(i, events[i]);
  }
  return out;
}

// Replays the trace through the disk model and, at each crash point, recovers and checks every
// state not seen before. Stops at the first broken one.
void check_crash_states(uint64_t seed, std::span<const Op> ops, const std::vector<Event>& events,
                        FileSet initial, const ScenarioOptions& options, const CloneFiles& files,
                        Oracle& oracle, ScenarioReport& report) {
  std::mt19937_64 rng(seed ^ 0x5eedc0de);
  const std::set<size_t> points = crash_points(events, options.random_points, rng);
  report.crash_points = points.size();
  std::unordered_set<uint64_t> seen;
  DiskModel disk(std::move(initial));
  size_t next = 0;
  for (size_t point : points) {
    for (; next < point; ++next) {
      const Event& e = events[next];
      disk.apply(e);
      if (e.kind == EventKind::kAck) oracle.last_ack = e.ack.get();
      if (e.kind == EventKind::kOpBegin) oracle.ops_begun = e.op;
    }
    // The same files mean a different thing when more has been begun or acknowledged.
    const uint64_t context =
        (oracle.ops_begun << 32) ^ (oracle.last_ack ? oracle.last_ack->last_op : 0);
    for (const CrashState& state : states_at(disk, options, rng)) {
      if (!seen.insert(fingerprint(state.files) ^ (context * 0x9e3779b97f4a7c15ULL)).second)
        continue;
      ++report.states_checked;
      std::string broken = recover_and_check(files, state, oracle);
      if (!broken.empty()) {
        report.failure = failure_report(seed, ops, events, point, state, broken);
        return;
      }
    }
  }
}

}  // namespace

Geometry scenario_geometry(const ScenarioOptions& options) {
  return *Geometry::make(options.regions * options.region_size + options.tail, options.region_size);
}

ScenarioReport run_scenario(uint64_t seed, std::span<const Op> ops,
                            const ScenarioOptions& options) {
  ScenarioReport report;
  ScratchDir dir;
  const CloneFiles files{dir.file("source.img"), dir.file("dest.img"), dir.file("meta.db")};
  const Geometry geometry = scenario_geometry(options);
  ImageModel model(write_source(files.source, geometry, seed));
  Status created =
      create_clone({files.source, files.destination, files.metadata, options.region_size, false});
  if (!created.is_ok()) return {.failure = "create: " + created.message()};
  FileSet initial;
  for (size_t i = 0; i < kTracedFiles; ++i)
    initial[i] = snapshot(files.path(static_cast<TracedFile>(i)));

  Trace trace;
  Oracle oracle;
  oracle.model = &model;
  Status ran = record_workload(files, ops, options, model, trace, oracle.ever_valid, report);
  const std::vector<Event> events = trace.take();
  if (!ran.is_ok())
    return {.failure = "live run failed: " + ran.message() + "\nworkload: " + describe(ops)};
  report.trace_events = events.size();
  if (const char* verbose = std::getenv("CLONEFS_CRASH_TRACE"); verbose && *verbose) {
    std::cerr << "seed " << seed << ": " << describe(ops) << "\n";
    for (size_t i = 0; i < events.size(); ++i) std::cerr << "  " << describe(i, events[i]) << "\n";
  }

  check_crash_states(seed, ops, events, std::move(initial), options, files, oracle, report);
  return report;
}

}  // namespace clonefs::crash
