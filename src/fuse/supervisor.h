// The supervisor: a small process that holds the FUSE connection while serving processes come
// and go, so that a crashed one costs the image's users a pause instead of I/O errors.
//
// It forks the first serving process, which opens the clone, mounts and hands the connection
// over (fuse/supervisor_channel.h). When a serving process dies with the connection still
// mounted, the supervisor logs why (exit code or signal), asks the kernel to queue again the
// requests the dead process had read (FUSE_NOTIFY_RESEND) and forks a successor, which reopens
// the clone from its metadata as a mount after a crash does and serves the same connection
// (fuse/connection_resume.h). It opens no clone, no SQLite, no engine: nothing it does can fail
// the way a serving process can.
//
// The mount ends when a serving process exits 0 (unmounted, or stopped by SIGTERM/SIGINT/SIGHUP,
// which the supervisor forwards), when the connection is gone, when the first serving process
// fails before the mount is ready (a kill once it has handed the connection over is restarted as
// any other), when the mount's start fails, or after more than `restart_limit` restarts within
// `restart_window` (a crash loop). If the supervisor itself dies, its serving process gets SIGTERM
// (PR_SET_PDEATHSIG), makes its final commit and exits: the mount ends as when the daemon was
// killed before supervisors existed.
#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fuse/supervision.h"
#include "util/status.h"

namespace clonefs {

struct SuperviseOptions {
  std::string image_path;
  unsigned restart_limit = 10;
  std::chrono::seconds restart_window{60};
  std::shared_ptr<spdlog::logger> logger;
  // Called exactly once, in the supervisor: OK once the first serving process is ready, or the
  // error that stopped it.
  std::function<void(const Status&)> report;
  // Runs in each forked serving process; returns its exit code. It must send its report (ready
  // or error) through supervision.channel (send_report), and the first one its connection.
  std::function<int(const Supervision&)> serve;
  // Runs in a short-lived child of the supervisor once the first serving process has handed the
  // connection over: every request the mount's start sends to the mount itself (fuse/serve.h,
  // start_mount). Its result is the mount's readiness, and the first serving process's word to
  // start hydrating. Never inside a serving process: one killed while its own worker held such a
  // request could not finish dying (the request waits for an answer only a successor could give)
  // while the supervisor waited for that death. Not waited for before a restart: its request is
  // queued again and answered by the successor. Unset: the first serving process's report is the
  // mount's readiness.
  std::function<Status(uint64_t image_size)> start_mount;
  // Runs in a short-lived child of the supervisor each time a serving process reports a refused
  // write-back past the end (send_size_refused): the truncate putting back the size the kernel
  // grew for it (fuse/mount_start.h, pin_image_size). Never inside a serving process, for the
  // reason given at start_mount; one at a time, and one more if asked again meanwhile. Unset:
  // such reports are ignored.
  std::function<Status(uint64_t image_size)> pin_size;
  // Descriptors only the supervisor may hold (a pipe its waiting parent reads to EOF), closed in
  // each serving process.
  std::vector<int> supervisor_only_fds;
};

// Returns the exit code of the whole mount: 0 after a clean end, 1 otherwise.
int supervise(const SuperviseOptions& options);

// "signal 9 (Killed)", "exit code 1": a waitpid status, as the log and status show it.
std::string describe_exit(int wait_status);

}  // namespace clonefs
