#include "fuse/serve.h"

#include <atomic>
#include <csignal>
#include <cstring>
#include <optional>
#include <thread>

#include "fuse/image_session.h"
#include "fuse/mount_start.h"
#include "fuse/mounted_session.h"
#include "fuse/supervisor_channel.h"

namespace clonefs {
namespace {

// With the writeback cache, the size the kernel grew for a write past the end is put back by
// a truncate, never sent from a serving process whose death a supervisor waits for (see
// await_start): a child of the supervisor sends it; unsupervised, a thread here, which outlives
// the session (its truncate then fails).
void keep_image_size(const ServeOptions& options, ImageSession& state,
                     std::optional<SizeRepinThread>& size_repin) {
  if (!options.writeback_cache) return;
  if (options.supervision != nullptr) {
    state.set_on_size_refused([channel = options.supervision->channel, &log = *options.logger] {
      if (Status sent = send_size_refused(channel); !sent) log.warn("{}", sent.message());
    });
    return;
  }
  size_repin.emplace(options.image_path, state.image_size(), options.logger);
  state.set_on_size_refused([&size_repin] { size_repin->request(); });
}

// Whether the mount's start went well. A restarted serving process sends its own connection
// nothing, and neither does the first one of a supervised mount: were it killed with such a
// request (a stat) read by one of its dead workers, the request would wait for an answer only a
// successor could give, the process could not finish dying, and the supervisor, waiting for that
// death, would never start the successor — the mount hung for good (RestartTest.
// PauseOfAKillIsMeasuredAndRestartsAreInTheStatus hung once in 4 CI runs, a successor's thread
// in FUSE getattr). The supervisor runs the start in a child of its own and tells the first
// serving process how it went; a restarted one serves a connection already set up.
// Unsupervised, no successor could answer anyway: the start runs here.
Status await_start(const ServeOptions& options, uint64_t image_size,
                   const std::atomic<bool>& serving_ended) {
  const Supervision* supervision = options.supervision;
  if (inherited_connection(supervision) != nullptr) return Status::ok();
  if (supervision != nullptr) return await_mount_start(supervision->channel, serving_ended);
  return start_mount(options, image_size);
}

// The session's life: mounted (or the held connection served), the INIT handshake, readiness
// awaited in a thread while the loop serves (then `on_ready`, and the report), the loop until
// unmounted or signalled; the session torn down before this returns.
SessionEnd run_session(const ServeOptions& options, const MountPoint& mount_point,
                       ImageSession& state, const std::function<void()>& on_ready) {
  spdlog::logger& log = *options.logger;
  const Supervision* supervision = options.supervision;
  const HeldConnection* inherited = inherited_connection(supervision);
  SessionEnd end;
  std::thread probe;
  std::atomic<bool> serving_ended{false};
  {
    MountedSession mounted(options.fuse_options, options.image_path, state, inherited,
                           mount_target(options.image_path, mount_point.held()));
    end.startup = mounted.status();
    if (end.startup) {
      end.startup = mounted.handshake(supervision, mount_point.attributes, mount_point.held(),
                                      state.image_size());
    }
    if (!end.startup) return end;  // after the session's teardown, which unmounted
    if (inherited != nullptr) {
      log.info("serving the connection of {} again (restart {}: {})", options.image_path,
               supervision->restarts, supervision->last_restart);
    }
    // Joined after the session is torn down: a stat stuck on a dead session returns only then.
    probe = std::thread([&] {
      end.ready = await_start(options, state.image_size(), serving_ended);
      if (end.ready) on_ready();
      options.report(end.ready);
    });
    end.loop_rc = mounted.loop({options.max_threads, supervision != nullptr, &log});
    serving_ended = true;
    // From here on a SIGTERM — sent right after umount(8) returned, by a service manager or a
    // shutdown script — would kill the process in the middle of the final commit. Ignored
    // before the session's teardown: libfuse then leaves a handler that is not its own in
    // place, where it would otherwise restore the default (death) and leave a window. The
    // daemon exits once the commit is done.
    for (int signal : {SIGTERM, SIGINT, SIGHUP}) std::signal(signal, SIG_IGN);
    if (supervision != nullptr && ::getppid() != supervision->supervisor_pid) {
      log.error("the supervisor (pid {}) is gone: serving stops and the mount ends",
                supervision->supervisor_pid);
    } else if (end.loop_rc > 0) {
      log.info("signal {} received: unmounting", end.loop_rc);
    }
    if (end.loop_rc < 0) log.error("FUSE session loop failed: {}", std::strerror(-end.loop_rc));
  }
  probe.join();
  return end;
}

}  // namespace

// The session's setup in order, its teardown in reverse order.
SessionEnd serve_image(const ServeOptions& options, const ServedClone& served) {
  const Supervision* supervision = options.supervision;
  // 1. What the FUSE handlers reach.
  ImageSession state(
      served.clone, served.hydrator, options.logger, options.image_path, served.metadata_path,
      served.mount_point.attributes,
      {max_read_option(options.fuse_options), options.writeback_cache, options.passthrough,
       supervision != nullptr ? supervision->passthrough_ledger_fd : -1});
  if (supervision != nullptr) {
    state.set_supervision(supervision->supervisor_pid, supervision->restarts,
                          supervision->last_restart);
  }
  std::optional<SizeRepinThread> size_repin;
  keep_image_size(options, state, size_repin);
  // 2. The session until unmounted; once ready, hydration starts and the metrics file is kept.
  std::optional<MetricsFileWriter> metrics;
  SessionEnd end = run_session(options, served.mount_point, state, [&] {
    served.on_ready();
    if (options.metrics_file.empty()) return;
    metrics.emplace(
        options.metrics_file, options.metrics_interval, [&state] { return state.status(); },
        [&log = *options.logger](const Status& failed) { log.warn("{}", failed.message()); });
  });
  // 3. The metrics file's updates stop with the session, before the caller's final commit.
  metrics.reset();
  return end;
}

}  // namespace clonefs
