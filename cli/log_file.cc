#include "log_file.h"

#include <spdlog/sinks/base_sink.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include "io/safe_files.h"

namespace clonefs::cli {
namespace {

// Created 0600: the log names the clone's files, and a clone is no more readable than its source.
constexpr mode_t kLogMode = 0600;

// Each message is written at once with write(2): nothing buffered is lost when the daemon dies.
class DescriptorSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit DescriptorSink(UniqueFd fd) : fd_(std::move(fd)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    for (size_t done = 0; done < formatted.size();) {
      ssize_t n = ::write(fd_.get(), formatted.data() + done, formatted.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // a full disk loses log lines, not the mount
      done += static_cast<size_t>(n);
    }
  }
  void flush_() override {}

 private:
  UniqueFd fd_;
};

}  // namespace

Result<std::shared_ptr<spdlog::logger>> log_file_logger(const std::string& path) {
  auto fd = open_log_for_append(path, kLogMode);
  if (!fd) return fd.status();
  auto sink = std::make_shared<DescriptorSink>(std::move(*fd));
  return std::make_shared<spdlog::logger>("clonefs", std::move(sink));
}

Status redirect_stderr_to_log(const std::string& path) {
  auto fd = open_log_for_append(path, kLogMode);
  if (!fd) return fd.status();
  if (::dup2(fd->get(), STDERR_FILENO) < 0) return Status::from_errno(errno, "log file " + path);
  return Status::ok();
}

}  // namespace clonefs::cli
