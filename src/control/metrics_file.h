// `clonefs mount --metrics-file PATH`: the status in Prometheus text format (status_prometheus.h)
// kept in PATH, for node_exporter's textfile collector. Each write goes to a temporary file in
// PATH's directory, renamed over PATH, so a reader sees the old file or the new one, never a
// partial one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "control/status.h"
#include "util/status.h"

namespace clonefs {

// Writes `text` to `path` atomically, mode 0644 (io/safe_files.h, replace_file: an unpredictable
// temporary beside it, renamed over it through the directory).
Status write_file_atomically(const std::string& path, const std::string& text);

// Writes the status now, then every `interval` from a thread of its own, until destroyed. A
// failed write is passed to `on_error` (once per failure streak: a full disk logs one line, not
// one per interval) and retried at the next interval.
class MetricsFileWriter {
 public:
  MetricsFileWriter(std::string path, std::chrono::milliseconds interval,
                    std::function<CloneStatus()> snapshot,
                    std::function<void(const Status&)> on_error);
  ~MetricsFileWriter();
  MetricsFileWriter(const MetricsFileWriter&) = delete;
  MetricsFileWriter& operator=(const MetricsFileWriter&) = delete;

  static constexpr std::chrono::seconds kDefaultInterval{5};

 private:
  void write_once();

  const std::string path_;
  const std::chrono::milliseconds interval_;
  const std::function<CloneStatus()> snapshot_;
  const std::function<void(const Status&)> on_error_;
  bool failing_ = false;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace clonefs
