#include "io/fingerprint.h"

#include <algorithm>
#include <cstdio>

#include "io/fnv1a.h"

namespace clonefs {
namespace {

constexpr uint64_t kEdgeBytes = 1 << 20;
constexpr uint64_t kSampleBytes = 64 << 10;
constexpr uint64_t kSamples = 64;

}  // namespace

std::vector<Extent> fingerprint_pieces(uint64_t size) {
  std::vector<Extent> pieces;
  pieces.push_back({0, std::min(size, kEdgeBytes)});
  for (uint64_t i = 0; i < kSamples; ++i) {
    uint64_t begin = size / kSamples * i;
    pieces.push_back({begin, std::min(size, begin + kSampleBytes)});
  }
  pieces.push_back({size - std::min(size, kEdgeBytes), size});
  return pieces;
}

std::string fingerprint_of(uint64_t size, std::span<const std::byte> pieces) {
  Fnv1a64 hash;
  hash.add_u64(size);
  size_t at = 0;
  for (const Extent& piece : fingerprint_pieces(size)) {
    const size_t length = std::min<size_t>(piece.length(), pieces.size() - at);
    hash.add_u64(piece.begin);
    hash.add(pieces.subspan(at, length));
    at += length;
  }
  char text[32];
  std::snprintf(text, sizeof text, "v1:%016llx", static_cast<unsigned long long>(hash.value()));
  return std::string(text);
}

Result<std::string> source_fingerprint(SourceDevice& source) {
  const uint64_t size = source.size();
  std::vector<Extent> pieces = fingerprint_pieces(size);
  uint64_t total = 0;
  for (const Extent& piece : pieces) total += piece.length();
  std::vector<std::byte> bytes(total);
  CLONEFS_RETURN_IF_ERROR(source.read_extents(pieces, bytes).with_context("fingerprint source"));
  return fingerprint_of(size, bytes);
}

}  // namespace clonefs
