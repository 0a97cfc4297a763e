// The reference model of the image: source overlaid with every completed write and discard,
// and, per 512-byte sector, every content the sector has held and which operation produced it.
// The crash checks ask it "could the user have seen this sector hold these bytes?".
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace clonefs::crash {

inline constexpr uint64_t kSectorSize = 512;

class ImageModel {
 public:
  explicit ImageModel(std::vector<std::byte> source);
  ImageModel(const ImageModel&) = delete;
  ImageModel& operator=(const ImageModel&) = delete;

  // Operation `op` (numbered from 1, increasing) completed.
  void write(uint64_t op, uint64_t offset, std::span<const std::byte> bytes);
  void discard(uint64_t op, uint64_t offset, uint64_t length);  // a discard writes zeros

  const std::vector<std::byte>& image() const { return image_; }
  const std::vector<std::byte>& source() const { return source_; }
  uint64_t sector_count() const { return versions_.size(); }
  std::span<const std::byte> sector_of(const std::vector<std::byte>& image, uint64_t sector) const;

  // Whether `content` is what sector `sector` held right after some operation numbered in
  // [first_op, last_op] that touched it.
  bool held_after(uint64_t sector, std::span<const std::byte> content, uint64_t first_op,
                  uint64_t last_op) const;
  // For messages: "the source's data", "what op 7 left", "zeros nobody wrote", ... considering
  // only operations up to `last_op` (the ones begun before the crash).
  std::string classify(uint64_t sector, std::span<const std::byte> content, uint64_t last_op) const;

 private:
  struct Version {
    uint64_t op;
    std::vector<std::byte> bytes;
  };
  void record_versions(uint64_t op, uint64_t offset, uint64_t length);

  std::vector<std::byte> source_;
  std::vector<std::byte> image_;
  std::vector<std::vector<Version>> versions_;  // per sector, oldest first
};

}  // namespace clonefs::crash
