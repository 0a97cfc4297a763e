// IMAGE, the regular file a mount is made over: checked, created if missing, and held by this
// process so that a name swapped after the check changes nothing (io/safe_files.h).
#pragma once

#include <spdlog/logger.h>
#include <sys/stat.h>

#include <optional>
#include <string>

#include "engine/clone.h"
#include "fuse/supervision.h"
#include "image/image_file.h"
#include "io/safe_files.h"
#include "io/unique_fd.h"
#include "util/status.h"

namespace clonefs {

// IMAGE as this process holds it: the directory it is in, and the very file that was checked
// (or created), on which the mount is made and the xattrs set.
struct HeldImage {
  DirectoryEntry entry;
  UniqueFd file;
  struct stat st {};
  bool created = false;  // by this mount: removed after the unmount (or if mounting fails)
};

// What a serving process mounts over: the first one holds IMAGE (it outlives the session, which
// is mounted on through its descriptor); a successor serves a connection already mounted over
// it, and has only the attributes its first predecessor took.
struct MountPoint {
  std::optional<HeldImage> image;
  ImageAttributes attributes;

  const HeldImage* held() const { return image ? &*image : nullptr; }
};

// Holds IMAGE for the mount, creating it with the source's permission bits if missing, and
// marks it with the metadata's path (`clonefs status IMAGE`). With `inherited` set (a successor),
// nothing is done to IMAGE.
Result<MountPoint> hold_image(const std::string& image_path, const std::string& metadata_path,
                              const Clone& clone, const HeldConnection* inherited);

// Where libfuse mounts: as root, the very file held; for other users, the path.
std::string mount_target(const std::string& image_path, const HeldImage* image);

// What the mount created, it removes: an empty file left where IMAGE was would look like a disk
// image with nothing in it. Only the very file created, in the directory it was created in.
void remove_created_image(const MountPoint& mount_point, const std::string& image_path,
                          spdlog::logger& log);

// Refuses an IMAGE path that is a directory, something other than a regular file, or already a
// mount point (also a dead FUSE mount whose daemon is gone), naming the path.
Status check_image_path(const std::string& image_path);

}  // namespace clonefs
