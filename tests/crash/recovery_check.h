// Recovering a crash state and checking it against docs/SEMANTICS.md, "After a crash".
#pragma once

#include <string>
#include <vector>

#include "crash/crash_states.h"
#include "crash/image_model.h"
#include "crash/trace.h"

namespace clonefs::crash {

// The clone's files, at the paths its metadata records.
struct CloneFiles {
  std::string source;
  std::string destination;
  std::string metadata;
  std::string path(TracedFile file) const;
};

// What the workload had done and been promised when the power went.
struct Oracle {
  const ImageModel* model = nullptr;
  const Acknowledgement* last_ack = nullptr;  // nullptr: no flush had returned yet
  uint64_t ops_begun = 0;                     // operations 1..ops_begun may have reached the disk
  std::vector<bool> ever_valid;               // regions valid at some moment of the live run
};

// Writes `state` over the clone's files (and removes the WAL index, which a reboot loses), opens
// the clone as a new mount would (default VFS, fresh connection, so SQLite recovers the WAL),
// reads the whole image and checks each sector:
//   rule 1: a region whose bit is committed reads the source or something the user wrote;
//   rule 2: a region whose bit is not committed reads the source;
//   rule 3: what the last acknowledged flush covered reads back (or a later write's data);
//   rule 5: the metadata opens and passes integrity_check, and every region valid at the last
//           acknowledged flush is still committed (hydration resumes where it left off).
// Returns "" if the state keeps the contract, else one line per broken rule.
std::string recover_and_check(const CloneFiles& files, const CrashState& state,
                              const Oracle& oracle);

}  // namespace clonefs::crash
