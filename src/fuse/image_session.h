// What the FUSE handlers reach through the session's userdata: the clone being served, its
// hydrator, the logger and the image file's attributes. No SQLite here (STYLE.md: the adapter
// sees the engine only).
#pragma once

#include <spdlog/logger.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>

#include "engine/clone.h"
#include "engine/hydrator.h"

namespace clonefs {

// The image file's owner, mode and times. Only the size is the clone's; the rest is the file's
// (copied from the file mounted over, changeable with chmod/chown/touch, not persisted).
struct ImageAttributes {
  mode_t mode = 0644;  // permission bits only
  uid_t uid = 0;
  gid_t gid = 0;
  struct timespec atime {};
  struct timespec mtime {};
  struct timespec ctime {};
};

class ImageSession {
 public:
  ImageSession(Clone& clone, Hydrator& hydrator, std::shared_ptr<spdlog::logger> logger,
               std::string image_path, std::string metadata_path, ImageAttributes attributes,
               unsigned max_read = 0);
  ImageSession(const ImageSession&) = delete;
  ImageSession& operator=(const ImageSession&) = delete;

  Clone& clone() { return clone_; }
  CloneEngine& engine() { return clone_.engine(); }
  Hydrator& hydrator() { return hydrator_; }
  spdlog::logger& log() { return *logger_; }
  uint64_t image_size() const { return clone_.record().image_size; }
  const std::string& image_path() const { return image_path_; }
  const std::string& metadata_path() const { return metadata_path_; }
  // Who may use the control channel: root and the user who mounted.
  bool may_control(uid_t uid) const { return uid == 0 || uid == owner_uid_; }
  pid_t pid() const { return pid_; }
  // The user's -o max_read=N (0: none): libfuse refuses the session unless init() repeats it.
  unsigned max_read() const { return max_read_; }

  struct stat stat() const;  // the image's attributes as getattr reports them
  ImageAttributes attributes() const;
  void set_attributes(const ImageAttributes& attributes);
  // The live status JSON (control/status_report.h).
  std::string status_json() const;

 private:
  Clone& clone_;
  Hydrator& hydrator_;
  std::shared_ptr<spdlog::logger> logger_;
  const std::string image_path_;
  const std::string metadata_path_;
  const uid_t owner_uid_;
  const pid_t pid_;
  const unsigned max_read_;
  mutable std::mutex mu_;
  ImageAttributes attributes_;  // guarded by mu_
};

}  // namespace clonefs
