#include "control/metrics_file.h"

#include "control/status_prometheus.h"
#include "io/safe_files.h"

namespace clonefs {

Status write_file_atomically(const std::string& path, const std::string& text) {
  // 0644: the collector often runs as another user.
  return replace_file(path, text, {.mode = 0644, .durable = false}).with_context("metrics file");
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
