// The FUSE session of one serving process: made and mounted (or, for a successor, attached to
// the connection the supervisor holds), the kernel's INIT handshake, the request loop; torn down
// in reverse order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fuse/held_image.h"
#include "fuse/image_session.h"
#include "fuse/request_loop.h"
#include "util/status.h"

struct fuse_session;

namespace clonefs {

// The session, mounted on construction's success, torn down in reverse order.
class MountedSession {
 public:
  // `fuse_options`: the user's -o values; `held`: the connection a successor serves instead of
  // mounting (nullptr for the first one); `target`: where the first one mounts (mount_target).
  MountedSession(const std::vector<std::string>& fuse_options, const std::string& image_path,
                 ImageSession& state, const HeldConnection* held, const std::string& target);
  ~MountedSession();
  MountedSession(const MountedSession&) = delete;
  MountedSession& operator=(const MountedSession&) = delete;

  const Status& status() const { return status_; }

  // The INIT handshake, before any worker thread reads: a restarted serving process replays the
  // kernel's INIT its first predecessor recorded; the first one, when supervised, records it and
  // hands the connection (and with it, unmounting) to the supervisor. Unsupervised, the loop
  // answers INIT itself.
  Status handshake(const Supervision* supervision, const ImageAttributes& attributes,
                   const HeldImage* image, uint64_t image_size);

  // Runs until unmounted (fusermount3 -u, umount) or SIGINT/SIGTERM/SIGHUP.
  int loop(const RequestLoopOptions& options);

 private:
  void attach_io(ImageSession& state);

  fuse_session* session_ = nullptr;
  bool signals_ = false;
  bool mounted_ = false;
  Status status_;
};

// The value of the last max_read=N among the -o options, 0 if none (libfuse parses it too).
unsigned max_read_option(const std::vector<std::string>& fuse_options);

}  // namespace clonefs
