#include "control/metrics_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "control/status_prometheus.h"

namespace clonefs {

Status write_file_atomically(const std::string& path, const std::string& text) {
  // Beside PATH, so the rename stays within one file system; the pid keeps two writers apart.
  std::string temporary = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::from_errno(errno, "metrics file " + temporary);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(temporary.c_str());
      return Status::from_errno(err, "writing metrics file " + temporary);
    }
    done += static_cast<size_t>(n);
  }
  // The umask may have narrowed the mode; the collector often runs as another user.
  ::fchmod(fd, 0644);
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(temporary.c_str());
    return Status::from_errno(err, "writing metrics file " + temporary);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temporary.c_str());
    return Status::from_errno(err, "renaming " + temporary + " to " + path);
  }
  return Status::ok();
}

MetricsFileWriter::MetricsFileWriter(std::string path, std::chrono::milliseconds interval,
                                     std::function<CloneStatus()> snapshot,
                                     std::function<void(const Status&)> on_error)
    : path_(std::move(path)),
      interval_(interval),
      snapshot_(std::move(snapshot)),
      on_error_(std::move(on_error)) {
  write_once();
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
      lock.unlock();
      write_once();
      lock.lock();
    }
  });
}

MetricsFileWriter::~MetricsFileWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void MetricsFileWriter::write_once() {
  Status written = write_file_atomically(path_, format_status_prometheus(snapshot_()));
  if (!written && !failing_) on_error_(written);
  failing_ = !written;
}

}  // namespace clonefs
