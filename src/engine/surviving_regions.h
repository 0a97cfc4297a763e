// The regions a serving process made valid, recorded in memory that outlives it: a file (a
// memfd) that its supervisor holds (fuse/supervisor.h) and every serving process maps.
//
// A serving process acknowledges a write into a region that was not valid once the region's data
// is in the destination and the region is valid in memory, before any commit; a SIGKILL then
// loses the in-memory bit but not the data (it is in the destination's page cache, which outlives
// the process). A successor that reopened the clone from its metadata alone would read that
// region from the source and let the next fsync succeed without it: an acknowledged write lost
// behind the user's back, and an fsync that lies. So the engine records each region here as it
// makes it valid (after its data is written, as the in-memory bit), and a successor adopts what
// is recorded into its first transaction, which commits it as any other: freeze, fdatasync the
// destination, then the bits.
//
// After a failed commit the record is spoiled instead: a failed fdatasync may have dropped the
// data of regions recorded here, and a successor's fdatasync would not report it again.
//
// Nor would it report a failure the dead process never got to act on: the kernel reports a
// write-back error once per open file description (lib/errseq.c), so a process SIGKILLed inside
// a failing fdatasync consumes the error with its own description, and a description opened
// afterwards, the successor's, starts past it. Only a description opened before anything was
// written still sees every error since: the supervisor holds one (fuse/supervision.h) and syncs
// it before it starts a successor; an error there spoils the record (spoil(fd)). The supervisor
// does it itself because it is the one process whose death ends the mount: a successor killed
// inside that check could consume the error in turn, and the next one would never see it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "meta/geometry.h"
#include "util/status.h"

namespace clonefs {

class SurvivingRegions {
 public:
  // Maps `fd` for `geometry`: sized and stamped by the first serving process (an empty file),
  // checked by its successors. Does not take `fd` over.
  static Result<std::unique_ptr<SurvivingRegions>> map(int fd, const Geometry& geometry);
  ~SurvivingRegions();
  SurvivingRegions(const SurvivingRegions&) = delete;
  SurvivingRegions& operator=(const SurvivingRegions&) = delete;

  // The caller serialises these (the engine holds its state lock).
  void record(uint64_t first, uint64_t count);
  void spoil();
  bool spoiled() const;
  // Spoils the record in `fd` without mapping it (the supervisor knows no geometry), while no
  // serving process has it mapped. Fails if no serving process has stamped it yet.
  static Status spoil(int fd);
  // Each run of recorded regions, in order (none once spoiled).
  void for_each_run(const std::function<void(uint64_t first, uint64_t count)>& run) const;

 private:
  struct Header;
  SurvivingRegions(void* map, size_t bytes, uint64_t regions);
  uint64_t* words() const;

  void* map_;
  size_t bytes_;
  uint64_t regions_;
};

}  // namespace clonefs
