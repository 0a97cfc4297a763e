#include "crash/workload.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "support/temp_dir.h"

namespace clonefs::crash {
namespace {

// Portable across standard libraries, unlike std::uniform_int_distribution: a seed replays
// the same workload everywhere.
uint64_t pick(std::mt19937_64& rng, uint64_t lo, uint64_t hi) { return lo + rng() % (hi - lo + 1); }

// Writes land in one of three shapes, each exercising a different engine path: whole regions
// (valid without a copy), sector-aligned pieces, and unaligned ranges that may cross regions.
Op random_write(std::mt19937_64& rng, const Geometry& g) {
  const uint64_t size = g.image_size(), region = g.region_size();
  Op op{.kind = OpKind::kWrite, .data_seed = rng()};
  switch (pick(rng, 0, 2)) {
    case 0: {
      uint64_t first = pick(rng, 0, g.region_count() - 1);
      op.offset = first * region;
      op.length = std::min(pick(rng, 1, 4) * region, size - op.offset);  // a run: one write
      break;
    }
    case 1:
      op.offset = pick(rng, 0, size / kSectorSize - 1) * kSectorSize;
      op.length = std::min(pick(rng, 1, 4) * kSectorSize, size - op.offset);
      break;
    default:
      op.offset = pick(rng, 0, size - 1);
      op.length = pick(rng, 1, std::min<uint64_t>(size - op.offset, region + region / 2));
  }
  return op;
}

Op random_discard(std::mt19937_64& rng, const Geometry& g) {
  const uint64_t size = g.image_size(), region = g.region_size();
  Op op{.kind = OpKind::kDiscard};
  if (pick(rng, 0, 1) == 0) {
    op.offset = pick(rng, 0, g.region_count() - 1) * region;
    op.length = std::min(pick(rng, 1, 2) * region, size - op.offset);
  } else {
    op.offset = pick(rng, 0, size - 1);
    op.length = pick(rng, 1, std::min<uint64_t>(size - op.offset, region));
  }
  return op;
}

// What a flush promises is fixed when it is called: the image so far, and the regions valid so
// far (a region made valid later by another thread may miss this commit). Unmount's close()
// commits like a flush and promises as much.
Status flush_and_ack(CloneEngine& engine, uint64_t number, bool unmount, const ImageModel& model,
                     Trace& trace) {
  auto ack = std::make_shared<Acknowledgement>();
  ack->last_op = number;
  ack->image = model.image();
  for (uint64_t r = 0; r < engine.geometry().region_count(); ++r)
    ack->valid.push_back(engine.bitmap().test(r));
  CLONEFS_RETURN_IF_ERROR(unmount ? engine.close() : engine.flush());
  trace.append(Event::acknowledged(std::move(ack)));
  return Status::ok();
}

Status run_one(CloneEngine& engine, uint64_t number, const Op& op, ImageModel& model,
               Trace& trace) {
  switch (op.kind) {
    case OpKind::kWrite: {
      auto data = op_data(op);
      CLONEFS_RETURN_IF_ERROR(engine.write(op.offset, data));
      model.write(number, op.offset, data);
      return Status::ok();
    }
    case OpKind::kDiscard:
      CLONEFS_RETURN_IF_ERROR(engine.discard(op.offset, op.length));
      model.discard(number, op.offset, op.length);
      return Status::ok();
    case OpKind::kHydrate: {
      auto step = engine.hydrate(op.offset, op.length);
      return step.is_ok() ? Status::ok() : step.status();
    }
    case OpKind::kRead: {
      std::vector<std::byte> data(op.length);
      CLONEFS_RETURN_IF_ERROR(engine.read(op.offset, data));
      auto expected = std::span(model.image()).subspan(op.offset, op.length);
      if (!std::ranges::equal(data, expected))
        return Status::error(EIO, "live read differs from the model");
      return Status::ok();
    }
    case OpKind::kPause:
      std::this_thread::sleep_for(std::chrono::milliseconds(op.length));
      return Status::ok();
    case OpKind::kFlush:
      return flush_and_ack(engine, number, /*unmount=*/false, model, trace);
  }
  return Status::ok();
}

// A second thread copying regions while the user's operations run, until stopped. With priority
// on, as the daemon's hydrator: a read falling through to the source puts its regions first
// (issue 13), so copies race the very reads that asked for them.
class BackgroundHydration : private AccessObserver {
 public:
  explicit BackgroundHydration(CloneEngine& engine) : engine_(engine) {
    engine_.add_observer(this);
    thread_ = std::thread([this] { run(); });
  }
  ~BackgroundHydration() override { (void)stop(); }
  BackgroundHydration(const BackgroundHydration&) = delete;
  BackgroundHydration& operator=(const BackgroundHydration&) = delete;

  Status stop() {
    engine_.remove_observer(this);
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return failure_;
  }

 private:
  void user_io() noexcept override {}
  void regions_accessed(uint64_t, uint64_t) noexcept override {}
  void read_fell_through(uint64_t first, uint64_t count, RegionRun) noexcept override {
    std::lock_guard lock(mu_);
    for (uint64_t r = first + count; r-- > first;) wanted_.push_front(r);
  }
  std::optional<uint64_t> next_wanted() {
    std::lock_guard lock(mu_);
    if (wanted_.empty()) return std::nullopt;
    uint64_t r = wanted_.front();
    wanted_.pop_front();
    return r;
  }
  void run() {
    const uint64_t regions = engine_.geometry().region_count();
    for (uint64_t r = 0; !stop_;) {
      auto wanted = next_wanted();
      auto step = engine_.hydrate(wanted ? *wanted : r, 1);
      if (!step.is_ok()) {
        failure_ = step.status().with_context("background hydration");
        return;
      }
      if (!wanted) r = (r + 1) % regions;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  CloneEngine& engine_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::deque<uint64_t> wanted_;  // guarded by mu_: regions reads fell through for, newest first
  Status failure_;               // written by the thread, read after join
  std::thread thread_;
};

}  // namespace

std::string describe(const Op& op) {
  switch (op.kind) {
    case OpKind::kWrite:
      return "write@" + std::to_string(op.offset) + "+" + std::to_string(op.length);
    case OpKind::kDiscard:
      return "discard@" + std::to_string(op.offset) + "+" + std::to_string(op.length);
    case OpKind::kFlush:
      return "flush";
    case OpKind::kHydrate:
      return "hydrate(" + std::to_string(op.offset) + "," + std::to_string(op.length) + ")";
    case OpKind::kRead:
      return "read@" + std::to_string(op.offset) + "+" + std::to_string(op.length);
    case OpKind::kPause:
      return "pause" + std::to_string(op.length) + "ms";
  }
  return "?";
}

std::string describe(std::span<const Op> ops) {
  std::string out;
  for (size_t i = 0; i < ops.size(); ++i)
    out += (i ? " " : "") + std::to_string(i + 1) + ":" + describe(ops[i]);
  return out;
}

std::vector<std::byte> op_data(const Op& op) {
  return testing::random_bytes(op.length, op.data_seed);
}

std::vector<Op> random_workload(uint64_t seed, const Geometry& geometry, size_t count,
                                bool pauses) {
  std::mt19937_64 rng(seed);
  std::vector<Op> ops;
  while (ops.size() < count) {
    uint64_t dice = pick(rng, 0, 99);
    if (dice < 40) {
      ops.push_back(random_write(rng, geometry));
    } else if (dice < 55) {
      ops.push_back(random_discard(rng, geometry));
    } else if (dice < 72) {
      ops.push_back({.kind = OpKind::kFlush});
    } else if (dice < 90) {
      ops.push_back({.kind = OpKind::kHydrate,
                     .offset = pick(rng, 0, geometry.region_count() - 1),
                     .length = pick(rng, 1, 4)});
    } else if (dice < 96 || !pauses) {
      Op read = random_discard(rng, geometry);  // the same shapes: whole and partial regions
      read.kind = OpKind::kRead;
      ops.push_back(read);
    } else {
      ops.push_back({.kind = OpKind::kPause, .length = pick(rng, 1, 5)});
    }
  }
  return ops;
}

Status run_workload(CloneEngine& engine, std::span<const Op> ops, ImageModel& model, Trace& trace,
                    bool background_hydration) {
  std::optional<BackgroundHydration> hydration;
  if (background_hydration) hydration.emplace(engine);
  for (size_t i = 0; i < ops.size(); ++i) {
    trace.append(Event::op_begin(i + 1));
    CLONEFS_RETURN_IF_ERROR(
        run_one(engine, i + 1, ops[i], model, trace).with_context("op " + describe(ops[i])));
  }
  if (hydration) CLONEFS_RETURN_IF_ERROR(hydration->stop());
  const uint64_t close_op = ops.size() + 1;
  trace.append(Event::op_begin(close_op));
  return flush_and_ack(engine, close_op, /*unmount=*/true, model, trace).with_context("close");
}

}  // namespace clonefs::crash
