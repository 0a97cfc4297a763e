#include "engine/surviving_regions.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>

namespace clonefs {

// The file: this header, then one bit per region. Words written by one process at a time (a
// successor starts once its predecessor is dead), each an aligned 64-bit store that a SIGKILL
// cannot tear.
struct SurvivingRegions::Header {
  uint64_t magic;
  uint64_t region_size;
  uint64_t region_count;
  uint64_t spoiled;
};

namespace {
constexpr uint64_t kMagic = 0x736e6f6967657276ULL;  // "vregions"

constexpr size_t kHeaderBytes = 32;

size_t file_bytes(uint64_t regions) {
  return kHeaderBytes + (regions + 63) / 64 * sizeof(uint64_t);
}
}  // namespace

Result<std::unique_ptr<SurvivingRegions>> SurvivingRegions::map(int fd, const Geometry& geometry) {
  static_assert(sizeof(Header) == kHeaderBytes);
  const size_t bytes = file_bytes(geometry.region_count());
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::from_errno(errno, "surviving regions record");
  const bool fresh = st.st_size == 0;
  if (fresh && ::ftruncate(fd, static_cast<off_t>(bytes)) != 0)
    return Status::from_errno(errno, "sizing the surviving regions record");
  if (!fresh && static_cast<size_t>(st.st_size) != bytes) {
    return Status::error(EINVAL, "surviving regions record of " + std::to_string(st.st_size) +
                                     " bytes, " + std::to_string(bytes) + " expected");
  }
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Status::from_errno(errno, "mapping the surviving regions record");
  auto* header = static_cast<Header*>(p);
  if (fresh) {
    header->region_size = geometry.region_size();
    header->region_count = geometry.region_count();
    header->spoiled = 0;
    header->magic = kMagic;
  } else if (header->magic != kMagic || header->region_size != geometry.region_size() ||
             header->region_count != geometry.region_count()) {
    ::munmap(p, bytes);
    return Status::error(EINVAL, "surviving regions record is of another geometry");
  }
  return std::unique_ptr<SurvivingRegions>(new SurvivingRegions(p, bytes, geometry.region_count()));
}

SurvivingRegions::SurvivingRegions(void* map, size_t bytes, uint64_t regions)
    : map_(map), bytes_(bytes), regions_(regions) {}

SurvivingRegions::~SurvivingRegions() { ::munmap(map_, bytes_); }

uint64_t* SurvivingRegions::words() const {
  return reinterpret_cast<uint64_t*>(static_cast<char*>(map_) + sizeof(Header));
}

void SurvivingRegions::record(uint64_t first, uint64_t count) {
  if (count == 0 || first >= regions_) return;
  const uint64_t end = std::min(regions_, first + count);
  uint64_t* w = words();
  for (uint64_t r = first; r < end;) {
    const uint64_t word = r / 64;
    const uint64_t from = r % 64;
    const uint64_t to = std::min<uint64_t>(64, from + (end - r));
    const uint64_t mask = (to - from == 64 ? ~uint64_t{0} : ((uint64_t{1} << (to - from)) - 1))
                          << from;
    std::atomic_ref<uint64_t>(w[word]).fetch_or(mask, std::memory_order_relaxed);
    r += to - from;
  }
}

void SurvivingRegions::spoil() {
  std::atomic_ref<uint64_t>(static_cast<Header*>(map_)->spoiled).store(1);
}

bool SurvivingRegions::spoiled() const {
  return std::atomic_ref<uint64_t>(static_cast<Header*>(map_)->spoiled).load() != 0;
}

Status SurvivingRegions::spoil(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::from_errno(errno, "surviving regions record");
  if (static_cast<size_t>(st.st_size) < sizeof(Header))
    return Status::error(EINVAL, "surviving regions record not stamped yet");
  const uint64_t spoiled = 1;
  if (::pwrite(fd, &spoiled, sizeof spoiled, offsetof(Header, spoiled)) != sizeof spoiled)
    return Status::from_errno(errno, "spoiling the surviving regions record");
  return Status::ok();
}

void SurvivingRegions::for_each_run(
    const std::function<void(uint64_t first, uint64_t count)>& run) const {
  if (spoiled()) return;
  const uint64_t* w = words();
  uint64_t start = 0;
  bool in_run = false;
  for (uint64_t r = 0; r < regions_;) {
    const uint64_t word = w[r / 64];
    // Whole words at once where they hold no edge of a run.
    if (r % 64 == 0 && word == (in_run ? ~uint64_t{0} : 0) && r + 64 <= regions_) {
      r += 64;
      continue;
    }
    const bool set = (word >> (r % 64)) & 1;
    if (set && !in_run) {
      start = r;
      in_run = true;
    } else if (!set && in_run) {
      run(start, r - start);
      in_run = false;
    }
    ++r;
  }
  if (in_run) run(start, regions_ - start);
}

}  // namespace clonefs
