#include "fuse/image_session.h"

#include <unistd.h>

#include <algorithm>

#include "control/status_report.h"

namespace clonefs {

ImageSession::ImageSession(Clone& clone, Hydrator& hydrator, std::shared_ptr<spdlog::logger> logger,
                           std::string image_path, std::string metadata_path,
                           ImageAttributes attributes, unsigned max_read)
    : clone_(clone),
      hydrator_(hydrator),
      logger_(std::move(logger)),
      image_path_(std::move(image_path)),
      metadata_path_(std::move(metadata_path)),
      owner_uid_(::getuid()),
      pid_(::getpid()),
      max_read_(max_read),
      attributes_(attributes) {}

struct stat ImageSession::stat() const {
  ImageAttributes a = attributes();
  struct stat st {};
  st.st_ino = 1;  // FUSE_ROOT_ID: the mount's root is the image itself
  st.st_mode = S_IFREG | (a.mode & 07777);
  st.st_nlink = 1;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_size = static_cast<off_t>(image_size());
  st.st_blocks = static_cast<blkcnt_t>((image_size() + 511) / 512);
  // The I/O size tools such as cp and dd pick up: a region (capped), the unit the engine copies.
  st.st_blksize = static_cast<blksize_t>(std::min<uint64_t>(clone_.record().region_size, 1 << 20));
  st.st_atim = a.atime;
  st.st_mtim = a.mtime;
  st.st_ctim = a.ctime;
  return st;
}

ImageAttributes ImageSession::attributes() const {
  std::lock_guard lock(mu_);
  return attributes_;
}

void ImageSession::set_attributes(const ImageAttributes& attributes) {
  std::lock_guard lock(mu_);
  attributes_ = attributes;
}

std::string ImageSession::status_json() const {
  return live_status(
             {image_path_, metadata_path_, clone_.record(), clone_.engine(), hydrator_, pid_})
      .dump();
}

}  // namespace clonefs
