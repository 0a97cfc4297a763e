#include "io/fingerprint.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "io/fnv1a.h"

namespace clonefs {
namespace {

constexpr uint64_t kEdgeBytes = 1 << 20;
constexpr uint64_t kSampleBytes = 64 << 10;
constexpr uint64_t kSamples = 64;

}  // namespace

Result<std::string> source_fingerprint(SourceDevice& source) {
  const uint64_t size = source.size();
  std::vector<Extent> pieces;
  pieces.push_back({0, std::min(size, kEdgeBytes)});
  for (uint64_t i = 0; i < kSamples; ++i) {
    uint64_t begin = size / kSamples * i;
    pieces.push_back({begin, std::min(size, begin + kSampleBytes)});
  }
  pieces.push_back({size - std::min(size, kEdgeBytes), size});

  Fnv1a64 hash;
  hash.add_u64(size);
  std::vector<std::byte> buf;
  for (const Extent& piece : pieces) {
    buf.resize(piece.length());
    CLONEFS_RETURN_IF_ERROR(source.read_at(piece.begin, buf).with_context("fingerprint source"));
    hash.add_u64(piece.begin);
    hash.add(buf);
  }
  char text[32];
  std::snprintf(text, sizeof text, "v1:%016llx", static_cast<unsigned long long>(hash.value()));
  return std::string(text);
}

}  // namespace clonefs
