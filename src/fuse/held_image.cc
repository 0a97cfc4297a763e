#include "fuse/held_image.h"

#include <fcntl.h>
#include <libmount/libmount.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "control/control_protocol.h"
#include "io/posix_devices.h"

namespace clonefs {
namespace {

// Whether something is mounted at `path`, as the kernel lists it: libmount reads
// /proc/self/mountinfo and undoes its octal escaping of spaces and the like.
bool is_mount_point(const std::string& path) {
  libmnt_table* table = mnt_new_table();
  if (table == nullptr) return false;
  bool found = mnt_table_parse_mtab(table, nullptr) == 0 &&
               mnt_table_find_target(table, path.c_str(), MNT_ITER_BACKWARD) != nullptr;
  mnt_unref_table(table);
  return found;
}

// An empty file a mount created and left behind (its daemon was killed) is still clonefs's to
// remove; a file the user had never carries the mark.
bool created_by_a_mount(int fd, const struct stat& st) {
  char mark[8];
  return st.st_size == 0 && ::fgetxattr(fd, kCreatedImageXattr, mark, sizeof mark) > 0;
}

// Creates the image file if missing, with `mode` (the source's permission bits); holds it. An
// existing file is checked before anything is done to it (even the xattr set after this): it must
// be a regular file with one link, not a symlink, and not one of the clone's own files.
Result<HeldImage> prepare_image_file(const std::string& path, const Clone& clone, mode_t mode) {
  CLONEFS_RETURN_IF_ERROR(check_image_path(path));
  CLONEFS_RETURN_IF_ERROR(clone.check_image_storage(path));
  auto entry = DirectoryEntry::open(path);
  if (!entry) return entry.status().with_context("image");
  HeldImage image{std::move(*entry), UniqueFd(), {}, false};
  // O_NONBLOCK: a FIFO swapped in since the check must not hang the open.
  auto existing = image.entry.open_existing(O_RDONLY | O_NONBLOCK | O_NOCTTY);
  // A file its (unprivileged) owner may not read is still theirs to mount over: held by O_PATH.
  if (!existing && existing.status().code() == EACCES) existing = image.entry.open_existing(O_PATH);
  if (existing) {
    image.file = std::move(*existing);
  } else if (existing.status().code() == ENOENT) {
    auto created = image.entry.create(O_WRONLY, mode);
    if (!created) return created.status();
    image.file = std::move(*created);
    image.created = true;
    // Best effort: without user xattrs, only this daemon knows it created the file.
    (void)::fsetxattr(image.file.get(), kCreatedImageXattr, "1", 1, 0);
  } else {
    return existing.status().with_context("image");
  }
  if (::fstat(image.file.get(), &image.st) != 0) return Status::from_errno(errno, "image " + path);
  if (!S_ISREG(image.st.st_mode))
    return Status::error(EINVAL, "image " + path + " is not a regular file");
  if (image.st.st_nlink != 1) {
    return Status::error(EPERM, "image " + path + " has " + std::to_string(image.st.st_nlink) +
                                    " links: a hard link to another file is never mounted over");
  }
  if (!image.created) image.created = created_by_a_mount(image.file.get(), image.st);
  return image;
}

ImageAttributes attributes_of(const struct stat& st) {
  ImageAttributes a;
  a.mode = st.st_mode & 07777;
  a.uid = st.st_uid;
  a.gid = st.st_gid;
  a.atime = st.st_atim;
  a.mtime = st.st_mtim;
  a.ctime = st.st_ctim;
  return a;
}

}  // namespace

Result<MountPoint> hold_image(const std::string& image_path, const std::string& metadata_path,
                              const Clone& clone, const HeldConnection* inherited) {
  MountPoint mount_point;
  if (inherited != nullptr) {
    // IMAGE is mounted over: checked and prepared at the mount.
    mount_point.attributes = inherited->attributes;
    return mount_point;
  }
  auto prepared =
      prepare_image_file(image_path, clone, clone_permissions(clone.record().source_path));
  if (!prepared) return prepared.status();
  mount_point.image.emplace(std::move(*prepared));
  mount_point.attributes = attributes_of(mount_point.image->st);
  // Lets `clonefs status IMAGE` find the metadata while unmounted (best effort: the file
  // system holding IMAGE may not support user xattrs).
  (void)::fsetxattr(mount_point.image->file.get(), kMetadataXattr, metadata_path.data(),
                    metadata_path.size(), 0);
  return mount_point;
}

// Where libfuse mounts: as root, the very file held (the kernel follows /proc/self/fd/N to the
// open file, whatever its name now is; libfuse unmounts by the same name, the descriptor still
// open). Other users mount through fusermount3, a setuid program with its own checks, which
// cannot see this process's descriptors.
std::string mount_target(const std::string& image_path, const HeldImage* image) {
  if (image == nullptr || ::geteuid() != 0) return image_path;
  return "/proc/self/fd/" + std::to_string(image->file.get());
}

void remove_created_image(const MountPoint& mount_point, const std::string& image_path,
                          spdlog::logger& log) {
  const HeldImage* image = mount_point.held();
  if (image == nullptr || !image->created) return;
  Status removed = image->entry.remove_if_same(image->st.st_dev, image->st.st_ino);
  if (removed)
    log.info("removed {} (the mount had created it)", image_path);
  else
    log.warn("cannot remove {}, which the mount had created: {}", image_path, removed.message());
}

Status check_image_path(const std::string& image_path) {
  struct stat st {};
  // lstat: a symlink at IMAGE is refused, never mounted over (another user could have planted it
  // to have root mount on, and set xattrs on, a file of their choosing).
  if (::lstat(image_path.c_str(), &st) != 0) {
    if (errno == ENOTCONN) {
      return Status::error(ENOTCONN, "image " + image_path +
                                         " is a dead clonefs mount (its daemon is gone): run "
                                         "clonefs unmount " +
                                         image_path + " first");
    }
    if (errno == ENOENT) return Status::ok();  // created when mounting
    return Status::from_errno(errno, "image " + image_path);
  }
  if (S_ISLNK(st.st_mode)) {
    return Status::error(
        ELOOP, "image " + image_path + " is a symbolic link: give the path of the file itself");
  }
  if (S_ISDIR(st.st_mode)) {
    return Status::error(EISDIR, "image " + image_path +
                                     " is a directory; the image must be a file path "
                                     "(it is created if missing)");
  }
  if (!S_ISREG(st.st_mode))
    return Status::error(EINVAL, "image " + image_path + " is not a regular file");
  if (is_mount_point(image_path)) {
    return Status::error(EBUSY,
                         "image " + image_path + " is already a mount point (already mounted?)");
  }
  return Status::ok();
}

}  // namespace clonefs
