// What a mount's start asks of the mount itself, and who asks it. Each of these requests waits
// for an answer from a serving process; none may wait inside a process whose death the
// supervisor waits for (fuse/supervisor.h, SuperviseOptions::start_mount).
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "fuse/serve_options.h"
#include "util/status.h"

namespace clonefs {

// What a mount's start asks of the mount itself, once it serves: the size pinned for the
// writeback cache, a stat proving the kernel's INIT handshake succeeded and requests are served,
// the readahead (not fatal: logged). Each request waits for an answer from a serving process, so
// it never runs in one whose death a supervisor waits for: a supervised mount runs it in a
// short-lived child of the supervisor (fuse/supervisor.h, SuperviseOptions::start_mount).
Status start_mount(const ServeOptions& options, uint64_t image_size);

// With the writeback cache, the kernel takes IMAGE's size from its own inode, never from the
// daemon: a truncate to `image_size` (which the image accepts: it keeps its size) sets it, at the
// start and again after a write past the end grew it (the write-back of which is refused).
Status pin_image_size(const std::string& image_path, uint64_t image_size);

// An unsupervised mount's pin_image_size after a refused write-back, in a thread of the serving
// process (as its start: no successor could answer a request stuck on the mount anyway). Asked
// again while it runs, it runs once more. Destroyed after the session's teardown, so that a
// truncate waiting on the mount then fails.
class SizeRepinThread {
 public:
  SizeRepinThread(std::string image_path, uint64_t image_size,
                  std::shared_ptr<spdlog::logger> logger);
  ~SizeRepinThread();
  SizeRepinThread(const SizeRepinThread&) = delete;
  SizeRepinThread& operator=(const SizeRepinThread&) = delete;

  void request();

 private:
  void run();

  const std::string image_path_;
  const uint64_t image_size_;
  std::shared_ptr<spdlog::logger> logger_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool requested_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

// In the first serving process of a supervised mount: the supervisor's word on start_mount,
// which it waits for before it hydrates and reports ready. Polled, so that it ends with the
// session (`serving_ended`) if no word comes.
Status await_mount_start(int channel, const std::atomic<bool>& serving_ended);

}  // namespace clonefs
