#include "fuse/request_loop.h"

#include <pthread.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <iterator>
#include <memory>
#include <vector>

namespace clonefs {
namespace {

constexpr int kStopSignals[] = {SIGTERM, SIGINT, SIGHUP};

// The one running loop's session and wake-up, for the stop-signal handler: a process serves one
// session. Both are set before the handler is installed and cleared after it is removed.
std::atomic<fuse_session*> stopping_session{nullptr};
std::atomic<sem_t*> stopping_wakeup{nullptr};
std::atomic<int> stop_signal{0};

// As libfuse's own handler: the session exits and the signal is the loop's result. The post wakes
// the waiting main thread whichever thread the signal was delivered to (sem_post is
// async-signal-safe).
void on_stop_signal(int signal) {
  stop_signal.store(signal);
  if (fuse_session* session = stopping_session.load()) fuse_session_exit(session);
  if (sem_t* wakeup = stopping_wakeup.load()) sem_post(wakeup);
}

// Replaces the handlers of the stop signals for the loop's lifetime; one the process ignores
// stays ignored.
class StopSignals {
 public:
  StopSignals(fuse_session* session, sem_t* wakeup) {
    stop_signal.store(0);
    stopping_session.store(session);
    stopping_wakeup.store(wakeup);
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: the main thread's wait returns to look
    for (size_t i = 0; i < std::size(kStopSignals); ++i) {
      ::sigaction(kStopSignals[i], nullptr, &previous_[i]);
      installed_[i] =
          previous_[i].sa_handler != SIG_IGN && ::sigaction(kStopSignals[i], &action, nullptr) == 0;
    }
  }
  ~StopSignals() {
    for (size_t i = 0; i < std::size(kStopSignals); ++i) {
      if (installed_[i]) ::sigaction(kStopSignals[i], &previous_[i], nullptr);
    }
    stopping_wakeup.store(nullptr);
    stopping_session.store(nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction previous_[std::size(kStopSignals)]{};
  bool installed_[std::size(kStopSignals)] = {};
};

struct Worker {
  fuse_session* session = nullptr;
  sem_t* finished = nullptr;
  std::unique_ptr<ReceiveBuffer> buffer;
  int error = 0;  // -errno of a failed read
  pthread_t thread{};
  bool started = false;
};

// Cancellable only inside the read, as in libfuse's own workers: a request read is always
// processed, and a worker blocked in read() on a connection still up is ended at the loop's end.
void* work(void* arg) {
  Worker& w = *static_cast<Worker*>(arg);
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, nullptr);
  while (!fuse_session_exited(w.session)) {
    fuse_buf buf{};
    buf.mem = w.buffer->data();
    buf.size = w.buffer->size();
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, nullptr);
    int n = fuse_session_receive_buf(w.session, &buf);
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, nullptr);
    if (n == -EINTR) continue;
    if (n <= 0) {
      if (n < 0) {
        w.error = n;
        fuse_session_exit(w.session);
      }
      break;
    }
    fuse_session_process_buf(w.session, &buf);
  }
  sem_post(w.finished);
  return nullptr;
}

// Workers leave the stop signals to the other threads, as libfuse's do (fuse_start_thread).
int start_worker(Worker& w) {
  sigset_t blocked, previous;
  sigemptyset(&blocked);
  for (int signal : kStopSignals) sigaddset(&blocked, signal);
  sigaddset(&blocked, SIGQUIT);
  pthread_sigmask(SIG_BLOCK, &blocked, &previous);
  int rc = pthread_create(&w.thread, nullptr, work, &w);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  w.started = rc == 0;
  return rc;
}

}  // namespace

size_t receive_buffer_bytes() {
  const size_t page = static_cast<size_t>(::getpagesize());
  const size_t bytes = 256 * page + 4096;
  return (bytes + page - 1) / page * page;
}

ReceiveBuffer::ReceiveBuffer(bool resident) : size_(receive_buffer_bytes()) {
  void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    error_ = errno;
    return;
  }
  data_ = p;
  (void)::madvise(data_, size_, MADV_NOHUGEPAGE);
  (void)::madvise(data_, size_, MADV_DONTFORK);
  if (!resident) return;
  // Written first, so every page is the process's own and writable, locked where the limit
  // (RLIMIT_MEMLOCK, unless privileged) allows.
  std::memset(data_, 0, size_);
  locked_ = ::mlock(data_, size_) == 0;
  if (!locked_) error_ = errno;
}

ReceiveBuffer::~ReceiveBuffer() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

int run_request_loop(fuse_session* session, const RequestLoopOptions& options) {
  const unsigned count = options.workers == 0 ? 1 : options.workers;
  std::vector<Worker> workers(count);
  sem_t finished;
  sem_init(&finished, 0, 0);
  int error = 0;
  bool warned = false;
  // Every buffer before any worker reads.
  for (Worker& w : workers) {
    w.session = session;
    w.finished = &finished;
    w.buffer = std::make_unique<ReceiveBuffer>(options.resident_buffers);
    if (w.buffer->data() == nullptr) {
      error = -w.buffer->error();
      if (options.log) {
        options.log->error("cannot map a FUSE receive buffer of {} bytes: {}", w.buffer->size(),
                           std::strerror(w.buffer->error()));
      }
      break;
    }
    if (options.resident_buffers && !w.buffer->locked() && !warned && options.log) {
      warned = true;
      options.log->warn(
          "FUSE receive buffers not locked in memory ({}): a request the kernel is copying when "
          "the serving process is killed may fail with EIO instead of being resent",
          std::strerror(w.buffer->error()));
    }
  }
  {
    StopSignals signals(session, &finished);
    if (error == 0) {
      for (Worker& w : workers) {
        if (int rc = start_worker(w); rc != 0) {
          error = -rc;
          if (options.log) options.log->error("cannot start a FUSE worker: {}", std::strerror(rc));
          fuse_session_exit(session);
          break;
        }
      }
      while (!fuse_session_exited(session)) {
        if (sem_wait(&finished) != 0 && errno != EINTR) break;
      }
    }
    for (Worker& w : workers) {
      if (w.started) pthread_cancel(w.thread);
    }
    for (Worker& w : workers) {
      if (!w.started) continue;
      pthread_join(w.thread, nullptr);
      if (error == 0) error = w.error;
    }
  }
  sem_destroy(&finished);
  const int signal = stop_signal.load();
  fuse_session_reset(session);
  return signal != 0 ? signal : error;
}

}  // namespace clonefs
