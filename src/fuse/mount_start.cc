#include "fuse/mount_start.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "fuse/readahead.h"
#include "fuse/supervisor_channel.h"
#include "io/safe_files.h"

namespace clonefs {
namespace {

constexpr long kFuseSuperMagic = 0x65735546;  // linux/magic.h FUSE_SUPER_MAGIC

// Ready means the kernel's INIT handshake succeeded and requests are served: a stat of IMAGE
// through the mount returns the image's size. (libfuse can still refuse the session in INIT,
// after fuse_session_mount() succeeded, e.g. for conflicting -o options.)
Status probe_mount(const std::string& image_path, uint64_t image_size) {
  struct stat st {};
  if (::stat(image_path.c_str(), &st) != 0) {
    return Status::from_errno(errno,
                              "the FUSE session for " + image_path +
                                  " failed while starting (see the log for libfuse's reason)");
  }
  if (static_cast<uint64_t>(st.st_size) != image_size) {
    return Status::error(EIO, "the FUSE session for " + image_path +
                                  " ended while starting (see the log for libfuse's reason)");
  }
  return Status::ok();
}

}  // namespace

// A FUSE mount's root inode starts at size 0: pinned once per mount (a restarted serving process
// serves the same inode), and again after each write past the end.
// The name is opened through its directory without following it (io/safe_files.h), and truncated
// only if what opened is a FUSE file of the image's size: a directory swapped by another user
// since the mount was made leads to a file of theirs, which root must not truncate.
Status pin_image_size(const std::string& image_path, uint64_t image_size) {
  auto entry = DirectoryEntry::open(image_path);
  if (!entry) return entry.status();
  auto mounted = entry->open_existing(O_WRONLY | O_NONBLOCK | O_NOCTTY);
  if (!mounted) return mounted.status();
  struct statfs fs {};
  if (::fstatfs(mounted->get(), &fs) != 0)
    return Status::from_errno(errno, "cannot check what " + image_path + " is");
  if (static_cast<long>(fs.f_type) != kFuseSuperMagic) {
    return Status::error(EXDEV, image_path +
                                    " is no longer the mount clonefs made (its directory was "
                                    "replaced?): its size is not pinned");
  }
  if (::ftruncate(mounted->get(), static_cast<off_t>(image_size)) != 0) {
    return Status::from_errno(errno, "cannot give " + image_path + " its size of " +
                                         std::to_string(image_size) +
                                         " bytes for the writeback cache");
  }
  return Status::ok();
}

SizeRepinThread::SizeRepinThread(std::string image_path, uint64_t image_size,
                                 std::shared_ptr<spdlog::logger> logger)
    : image_path_(std::move(image_path)),
      image_size_(image_size),
      logger_(std::move(logger)),
      thread_([this] { run(); }) {}

SizeRepinThread::~SizeRepinThread() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void SizeRepinThread::request() {
  {
    std::lock_guard lock(mutex_);
    requested_ = true;
  }
  wake_.notify_one();
}

void SizeRepinThread::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return requested_ || stopping_; });
    if (stopping_) return;
    requested_ = false;
    lock.unlock();
    Status pinned = pin_image_size(image_path_, image_size_);
    if (!pinned) logger_->warn("after a write past the end: {}", pinned.message());
    lock.lock();
  }
}

Status await_mount_start(int channel, const std::atomic<bool>& serving_ended) {
  while (!serving_ended) {
    pollfd word{channel, POLLIN, 0};
    if (::poll(&word, 1, 100) < 0 && errno != EINTR)
      return Status::from_errno(errno, "waiting for the supervisor");
    if (!(word.revents & (POLLIN | POLLHUP))) continue;
    auto message = receive_message(channel);
    if (!message) return message.status();
    if (!message->has_value()) {
      if (word.revents & POLLHUP) return Status::error(EPIPE, "the supervisor is gone");
      continue;
    }
    if (auto* report = std::get_if<ReportMessage>(&**message)) return report->report;
  }
  return Status::error(ECANCELED, "the session ended before the mount had started");
}

Status start_mount(const ServeOptions& options, uint64_t image_size) {
  if (options.writeback_cache)
    CLONEFS_RETURN_IF_ERROR(pin_image_size(options.image_path, image_size));
  CLONEFS_RETURN_IF_ERROR(probe_mount(options.image_path, image_size));
  if (options.readahead_kib != 0) {
    // Not fatal: a mount by a user other than root cannot write sysfs, and works as before.
    Status set = set_mount_readahead(options.image_path, options.readahead_kib);
    if (!set) options.logger->warn("{}", set.message());
  }
  return Status::ok();
}

}  // namespace clonefs
