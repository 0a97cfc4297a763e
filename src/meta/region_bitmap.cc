#include "meta/region_bitmap.h"

#include <algorithm>
#include <bit>
#include <string>

namespace clonefs {

RegionBitmap::RegionBitmap(uint64_t region_count)
    : region_count_(region_count), words_(new std::atomic<uint64_t>[(region_count + 63) / 64]) {
  clear();
}

bool RegionBitmap::set(uint64_t region) {
  uint64_t mask = uint64_t{1} << (region % 64);
  bool was_clear = !(words_[region / 64].fetch_or(mask, std::memory_order_acq_rel) & mask);
  if (was_clear) valid_.fetch_add(1, std::memory_order_release);
  return was_clear;
}

namespace {

// The bits of word `w` that fall inside [first, end).
uint64_t word_mask(uint64_t w, uint64_t first, uint64_t end) {
  uint64_t lo = std::max(first, w * 64) - w * 64;
  uint64_t hi = std::min(end, w * 64 + 64) - w * 64;  // 1..64
  uint64_t upto = hi == 64 ? ~uint64_t{0} : (uint64_t{1} << hi) - 1;
  return upto & (~uint64_t{0} << lo);
}

}  // namespace

uint64_t RegionBitmap::set_range(uint64_t first, uint64_t count) {
  if (count == 0) return 0;
  const uint64_t end = first + count;
  uint64_t newly = 0;
  for (uint64_t w = first / 64; w <= (end - 1) / 64; ++w) {
    uint64_t mask = word_mask(w, first, end);
    uint64_t old = words_[w].fetch_or(mask, std::memory_order_acq_rel);
    newly += static_cast<uint64_t>(std::popcount(mask & ~old));
  }
  if (newly != 0) valid_.fetch_add(newly, std::memory_order_release);
  return newly;
}

uint64_t RegionBitmap::count_valid(uint64_t first, uint64_t count) const {
  if (count == 0) return 0;
  const uint64_t end = first + count;
  uint64_t valid = 0;
  for (uint64_t w = first / 64; w <= (end - 1) / 64; ++w) {
    valid += static_cast<uint64_t>(
        std::popcount(words_[w].load(std::memory_order_acquire) & word_mask(w, first, end)));
  }
  return valid;
}

std::optional<uint64_t> RegionBitmap::next_invalid(uint64_t from) const {
  for (uint64_t w = from / 64; w < word_count(); ++w) {
    uint64_t inverted = ~words_[w].load(std::memory_order_acquire);
    if (w == from / 64) inverted &= ~uint64_t{0} << (from % 64);
    if (inverted == 0) continue;
    uint64_t region = w * 64 + static_cast<uint64_t>(std::countr_zero(inverted));
    if (region >= region_count_) return std::nullopt;
    return region;
  }
  return std::nullopt;
}

uint64_t RegionBitmap::chunk_bytes(uint64_t chunk) const {
  uint64_t regions = std::min(kRegionsPerChunk, region_count_ - chunk * kRegionsPerChunk);
  return (regions + 7) / 8;
}

std::vector<std::byte> RegionBitmap::chunk_image(uint64_t chunk) const {
  std::vector<std::byte> out(chunk_bytes(chunk));
  uint64_t first_word = chunk * kRegionsPerChunk / 64;
  for (size_t i = 0; i < out.size(); ++i) {
    uint64_t word = words_[first_word + i / 8].load(std::memory_order_acquire);
    out[i] = static_cast<std::byte>(word >> ((i % 8) * 8));
  }
  return out;
}

void RegionBitmap::clear() {
  for (size_t w = 0; w < word_count(); ++w) words_[w].store(0, std::memory_order_relaxed);
  valid_.store(0, std::memory_order_relaxed);
}

void RegionBitmap::assign_from(const RegionBitmap& other) {
  for (size_t w = 0; w < word_count(); ++w) {
    words_[w].store(other.words_[w].load(std::memory_order_acquire), std::memory_order_release);
  }
  valid_.store(other.valid_count(), std::memory_order_relaxed);
}

Status RegionBitmap::assign_chunk(uint64_t chunk, std::span<const std::byte> bytes) {
  if (chunk >= chunk_count()) {
    return Status::error(EINVAL,
                         "region chunk " + std::to_string(chunk) + " is past the last region");
  }
  std::vector<std::byte> image(chunk_bytes(chunk));
  if (!bytes.empty()) {
    if (bytes.size() != image.size()) {
      return Status::error(EINVAL, "region chunk " + std::to_string(chunk) + " has " +
                                       std::to_string(bytes.size()) + " bytes, expected " +
                                       std::to_string(image.size()));
    }
    std::copy(bytes.begin(), bytes.end(), image.begin());
  }
  const uint64_t first_region = chunk * kRegionsPerChunk;
  const uint64_t regions = std::min(kRegionsPerChunk, region_count_ - first_region);
  std::vector<uint64_t> words((regions + 63) / 64, 0);
  for (size_t i = 0; i < image.size(); ++i) {
    words[i / 8] |= uint64_t{std::to_integer<uint8_t>(image[i])} << ((i % 8) * 8);
  }
  if (regions % 64 != 0 && (words.back() >> (regions % 64)) != 0) {
    return Status::error(
        EINVAL, "region chunk " + std::to_string(chunk) + " marks regions past the last region");
  }
  const uint64_t first_word = first_region / 64;
  for (size_t i = 0; i < words.size(); ++i) {
    uint64_t old = words_[first_word + i].exchange(words[i], std::memory_order_acq_rel);
    int delta = std::popcount(words[i]) - std::popcount(old);
    if (delta >= 0)
      valid_.fetch_add(static_cast<uint64_t>(delta), std::memory_order_acq_rel);
    else
      valid_.fetch_sub(static_cast<uint64_t>(-delta), std::memory_order_acq_rel);
  }
  return Status::ok();
}

Status RegionBitmap::load_chunk(uint64_t chunk, std::span<const std::byte> bytes) {
  if (chunk >= chunk_count()) {
    return Status::error(EINVAL,
                         "region chunk " + std::to_string(chunk) + " is past the last region");
  }
  if (bytes.size() != chunk_bytes(chunk)) {
    return Status::error(EINVAL, "region chunk " + std::to_string(chunk) + " has " +
                                     std::to_string(bytes.size()) + " bytes, expected " +
                                     std::to_string(chunk_bytes(chunk)));
  }
  uint64_t first_region = chunk * kRegionsPerChunk;
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto byte = std::to_integer<unsigned>(bytes[i]);
    for (unsigned bit = 0; bit < 8; ++bit) {
      if (!((byte >> bit) & 1)) continue;
      uint64_t region = first_region + i * 8 + bit;
      if (region >= region_count_) {
        return Status::error(EINVAL, "region chunk " + std::to_string(chunk) + " marks region " +
                                         std::to_string(region) + " past the last region");
      }
      set(region);
    }
  }
  return Status::ok();
}

}  // namespace clonefs
