// FNV-1a, 64-bit: not cryptographic, only meant to tell contents apart cheaply (the source's
// fingerprint; the tests' "nothing was written" digests).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace clonefs {

class Fnv1a64 {
 public:
  void add(std::span<const std::byte> bytes) {
    for (std::byte b : bytes) {
      state_ ^= std::to_integer<uint64_t>(b);
      state_ *= 0x100000001b3ULL;
    }
  }
  // `v` as 8 bytes, little-endian whatever the host.
  void add_u64(uint64_t v) {
    std::byte raw[8];
    for (int i = 0; i < 8; ++i) raw[i] = static_cast<std::byte>(v >> (8 * i));
    add(raw);
  }
  uint64_t value() const { return state_; }

 private:
  uint64_t state_ = 0xcbf29ce484222325ULL;
};

}  // namespace clonefs
