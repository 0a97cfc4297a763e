#include "io/existing_content.h"

#include <blkid/blkid.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string_view>

namespace clonefs {
namespace {

// "an ext4", "a gpt": by the first letter, which is enough for the names libblkid reports.
std::string with_article(const std::string& name) {
  const bool vowel =
      !name.empty() && std::string_view("aeiouxAEIOUX").find(name[0]) != std::string_view::npos;
  return (vowel ? "an " : "a ") + name;
}

std::optional<std::string> probe_value(blkid_probe probe, const char* name) {
  const char* value = nullptr;
  if (blkid_probe_lookup_value(probe, name, &value, nullptr) != 0 || value == nullptr)
    return std::nullopt;
  return std::string(value);
}

// What libblkid recognises on `path` ("an ext4 filesystem", "a dos partition table"), nullopt if
// nothing. safeprobe rather than fullprobe: two conflicting signatures are reported, not guessed.
Result<std::optional<std::string>> probe_signature(const std::string& path) {
  errno = 0;
  std::unique_ptr<blkid_struct_probe, void (*)(blkid_probe)> probe(
      blkid_new_probe_from_filename(path.c_str()), blkid_free_probe);
  if (!probe)
    return Status::from_errno(errno != 0 ? errno : EIO, "probe " + path + " for signatures");
  blkid_probe_enable_superblocks(probe.get(), 1);
  blkid_probe_set_superblocks_flags(probe.get(), BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE);
  blkid_probe_enable_partitions(probe.get(), 1);
  blkid_probe_set_partitions_flags(probe.get(), BLKID_PARTS_MAGIC);
  int rc = blkid_do_safeprobe(probe.get());
  if (rc == 1) return std::optional<std::string>();
  if (rc == -2)
    return std::optional<std::string>("more than one signature (see wipefs " + path + ")");
  if (rc < 0)
    return Status::from_errno(errno != 0 ? errno : EIO, "probe " + path + " for signatures");
  std::string found;
  if (auto type = probe_value(probe.get(), "TYPE")) {
    std::string usage = probe_value(probe.get(), "USAGE").value_or("");
    if (usage == "filesystem") {
      found = with_article(*type) + " filesystem";
    } else if (usage == "crypto") {
      found = with_article(*type) + " encrypted volume";
    } else {
      found = "a " + *type + " signature";  // raid members, LVM physical volumes, swap, ...
    }
  }
  if (auto table = probe_value(probe.get(), "PTTYPE")) {
    found += (found.empty() ? "" : " and ") + with_article(*table) + " partition table";
  }
  if (found.empty()) found = "an unnamed signature";
  return std::optional<std::string>(found);
}

// Whether a regular file has any data extent. Without SEEK_DATA support every byte may be data.
Result<bool> file_has_data(const std::string& path, const struct stat& st) {
  if (st.st_size == 0) return false;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(errno, "open " + path);
  off_t data = ::lseek(fd, 0, SEEK_DATA);
  int err = errno;
  ::close(fd);
  if (data >= 0) return true;
  if (err == ENXIO) return false;  // holes only
  if (err == EINVAL || err == EOPNOTSUPP) return true;
  return Status::from_errno(err, "SEEK_DATA on " + path);
}

}  // namespace

Result<std::optional<std::string>> existing_content(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Status::from_errno(errno, "stat " + path);
  }
  if (S_ISBLK(st.st_mode)) {
    auto signature = probe_signature(path);
    if (!signature) return signature.status();
    if (!*signature) return std::optional<std::string>();
    return std::optional<std::string>("holds " + **signature);
  }
  if (!S_ISREG(st.st_mode))
    return std::optional<std::string>();  // opening it as a destination says why not
  auto has_data = file_has_data(path, st);
  if (!has_data) return has_data.status();
  if (!*has_data) return std::optional<std::string>();
  // A recognised image is worth naming; a probe that fails only loses the name.
  auto signature = probe_signature(path);
  if (signature && *signature) return std::optional<std::string>("holds " + **signature);
  const uint64_t allocated = static_cast<uint64_t>(st.st_blocks) * 512;
  return std::optional<std::string>(
      "already holds data (" +
      std::to_string(allocated != 0 ? allocated : static_cast<uint64_t>(st.st_size)) + " bytes)");
}

}  // namespace clonefs
