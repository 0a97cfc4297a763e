#include "crash/image_model.h"

#include <algorithm>

namespace clonefs::crash {

ImageModel::ImageModel(std::vector<std::byte> source)
    : source_(std::move(source)),
      image_(source_),
      versions_((source_.size() + kSectorSize - 1) / kSectorSize) {}

std::span<const std::byte> ImageModel::sector_of(const std::vector<std::byte>& image,
                                                 uint64_t sector) const {
  uint64_t begin = sector * kSectorSize;
  uint64_t end = std::min<uint64_t>(begin + kSectorSize, image.size());
  return std::span<const std::byte>(image).subspan(begin, end - begin);
}

void ImageModel::write(uint64_t op, uint64_t offset, std::span<const std::byte> bytes) {
  std::copy(bytes.begin(), bytes.end(), image_.begin() + static_cast<ptrdiff_t>(offset));
  record_versions(op, offset, bytes.size());
}

void ImageModel::discard(uint64_t op, uint64_t offset, uint64_t length) {
  std::fill_n(image_.begin() + static_cast<ptrdiff_t>(offset), length, std::byte{0});
  record_versions(op, offset, length);
}

void ImageModel::record_versions(uint64_t op, uint64_t offset, uint64_t length) {
  if (length == 0) return;
  for (uint64_t s = offset / kSectorSize; s <= (offset + length - 1) / kSectorSize; ++s) {
    auto bytes = sector_of(image_, s);
    versions_[s].push_back({op, std::vector<std::byte>(bytes.begin(), bytes.end())});
  }
}

bool ImageModel::held_after(uint64_t sector, std::span<const std::byte> content, uint64_t first_op,
                            uint64_t last_op) const {
  for (const Version& v : versions_[sector]) {
    if (v.op >= first_op && v.op <= last_op && std::ranges::equal(v.bytes, content)) return true;
  }
  return false;
}

std::string ImageModel::classify(uint64_t sector, std::span<const std::byte> content,
                                 uint64_t last_op) const {
  if (std::ranges::equal(sector_of(source_, sector), content)) return "the source's data";
  for (auto it = versions_[sector].rbegin(); it != versions_[sector].rend(); ++it) {
    if (it->op <= last_op && std::ranges::equal(it->bytes, content))
      return "what op " + std::to_string(it->op) + " left";
  }
  if (std::ranges::all_of(content, [](std::byte b) { return b == std::byte{0}; }))
    return "zeros nobody wrote";
  return "bytes nobody wrote";
}

}  // namespace clonefs::crash
