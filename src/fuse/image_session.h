// What the FUSE handlers reach through the session's userdata: the clone being served, its
// hydrator, the logger and the image file (image/image_file.h: its rules and attributes). No
// SQLite here: the adapter sees the engine and the image file only.
#pragma once

#include <spdlog/logger.h>
#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "control/status.h"
#include "engine/clone.h"
#include "engine/hydrator.h"
#include "fuse/passthrough.h"
#include "fuse/spliced_reads.h"
#include "image/image_file.h"

namespace clonefs {

// What the connection asks of the kernel at INIT, from the mount's options.
struct ConnectionChoices {
  // The user's -o max_read=N (0: none): libfuse refuses the session unless init() repeats it.
  unsigned max_read = 0;
  // --writeback-cache: the kernel keeps written pages and sends them back in batches; fsync
  // writes them back before it sends FUSE_FSYNC (docs/SEMANTICS.md).
  bool writeback_cache = false;
  // Kernel passthrough once hydrated (fuse/passthrough.h); mount --no-passthrough: false. The
  // ledger a supervisor keeps for the connection's serving processes, -1 for none.
  bool passthrough = false;
  int passthrough_ledger_fd = -1;
};

class ImageSession {
 public:
  ImageSession(Clone& clone, Hydrator& hydrator, std::shared_ptr<spdlog::logger> logger,
               std::string image_path, std::string metadata_path, ImageAttributes attributes,
               ConnectionChoices connection = {});
  ImageSession(const ImageSession&) = delete;
  ImageSession& operator=(const ImageSession&) = delete;

  ImageFile& image() { return image_; }
  Hydrator& hydrator() { return hydrator_; }
  // Where a hydration control request is saved for the next mount.
  HydrationSettingsStore& saved_controls() { return clone_.metadata(); }
  spdlog::logger& log() { return *logger_; }
  uint64_t image_size() const { return image_.size(); }
  const std::string& image_path() const { return image_path_; }
  const std::string& metadata_path() const { return metadata_path_; }
  // Who may use the control channel: root and the user who mounted.
  bool may_control(uid_t uid) const { return uid == 0 || uid == owner_uid_; }
  pid_t pid() const { return pid_; }
  const ConnectionChoices& connection() const { return connection_; }
  Passthrough& passthrough() { return passthrough_; }
  SplicedReads& spliced_reads() { return spliced_reads_; }
  // Every region valid and committed, the metadata writable: an open may then be passthrough.
  // Commits what is valid but not yet committed (the last regions hydration copied).
  bool hydrated_and_committed();

  // Started by a supervisor (fuse/supervisor.h): shown in the status.
  void set_supervision(pid_t supervisor_pid, unsigned restarts, std::string last_restart) {
    supervisor_pid_ = supervisor_pid;
    restarts_ = restarts;
    last_restart_ = std::move(last_restart);
  }

  // With the writeback cache: called each time the kernel's write-back of a write past the end
  // is refused, from the worker thread that refused it (it must not wait on the mount). The
  // kernel grew IMAGE for that write; the hook has the size put back (fuse/mount_start.h).
  void set_on_size_refused(std::function<void()> hook) { on_size_refused_ = std::move(hook); }
  void size_refused() const {
    if (on_size_refused_) on_size_refused_();
  }

  // The live status (control/status.h), built by daemon/status_report.h; and as JSON.
  CloneStatus status() const;
  std::string status_json() const;

 private:
  Clone& clone_;
  Hydrator& hydrator_;
  std::shared_ptr<spdlog::logger> logger_;
  const std::string image_path_;
  const std::string metadata_path_;
  const uid_t owner_uid_;
  const pid_t pid_;
  const ConnectionChoices connection_;
  pid_t supervisor_pid_ = 0;
  unsigned restarts_ = 0;
  std::string last_restart_;
  std::function<void()> on_size_refused_;
  ImageFile image_;
  Passthrough passthrough_;
  SplicedReads spliced_reads_;
};

}  // namespace clonefs
