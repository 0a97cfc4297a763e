#include "fuse/serve.h"

#include <fcntl.h>
#include <libmount/libmount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>

#include "control/control_protocol.h"
#include "control/status_prometheus.h"
#include "daemon/hydration_control.h"
#include "daemon/status_report.h"
#include "engine/access_profile.h"
#include "engine/clone.h"
#include "engine/hydrator.h"
#include "fuse/connection_resume.h"
#include "fuse/image_ops.h"
#include "fuse/image_session.h"
#include "fuse/mount_start.h"
#include "fuse/request_loop.h"
#include "fuse/supervisor_channel.h"
#include "io/posix_devices.h"
#include "io/safe_files.h"

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

// IMAGE as this process holds it: the directory it is in, and the very file that was checked
// (or created), on which the mount is made and the xattrs set; a name swapped after the check
// changes nothing (io/safe_files.h).
struct HeldImage {
  DirectoryEntry entry;
  UniqueFd file;
  struct stat st {};
  bool created = false;  // by this mount: removed after the unmount (or if mounting fails)
};

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

// Where libfuse mounts: as root, the very file held (the kernel follows /proc/self/fd/N to the
// open file, whatever its name now is; libfuse unmounts by the same name, the descriptor still
// open). Other users mount through fusermount3, a setuid program with its own checks, which
// cannot see this process's descriptors.
std::string mount_target(const std::string& image_path, const HeldImage* image) {
  if (image == nullptr || ::geteuid() != 0) return image_path;
  return "/proc/self/fd/" + std::to_string(image->file.get());
}

// libfuse's argument vector: defaults first, so the user's -o options can override them.
// default_permissions, which no option turns off: the kernel enforces the image's mode and
// ownership (without it, allow_other lets every user read, write and chmod a root's image).
std::vector<std::string> fuse_arguments(const ServeOptions& options) {
  std::vector<std::string> args = {"clonefs", "-o",
                                   "fsname=clonefs,subtype=clonefs,default_permissions"};
  for (const std::string& o : options.fuse_options) {
    args.push_back("-o");
    args.push_back(o);
  }
  return args;
}

// The value of the last max_read=N among the -o options, 0 if none (libfuse parses it too).
unsigned max_read_option(const std::vector<std::string>& fuse_options) {
  unsigned max_read = 0;
  for (const std::string& list : fuse_options) {
    std::stringstream items(list);
    for (std::string item; std::getline(items, item, ',');) {
      constexpr std::string_view kKey = "max_read=";
      if (item.rfind(kKey, 0) == 0) {
        max_read = static_cast<unsigned>(std::strtoul(item.c_str() + kKey.size(), nullptr, 0));
      }
    }
  }
  return max_read;
}

// The session, mounted on construction's success, torn down in reverse order.
class MountedSession {
 public:
  MountedSession(const ServeOptions& options, ImageSession& state, const HeldConnection* held,
                 const std::string& target) {
    std::vector<std::string> strings = fuse_arguments(options);
    std::vector<char*> argv;
    for (std::string& s : strings) argv.push_back(s.data());
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
    session_ = fuse_session_new(&args, &image_operations(), sizeof(fuse_lowlevel_ops), &state);
    fuse_opt_free_args(&args);
    if (session_ == nullptr) {
      status_ = Status::error(EINVAL, "invalid FUSE options for " + options.image_path);
      return;
    }
    if (fuse_set_signal_handlers(session_) != 0) {
      status_ = Status::error(EIO, "cannot install signal handlers");
      return;
    }
    signals_ = true;
    if (held != nullptr) {
      // libfuse takes /dev/fd/N as "already open and mounted": nothing to unmount here.
      std::string device = "/dev/fd/" + std::to_string(held->fuse_fd);
      if (fuse_session_mount(session_, device.c_str()) != 0) {
        status_ = Status::error(EIO, "cannot serve the connection of " + options.image_path +
                                         " held by the supervisor");
        return;
      }
      attach_io(state);
      return;
    }
    if (fuse_session_mount(session_, target.c_str()) != 0) {
      status_ =
          Status::error(EIO, "cannot mount " + options.image_path +
                                 " (is /dev/fuse usable, and are you root or the file's owner?)");
      return;
    }
    mounted_ = true;
    attach_io(state);
  }
  // Before INIT is read or replayed: its reply must offer passthrough (fuse/passthrough.h).
  void attach_io(ImageSession& state) {
    if (int rc = attach_passthrough(session_, state); rc != 0)
      status_ = Status::error(-rc, "cannot route the FUSE connection's I/O for passthrough");
  }
  ~MountedSession() {
    if (mounted_) fuse_session_unmount(session_);
    if (signals_) fuse_remove_signal_handlers(session_);
    if (session_) fuse_session_destroy(session_);
  }
  MountedSession(const MountedSession&) = delete;
  MountedSession& operator=(const MountedSession&) = delete;

  const Status& status() const { return status_; }

  // The INIT handshake, before any worker thread reads: a restarted serving process replays the
  // kernel's INIT its first predecessor recorded; the first one, when supervised, records it and
  // hands the connection (and with it, unmounting) to the supervisor. Unsupervised, the loop
  // answers INIT itself.
  Status handshake(const Supervision* supervision, const ImageAttributes& attributes,
                   const HeldImage* image, uint64_t image_size) {
    if (supervision == nullptr) return Status::ok();
    if (supervision->connection)
      return replay_init(session_, supervision->connection->init_request);
    auto init = receive_init(session_);
    if (!init) return init.status();
    HeldConnection connection{fuse_session_fd(session_), std::move(*init), attributes,
                              image != nullptr && image->created, image_size};
    if (image != nullptr) {
      connection.image_device = image->st.st_dev;
      connection.image_inode = image->st.st_ino;
    }
    CLONEFS_RETURN_IF_ERROR(send_connection(supervision->channel, connection));
    mounted_ = false;
    return Status::ok();
  }

  // Runs until unmounted (fusermount3 -u, umount) or SIGINT/SIGTERM/SIGHUP.
  int loop(const RequestLoopOptions& options) { return run_request_loop(session_, options); }

 private:
  fuse_session* session_ = nullptr;
  bool signals_ = false;
  bool mounted_ = false;
  Status status_;
};

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

}  // namespace

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

namespace {

// A successor records into the profile its killed predecessor was recording (its last periodic
// write): without this, the successor's first write would replace the mount's profile with only
// what came after the kill. A file missing or unusable starts the recording afresh, as a mount.
void resume_recording(ProfileRecorder& recorder, const std::string& path, spdlog::logger& log) {
  auto earlier = read_profile(path);
  if (!earlier) {
    if (earlier.status().code() != ENOENT) {
      log.warn("recording the access profile afresh: {}", earlier.status().message());
    }
    return;
  }
  if (Status resumed = recorder.resume(*earlier); !resumed) {
    log.warn("recording the access profile afresh: {}", resumed.message());
  } else {
    log.info("access profile {}: carrying on the previous serving process's {} runs", path,
             earlier->runs.size());
  }
}

// The first serving process of a supervised mount, before anything is written: a description
// of the destination for the supervisor to hold (Supervision::destination_witness_fd). Opened
// through the descriptor the engine writes with, so it is that very file even if its name was
// replaced since (the path only for a destination with no descriptor, which the binary has not).
Status hand_over_destination_witness(const Supervision& supervision, Clone& clone) {
  const int written_through = clone.destination().file_descriptor();
  const std::string path = written_through >= 0 ? "/proc/self/fd/" + std::to_string(written_through)
                                                : clone.record().destination_path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(errno, "destination " + path);
  Status sent = send_destination_witness(supervision.channel, fd);
  ::close(fd);
  return sent;
}

// Supervised: what a killed predecessor made valid is valid here too (engine/surviving_regions.h),
// before any request is served. A successor that cannot adopt it must not serve.
Status adopt_surviving_regions(const ServeOptions& options, Clone& clone) {
  const Supervision* supervision = options.supervision;
  if (supervision == nullptr || supervision->surviving_regions_fd < 0) return Status::ok();
  auto surviving =
      SurvivingRegions::map(supervision->surviving_regions_fd, clone.engine().geometry());
  if (!surviving) return surviving.status();
  // The supervisor confirms a predecessor's syncs before it starts a successor (and spoils the
  // record if it cannot): the first one hands over what it confirms them with.
  if (!supervision->connection)
    CLONEFS_RETURN_IF_ERROR(hand_over_destination_witness(*supervision, clone));
  const uint64_t adopted = clone.engine().adopt_surviving(std::move(*surviving));
  if (adopted != 0) {
    options.logger->info("{} regions the previous serving process made valid are valid again",
                         adopted);
  }
  return Status::ok();
}

int serve_clone(const ServeOptions& options) {
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
  auto clone = Clone::open(options.metadata_path, open_options);
  if (!clone) {
    options.report(clone.status());
    return 1;
  }
  if (Status adopted = adopt_surviving_regions(options, **clone); !adopted) {
    options.report(adopted);
    return 1;
  }
  // Before anything is saved: a profile of another source changes nothing.
  std::vector<RegionRun> plan;
  if (!options.profile_path.empty()) {
    auto profile = read_profile(options.profile_path);
    auto runs = profile ? profile_plan(*profile, options.profile_path, (*clone)->record(),
                                       (*clone)->engine().geometry())
                        : Result<std::vector<RegionRun>>(profile.status());
    if (!runs) {
      options.report(runs.status());
      return 1;
    }
    plan = std::move(*runs);
  }
  auto settings = settings_for_mount((*clone)->metadata(), options.hydration_controls);
  if (!settings) {
    options.report(settings.status());
    return 1;
  }
  const Supervision* supervision = options.supervision;
  const HeldConnection* inherited =
      supervision != nullptr && supervision->connection ? &*supervision->connection : nullptr;
  std::optional<HeldImage> image;  // outlives the session: mounted on through its descriptor
  ImageAttributes attributes;
  if (inherited != nullptr) {
    attributes = inherited->attributes;  // IMAGE is mounted over: checked and prepared at the mount
  } else {
    auto prepared = prepare_image_file(options.image_path, **clone,
                                       clone_permissions((*clone)->record().source_path));
    if (!prepared) {
      options.report(prepared.status());
      return 1;
    }
    image.emplace(std::move(*prepared));
    attributes = attributes_of(image->st);
    // Lets `clonefs status IMAGE` find the metadata while unmounted (best effort: the file
    // system holding IMAGE may not support user xattrs).
    (void)::fsetxattr(image->file.get(), kMetadataXattr, options.metadata_path.data(),
                      options.metadata_path.size(), 0);
  }
  // What the mount created, it removes: an empty file left where IMAGE was would look like a
  // disk image with nothing in it. Only the very file created, in the directory it was created
  // in: a name another user swapped since is left alone. A supervised mount's supervisor does it
  // once the first serving process has handed the mount over.
  auto remove_created_image = [&] {
    if (!image || !image->created) return;
    Status removed = image->entry.remove_if_same(image->st.st_dev, image->st.st_ino);
    if (removed)
      log.info("removed {} (the mount had created it)", options.image_path);
    else
      log.warn("cannot remove {}, which the mount had created: {}", options.image_path,
               removed.message());
  };

  // Paused until the mount is up: nothing to copy for if mounting fails.
  HydrationSettings held = *settings;
  held.paused = true;
  Hydrator hydrator((*clone)->engine(), held);
  if (!plan.empty()) hydrator.set_plan(std::move(plan));
  hydrator.set_on_demand(options.on_demand_priority);
  std::optional<ProfileRecorder> recorder;
  if (!options.record_profile_path.empty()) {
    recorder.emplace(options.record_profile_path, (*clone)->record(),
                     (*clone)->engine().geometry());
    if (inherited != nullptr) resume_recording(*recorder, options.record_profile_path, log);
    (*clone)->engine().add_observer(&*recorder);
  }
  // Before the final commit: the profile is written once the last user I/O is in.
  auto finish_recording = [&] {
    if (!recorder) return;
    (*clone)->engine().remove_observer(&*recorder);
    if (Status written = recorder->stop(); !written) {
      log.error("cannot write the access profile: {}", written.message());
    } else {
      log.info("access profile written to {} ({} runs)", options.record_profile_path,
               recorder->snapshot().runs.size());
    }
  };
  ImageSession state(
      **clone, hydrator, options.logger, options.image_path, options.metadata_path, attributes,
      {max_read_option(options.fuse_options), options.writeback_cache, options.passthrough,
       supervision != nullptr ? supervision->passthrough_ledger_fd : -1});
  if (supervision != nullptr) {
    state.set_supervision(supervision->supervisor_pid, supervision->restarts,
                          supervision->last_restart);
  }
  std::thread probe;
  std::atomic<bool> serving_ended{false};
  std::optional<MetricsFileWriter> metrics;  // started once ready, stopped before the final commit
  Status ready;
  Status startup;
  int loop_rc = 0;
  {
    const HeldImage* held_image = image ? &*image : nullptr;
    MountedSession mounted(options, state, inherited, mount_target(options.image_path, held_image));
    startup = mounted.status();
    if (startup)
      startup = mounted.handshake(supervision, attributes, held_image, state.image_size());
    if (startup) {
      if (inherited != nullptr) {
        log.info("serving the connection of {} again (restart {}: {})", options.image_path,
                 supervision->restarts, supervision->last_restart);
      }
      // Joined after the session is torn down: a stat stuck on a dead session returns only then.
      probe = std::thread([&] {
        // A restarted serving process sends its own connection nothing, and neither does the
        // first one of a supervised mount: were it killed with such a request (a stat) read by
        // one of its dead workers, the request would wait for an answer only a successor could
        // give, the process could not finish dying, and the supervisor, waiting for that death,
        // would never start the successor — the mount hung for good (RestartTest.
        // PauseOfAKillIsMeasuredAndRestartsAreInTheStatus hung once in 4 CI runs, a successor's
        // thread in FUSE getattr). The supervisor runs the start in a child of its own and tells
        // the first serving process how it went; a restarted one serves a connection already
        // set up. Unsupervised, no successor could answer anyway: the start runs here.
        if (inherited != nullptr) {
          ready = Status::ok();
        } else if (supervision != nullptr) {
          ready = await_mount_start(supervision->channel, serving_ended);
        } else {
          ready = start_mount(options, state.image_size());
        }
        if (ready) {
          hydrator.set_paused(settings->paused);
          log.info(
              "serving {} on {} (hydration {}, threshold {}, batch {}, rate limit {} B/s; "
              "copy-on-read {}; copy method {}, best allowed {})",
              options.metadata_path, options.image_path, settings->paused ? "paused" : "on",
              settings->threshold, settings->batch, settings->rate,
              options.copy_on_read ? "on" : "off", to_string((*clone)->engine().copy_method()),
              to_string(options.best_copy_method));
          if (!options.metrics_file.empty()) {
            metrics.emplace(
                options.metrics_file, options.metrics_interval, [&state] { return state.status(); },
                [&log](const Status& failed) { log.warn("{}", failed.message()); });
          }
        }
        options.report(ready);
      });
      loop_rc = mounted.loop({options.max_threads, supervision != nullptr, &log});
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
      } else if (loop_rc > 0) {
        log.info("signal {} received: unmounting", loop_rc);
      }
      if (loop_rc < 0) log.error("FUSE session loop failed: {}", std::strerror(-loop_rc));
    }
  }
  if (!startup) {
    // After the session's teardown, which unmounted what it had mounted.
    remove_created_image();
    if (recorder) (*clone)->engine().remove_observer(&*recorder);
    hydrator.stop();
    (void)(*clone)->engine().close();
    options.report(startup);
    return 1;
  }
  probe.join();
  finish_recording();
  metrics.reset();
  int rc = finish(**clone, hydrator, log);
  if (supervision == nullptr) remove_created_image();  // (`clonefs unmount` tells the user)
  return loop_rc < 0 || !ready ? 1 : rc;
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
