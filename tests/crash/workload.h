// Workloads for the crash harness: seeded random mixes of writes (whole-region and partial,
// unaligned), discards (whole and partial regions), flushes and hydration steps, and the driver
// that runs them against a live engine while keeping the reference model and marking the trace.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "crash/image_model.h"
#include "crash/trace.h"
#include "engine/clone_engine.h"

namespace clonefs::crash {

// Reads change nothing unless copy-on-read is on (then they hydrate); they are also checked
// against the model while the workload runs.
enum class OpKind { kWrite, kDiscard, kFlush, kHydrate, kRead, kPause };

struct Op {
  OpKind kind = OpKind::kFlush;
  uint64_t offset = 0;  // write/discard/read: image offset; hydrate: first region
  uint64_t length = 0;  // write/discard/read: bytes; hydrate: regions; pause: milliseconds
  uint64_t data_seed = 0;
};

std::string describe(const Op& op);
std::string describe(std::span<const Op> ops);  // "1:write@100+700 2:flush ..."

// `count` operations on an image of `geometry`; with `pauses`, some short sleeps that let a
// periodic committer run between operations.
std::vector<Op> random_workload(uint64_t seed, const Geometry& geometry, size_t count, bool pauses);

// The bytes a write op writes.
std::vector<std::byte> op_data(const Op& op);

// Runs `ops` in order, numbering them from 1: marks each one's start in the trace, applies each
// completed one to `model`, and appends an acknowledgement after every successful flush. Then
// closes the engine (the commit at unmount), acknowledged as operation ops.size() + 1. Any
// failure is returned: the live run must not fail.
//
// With `background_hydration`, another thread hydrates regions round-robin meanwhile, as the
// hydrator does, the regions of reads that fell through to the source first. The model needs no
// change for it: hydration never changes what the image reads.
Status run_workload(CloneEngine& engine, std::span<const Op> ops, ImageModel& model, Trace& trace,
                    bool background_hydration);

}  // namespace clonefs::crash
