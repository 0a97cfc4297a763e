// Commit cost against the regions changed, and bitmap memory: the figures issue #2 asks for.
// The peer, measured in the same run, is what a naive design does: rewrite the whole bitmap on
// every commit. Run: build/bench/clonefs_commit_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <random>

#include "engine/clone.h"
#include "io/posix_devices.h"
#include "meta/metadata_store.h"
#include "support/temp_dir.h"

namespace clonefs {
namespace {

constexpr uint64_t kImage = uint64_t{1} << 40;  // 1 TiB
constexpr uint64_t kRegion = 64 << 10;

struct Fixture {
  testing::TempDir dir;
  std::unique_ptr<MetadataStore> store;
  std::unique_ptr<RegionBitmap> bitmap;
  Fixture() {
    CloneRecord record{kImage, kRegion, "/nonexistent/source", kImage, "v1:0", "/nonexistent/dest"};
    if (!MetadataStore::create(dir.file("meta.db"), record, false).is_ok()) std::abort();
    store = std::move(*MetadataStore::open(dir.file("meta.db")));
    bitmap = std::make_unique<RegionBitmap>(kImage / kRegion);
  }
};

// Changes `regions` scattered regions, then commits only their chunks (what the engine does).
void BM_CommitChangedChunks(benchmark::State& state) {
  Fixture f;
  std::mt19937_64 rng(1);
  const auto regions = static_cast<uint64_t>(state.range(0));
  for (auto _ : state) {
    std::vector<uint64_t> chunks;
    for (uint64_t i = 0; i < regions; ++i) {
      uint64_t r = rng() % f.bitmap->region_count();
      f.bitmap->set(r);
      chunks.push_back(RegionBitmap::chunk_of(r));
    }
    std::sort(chunks.begin(), chunks.end());
    chunks.erase(std::unique(chunks.begin(), chunks.end()), chunks.end());
    std::vector<ChunkImage> images;
    for (uint64_t c : chunks) images.push_back({c, f.bitmap->chunk_image(c)});
    if (!f.store->commit(images).is_ok()) state.SkipWithError("commit failed");
  }
  state.counters["commits_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CommitChangedChunks)
    ->Arg(1)
    ->Arg(100)
    ->Arg(10000)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The peer: rewrite every chunk of the bitmap on each commit.
void BM_CommitWholeBitmap(benchmark::State& state) {
  Fixture f;
  std::vector<ChunkImage> images;
  for (uint64_t c = 0; c < f.bitmap->chunk_count(); ++c)
    images.push_back({c, f.bitmap->chunk_image(c)});
  for (auto _ : state) {
    if (!f.store->commit(images).is_ok()) state.SkipWithError("commit failed");
  }
  state.counters["commits_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CommitWholeBitmap)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_BitmapMemory1TiB(benchmark::State& state) {
  for (auto _ : state) {
    RegionBitmap bitmap(kImage / static_cast<uint64_t>(state.range(0)));
    benchmark::DoNotOptimize(bitmap.memory_bytes());
    state.counters["bitmap_bytes"] = static_cast<double>(bitmap.memory_bytes());
  }
}
BENCHMARK(BM_BitmapMemory1TiB)->Arg(4096)->Arg(64 << 10)->Iterations(1);

}  // namespace
}  // namespace clonefs

BENCHMARK_MAIN();
