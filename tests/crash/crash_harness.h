// One crash scenario end to end: create a clone on a tiny seeded source in a scratch directory,
// run a workload on it with the destination and the metadata recorded, then replay the trace
// offline and recover and check crash states around every sync, after every acknowledgement
// and at random points (the approach of SQLite's crash tests, ALICE and CrashMonkey).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "crash/workload.h"
#include "io/copy_method.h"
#include "io/devices.h"

namespace clonefs::crash {

struct ScenarioOptions {
  uint64_t regions = 12;  // whole regions; plus a short last one of `tail` bytes
  uint64_t region_size = 4096;
  uint64_t tail = 1536;                        // a multiple of 512, or 0
  std::chrono::milliseconds commit_period{0};  // 0: commits only on flush and close
  bool copy_on_read = false;
  // The best copy hydration may use (scratch files on tmpfs allow copy_file_range, not reflink).
  CopyMethod best_copy_method = CopyMethod::kReflink;
  bool emulate_reflink = false;       // RecordingDestination::emulate_reflink
  bool background_hydration = false;  // a second thread hydrates while the workload runs
  bool write_through = false;         // CloneEngine::set_write_through: reads write through
  size_t random_points = 8;           // crash points drawn at random, besides those around syncs
  size_t random_states = 4;  // random pending subsets per crash point (half with torn sectors)
  uint64_t exhaustive_limit = 32;  // enumerate every subset when there are at most this many
  // Wraps the recorded destination as the engine sees it: the harness's own tests put a
  // misbehaving device here to show that the harness catches what it breaks.
  std::function<std::unique_ptr<DestinationDevice>(std::unique_ptr<DestinationDevice>)>
      wrap_destination;
};

struct ScenarioReport {
  size_t trace_events = 0;
  size_t crash_points = 0;
  size_t states_checked = 0;                        // distinct states recovered and checked
  std::string failure;                              // "" if every state kept the contract
  CopyMethod copy_method = CopyMethod::kReadWrite;  // the one the engine chose
  uint64_t kernel_copies = 0;          // hydration copies made inside the kernel (copy_from)
  uint64_t bytes_written_through = 0;  // by reads (ScenarioOptions::write_through)
};

// The image geometry a scenario with these options uses.
Geometry scenario_geometry(const ScenarioOptions& options);

// `seed` picks the source's contents and every crash-state choice; the workload is given.
ScenarioReport run_scenario(uint64_t seed, std::span<const Op> ops, const ScenarioOptions& options);

}  // namespace clonefs::crash
