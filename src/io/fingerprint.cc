#include "io/fingerprint.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace clonefs {
namespace {

constexpr uint64_t kEdgeBytes = 1 << 20;
constexpr uint64_t kSampleBytes = 64 << 10;
constexpr uint64_t kSamples = 64;

// FNV-1a, 64-bit: not cryptographic, only meant to tell images apart.
struct Fnv64 {
  uint64_t state = 0xcbf29ce484222325ULL;
  void add(std::span<const std::byte> bytes) {
    for (std::byte b : bytes) {
      state ^= std::to_integer<uint64_t>(b);
      state *= 0x100000001b3ULL;
    }
  }
  void add_u64(uint64_t v) {
    std::byte raw[8];
    for (int i = 0; i < 8; ++i) raw[i] = static_cast<std::byte>(v >> (8 * i));
    add(raw);
  }
};

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

  Fnv64 hash;
  hash.add_u64(size);
  std::vector<std::byte> buf;
  for (const Extent& piece : pieces) {
    buf.resize(piece.length());
    CLONEFS_RETURN_IF_ERROR(source.read_at(piece.begin, buf).with_context("fingerprint source"));
    hash.add_u64(piece.begin);
    hash.add(buf);
  }
  char text[32];
  std::snprintf(text, sizeof text, "v1:%016llx", static_cast<unsigned long long>(hash.state));
  return std::string(text);
}

}  // namespace clonefs
