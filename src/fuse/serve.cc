#include "fuse/serve.h"

#include <atomic>
#include <csignal>
#include <cstring>
#include <functional>
#include <optional>
#include <thread>

#include "control/status_prometheus.h"
#include "daemon/hydration_control.h"
#include "daemon/status_report.h"
#include "engine/clone.h"
#include "engine/hydrator.h"
#include "fuse/held_image.h"
#include "fuse/image_session.h"
#include "fuse/mount_profiles.h"
#include "fuse/mount_start.h"
#include "fuse/mounted_session.h"
#include "fuse/predecessors.h"
#include "fuse/supervisor_channel.h"

namespace clonefs {
namespace {

// The connection a restarted serving process serves instead of mounting; nullptr for the first.
const HeldConnection* inherited_connection(const Supervision* supervision) {
  return supervision != nullptr && supervision->connection ? &*supervision->connection : nullptr;
}

OpenOptions open_options_for(const ServeOptions& options) {
  spdlog::logger& log = *options.logger;
  OpenOptions open_options;
  open_options.engine.copy_on_read = options.copy_on_read;
  open_options.nbd = options.nbd;
  open_options.engine.on_commit_failure = [&log](const Status& failed) {
    log.error("periodic commit failed, metadata is read-only until remounted: {}",
              failed.message());
  };
  open_options.engine.best_copy_method = options.best_copy_method;
  open_options.engine.on_copy_fallback = [&log](CopyMethod from, CopyMethod to, const Status& why) {
    log.warn("hydration copies by {} from now on, {} does not apply: {}", to_string(to),
             to_string(from), why.message());
  };
  return open_options;
}

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

// How the session went: its start (mount and handshake), its readiness, the loop's end.
struct SessionEnd {
  Status startup;
  Status ready;
  int loop_rc = 0;
};

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

// After the loop: stop copying, then the final commit. The metadata is final once this returns.
int finish(Clone& clone, Hydrator& hydrator, spdlog::logger& log) {
  // A copy waiting for an unreachable remote source would hold the unmount up to its timeout.
  clone.source().cancel_waits();
  hydrator.stop();
  Status closed = clone.engine().close();
  EngineStatus s = clone.engine().status();
  if (!closed) {
    log.error("final commit failed: {}", closed.message());
    return 1;
  }
  log.info("final commit done: {} of {} regions valid", s.regions_valid, s.regions_total);
  return 0;
}

// Once the mount is ready: hydration starts as the settings say, the log tells how the clone is
// served, and the metrics file is kept up to date.
void start_serving(const ServeOptions& options, const HydrationSettings& settings, Clone& clone,
                   Hydrator& hydrator, ImageSession& state,
                   std::optional<MetricsFileWriter>& metrics) {
  spdlog::logger& log = *options.logger;
  hydrator.set_paused(settings.paused);
  log.info(
      "serving {} on {} (hydration {}, threshold {}, batch {}, rate limit {} B/s; "
      "copy-on-read {}; copy method {}, best allowed {})",
      options.metadata_path, options.image_path, settings.paused ? "paused" : "on",
      settings.threshold, settings.batch, settings.rate, options.copy_on_read ? "on" : "off",
      to_string(clone.engine().copy_method()), to_string(options.best_copy_method));
  if (!options.metrics_file.empty()) {
    metrics.emplace(
        options.metrics_file, options.metrics_interval, [&state] { return state.status(); },
        [&log](const Status& failed) { log.warn("{}", failed.message()); });
  }
}

// A mount's life, top to bottom: the setup in order, then the teardown in reverse order.
int serve_clone(const ServeOptions& options) {
  spdlog::logger& log = *options.logger;
  // Whoever waits for the mount learns why it could not start.
  auto failed = [&options](const Status& why) {
    options.report(why);
    return 1;
  };
  // 1. The clone, every check made (engine/clone.h), and what killed predecessors made valid.
  const OpenOptions open_options = open_options_for(options);
  auto clone = Clone::open(options.metadata_path, open_options);
  if (!clone) return failed(clone.status());
  if (Status adopted = adopt_surviving_regions(options.supervision, **clone, log); !adopted)
    return failed(adopted);
  // 2. The profile to hydrate first and the hydration settings, before anything is saved: a
  // profile of another source changes nothing.
  auto plan = profile_hydration_plan(options.profile_path, **clone);
  if (!plan) return failed(plan.status());
  auto settings = settings_for_mount((*clone)->metadata(), options.hydration_controls);
  if (!settings) return failed(settings.status());
  // 3. IMAGE, held (or, for a successor, the attributes of the one mounted over).
  auto mount_point = hold_image(options.image_path, options.metadata_path, **clone,
                                inherited_connection(options.supervision));
  if (!mount_point) return failed(mount_point.status());
  // 4. Hydration, paused until the mount is up (nothing to copy for if mounting fails), and the
  // recording of this mount's profile.
  HydrationSettings held = *settings;
  held.paused = true;
  Hydrator hydrator((*clone)->engine(), held);
  if (!plan->empty()) hydrator.set_plan(std::move(*plan));
  hydrator.set_on_demand(options.on_demand_priority);
  ProfileRecording recording(options.record_profile_path, **clone,
                             inherited_connection(options.supervision) != nullptr, log);
  // 5. What the FUSE handlers reach.
  ImageSession state(
      **clone, hydrator, options.logger, options.image_path, options.metadata_path,
      mount_point->attributes,
      {max_read_option(options.fuse_options), options.writeback_cache, options.passthrough,
       options.supervision != nullptr ? options.supervision->passthrough_ledger_fd : -1});
  if (const Supervision* supervision = options.supervision) {
    state.set_supervision(supervision->supervisor_pid, supervision->restarts,
                          supervision->last_restart);
  }
  std::optional<SizeRepinThread> size_repin;
  keep_image_size(options, state, size_repin);
  // 6. The session until unmounted; once ready, hydration starts and the metrics file is kept.
  std::optional<MetricsFileWriter> metrics;  // stopped before the final commit
  const SessionEnd end = run_session(options, *mount_point, state, [&] {
    start_serving(options, *settings, **clone, hydrator, state, metrics);
  });
  // The teardown, in reverse order.
  if (!end.startup) {
    remove_created_image(*mount_point, options.image_path, log);
    recording.abandon();
    hydrator.stop();
    (void)(*clone)->engine().close();
    return failed(end.startup);
  }
  recording.finish();
  metrics.reset();
  int rc = finish(**clone, hydrator, log);
  // A supervised mount's supervisor removes it (`clonefs unmount` tells the user).
  if (options.supervision == nullptr) remove_created_image(*mount_point, options.image_path, log);
  return end.loop_rc < 0 || !end.ready ? 1 : rc;
}

// Once the clone is closed, the metrics file shows what a collector should keep: the committed
// state, not mounted (the live figures of a daemon that is gone would look current).
void write_final_metrics(const ServeOptions& options) {
  auto status = offline_status(options.metadata_path);
  Status written =
      status ? write_file_atomically(options.metrics_file, format_status_prometheus(*status))
             : status.status();
  if (!written) options.logger->warn("final metrics not written: {}", written.message());
}

}  // namespace

int serve_image(const ServeOptions& options) {
  int rc = serve_clone(options);
  if (!options.metrics_file.empty()) write_final_metrics(options);
  return rc;
}

}  // namespace clonefs
