#include "io/nbd_source.h"

#include <libnbd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "io/source_uri.h"

namespace clonefs {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// NBD's own default when a server advertises no maximum.
constexpr uint64_t kDefaultMaxRequest = 32 << 20;
// Reads are cut into pieces of at most this much, all in flight at once, so one large read (a
// 1 MiB FUSE read, a 4 MiB hydration copy) is served by several server threads in parallel
// instead of one: a single 1 MiB request per read gave 320 MB/s fall-through against nbdfuse's
// 720 over the same nbdkit (bench row 10a, 0 ms).
constexpr uint64_t kPieceBytes = 256 << 10;
// One block status request covers at most this much (the protocol's length is 32 bits).
constexpr uint64_t kBlockStatusSpan = 1ull << 30;
// A wait on the socket is cut into slices this long so cancellation and deadlines are seen.
constexpr milliseconds kPollSlice{50};
constexpr milliseconds kFirstBackoff{50};
constexpr milliseconds kMaxBackoff{2000};

struct HandleCloser {
  void operator()(nbd_handle* h) const { nbd_close(h); }
};
using Handle = std::unique_ptr<nbd_handle, HandleCloser>;

int libnbd_errno() {
  int e = nbd_get_errno();
  return e != 0 ? e : EIO;
}

// libnbd's last error, with the URI in it (if any) replaced by its redacted form, and any secret
// of it quoted on its own (a password libnbd failed to parse) by "***".
std::string libnbd_error(const std::string& uri) {
  const char* e = nbd_get_error();
  return redact_text(e != nullptr ? e : "unknown libnbd error", uri);
}

bool alive(nbd_handle* h) { return nbd_aio_is_ready(h) > 0 || nbd_aio_is_processing(h) > 0; }

int poll_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp(left, milliseconds(1), kPollSlice).count());
}

std::string seconds_text(milliseconds ms) {
  return std::to_string(ms.count() / 1000) + "." + std::to_string(ms.count() % 1000 / 100) + " s";
}

// One connection, handshake included, abandoned at `deadline` or once `*stop` is set.
Result<Handle> connect(const std::string& uri, const std::string& shown, milliseconds timeout,
                       const std::atomic<bool>& stop) {
  const auto deadline = Clock::now() + timeout;
  Handle h(nbd_create());
  if (!h) return Status::error(ENOMEM, "source " + shown + ": " + libnbd_error(uri));
  // Requested, not required: a server without it still serves reads.
  (void)nbd_add_meta_context(h.get(), LIBNBD_CONTEXT_BASE_ALLOCATION);
  // nbds://...?tls-psk-file=PATH names a local file, which libnbd refuses to read unless told it
  // may: the URI comes from the administrator (the command line, CLONEFS_SOURCE_URI, or trusted
  // metadata), never from the server.
  if (nbd_set_uri_allow_local_file(h.get(), true) == -1)
    return Status::error(libnbd_errno(), "source " + shown + ": " + libnbd_error(uri));
  if (nbd_aio_connect_uri(h.get(), uri.c_str()) == -1) {
    return Status::error(libnbd_errno(), "source " + shown + ": " + libnbd_error(uri));
  }
  while (nbd_aio_is_connecting(h.get()) > 0) {
    if (stop.load()) return Status::error(ECANCELED, "source " + shown + ": connection cancelled");
    if (Clock::now() >= deadline) {
      return Status::error(ETIMEDOUT, "source " + shown + ": no NBD handshake within " +
                                          seconds_text(timeout) +
                                          " (is the server up, and does it take more clients?)");
    }
    if (nbd_poll(h.get(), poll_ms(deadline)) == -1) break;
  }
  if (nbd_aio_is_ready(h.get()) <= 0) {
    return Status::error(libnbd_errno(), "source " + shown + ": " + libnbd_error(uri));
  }
  return h;
}

struct BlockExtent {
  uint64_t begin = 0;
  uint64_t end = 0;
  bool zero = false;  // reads as zeros (LIBNBD_STATE_ZERO); a bare HOLE does not count
};

struct ExtentCollector {
  std::vector<BlockExtent> extents;
  uint64_t size = 0;
};

int collect_extents(void* user_data, const char* context, uint64_t offset, uint32_t* entries,
                    size_t count, int* /*error*/) {
  auto& out = *static_cast<ExtentCollector*>(user_data);
  if (std::string_view(context) != LIBNBD_CONTEXT_BASE_ALLOCATION) return 0;
  for (size_t i = 0; i + 1 < count && offset < out.size; i += 2) {
    uint64_t end = std::min(out.size, offset + entries[i]);
    out.extents.push_back({offset, end, (entries[i + 1] & LIBNBD_STATE_ZERO) != 0});
    offset = end;
  }
  return 0;
}

class NbdSource final : public SourceDevice {
 public:
  NbdSource(std::string uri, NbdSourceOptions options)
      : uri_(std::move(uri)), name_(redact_uri(uri_)), options_(options) {}

  ~NbdSource() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cancelled_.store(true);
    changed_.notify_all();
    if (reconnector_.joinable()) reconnector_.join();
  }

  Status start() {
    auto first = connect(uri_, name_, options_.connect_timeout, cancelled_);
    if (!first) return first.status();
    nbd_handle* h = first->get();
    int64_t size = nbd_get_size(h);
    if (size < 0) {
      return Status::error(libnbd_errno(), "source " + name_ + ": " + libnbd_error(uri_));
    }
    if (size == 0) return Status::error(EINVAL, "source " + name_ + " is an empty export");
    size_ = static_cast<uint64_t>(size);
    block_status_ = nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
    int64_t max_request = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
    max_request_ = max_request > 0 ? static_cast<uint64_t>(max_request) : kDefaultMaxRequest;
    idle_.push_back(std::move(*first));
    open_ = 1;
    // Reads only, so several connections are safe even where the server does not promise
    // multi-conn consistency (that promise is about one client's writes seen by another).
    wanted_ = std::clamp(options_.connections, 1u, kMaxNbdConnections);
    filling_ = wanted_ > 1;
    reconnector_ = std::thread([this] { reconnect_loop(); });
    return Status::ok();
  }

  Status read_at(uint64_t offset, std::span<std::byte> buf) override {
    if (offset > size_ || buf.size() > size_ - offset) {
      return Status::error(EIO, "source " + name_ + ": read of " + std::to_string(buf.size()) +
                                    " bytes at offset " + std::to_string(offset) +
                                    " past the end of the export");
    }
    const auto deadline = Clock::now() + options_.read_timeout;
    while (true) {
      auto h = take(deadline, "read at offset " + std::to_string(offset));
      if (!h) return h.status();
      bool lost = false;
      Status read = read_on(h->get(), offset, buf, deadline, lost);
      if (!lost) {
        give_back(std::move(*h));
        return read;
      }
      drop(std::move(*h), read.message());
      if (read.code() == ECANCELED || Clock::now() >= deadline) return read;
    }
  }

  uint64_t size() const override { return size_; }

  Result<std::optional<Extent>> next_data(uint64_t offset) override {
    while (offset < size_) {
      if (!block_status_) return std::optional<Extent>(Extent{offset, size_});
      auto extents = extents_from(offset);
      if (!extents) return extents.status();
      if (extents->empty()) return std::optional<Extent>(Extent{offset, size_});
      for (size_t i = 0; i < extents->size(); ++i) {
        const BlockExtent& e = (*extents)[i];
        if (e.end <= offset || e.zero) continue;
        Extent data{std::max(e.begin, offset), e.end};
        for (size_t j = i + 1; j < extents->size() && !(*extents)[j].zero; ++j) {
          data.end = (*extents)[j].end;
        }
        return std::optional<Extent>(data);
      }
      offset = std::max(offset, extents->back().end);
    }
    return std::optional<Extent>();
  }

  const std::string& name() const override { return name_; }

  bool reachable() const override {
    std::lock_guard lock(mu_);
    return open_ > 0;
  }

  std::optional<SourceConnection> connection() const override {
    std::lock_guard lock(mu_);
    SourceConnection c;
    c.state = open_ == 0 ? "reconnecting" : open_ < wanted_ ? "degraded" : "connected";
    c.connections = open_;
    c.connections_wanted = wanted_;
    c.reconnects = reconnects_;
    c.last_error = last_error_;
    return c;
  }

  void cancel_waits() override {
    cancelled_.store(true);
    std::lock_guard lock(mu_);
    changed_.notify_all();
  }

 private:
  // A free connection, waiting for one (while others are busy or being reconnected) until
  // `deadline`.
  Result<Handle> take(Clock::time_point deadline, const std::string& what) {
    std::unique_lock lock(mu_);
    while (true) {
      if (cancelled_.load()) {
        return Status::error(ECANCELED, "source " + name_ + ": " + what + " cancelled (closing)");
      }
      if (!idle_.empty()) {
        Handle h = std::move(idle_.back());
        idle_.pop_back();
        return h;
      }
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
          !cancelled_.load()) {
        std::string why = open_ == 0
                              ? "unreachable for " + seconds_text(options_.read_timeout) +
                                    (last_error_.empty() ? "" : " (" + last_error_ + ")")
                              : "no connection free within " + seconds_text(options_.read_timeout);
        return Status::error(EIO, "source " + name_ + ": " + what + ": " + why);
      }
    }
  }

  void give_back(Handle h) {
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(h));
    changed_.notify_all();
  }

  void drop(Handle h, const std::string& why) {
    h.reset();
    std::lock_guard lock(mu_);
    --open_;
    last_error_ = why;
    changed_.notify_all();
  }

  // Every piece in flight at once; `lost` tells the caller the connection cannot be used again
  // (dead, or left with requests outstanding).
  Status read_on(nbd_handle* h, uint64_t offset, std::span<std::byte> buf,
                 Clock::time_point deadline, bool& lost) {
    const std::string where = "source " + name_ + ": read of " + std::to_string(buf.size()) +
                              " bytes at offset " + std::to_string(offset);
    std::vector<int64_t> cookies;
    for (uint64_t pos = 0; pos < buf.size();) {
      uint64_t length = std::min<uint64_t>({max_request_, kPieceBytes, buf.size() - pos});
      nbd_completion_callback none{};
      int64_t cookie = nbd_aio_pread(h, buf.data() + pos, length, offset + pos, none, 0);
      if (cookie == -1) {
        lost = true;
        return Status::error(libnbd_errno(), where + ": " + libnbd_error(uri_));
      }
      cookies.push_back(cookie);
      pos += length;
    }
    Status failed;
    while (!cookies.empty()) {
      for (size_t i = 0; i < cookies.size();) {
        int done = nbd_aio_command_completed(h, cookies[i]);
        if (done == 0) {
          ++i;
          continue;
        }
        if (done == -1 && failed.is_ok()) {
          failed = Status::error(libnbd_errno(), where + ": " + libnbd_error(uri_));
        }
        cookies.erase(cookies.begin() + static_cast<std::ptrdiff_t>(i));
      }
      if (cookies.empty()) break;
      if (!alive(h)) {
        lost = true;
        return Status::error(EIO, where + ": connection lost");
      }
      if (cancelled_.load()) {
        lost = true;
        return Status::error(ECANCELED, where + ": cancelled (closing)");
      }
      if (Clock::now() >= deadline) {
        lost = true;
        return Status::error(EIO,
                             where + ": no reply within " + seconds_text(options_.read_timeout));
      }
      (void)nbd_poll(h, poll_ms(deadline));
    }
    // A server's error reply leaves the connection usable; a dropped connection does not.
    lost = !failed.is_ok() && !alive(h);
    return failed;
  }

  // Block status from `offset`: the cached answer if it covers `offset`, else a new request.
  Result<std::vector<BlockExtent>> extents_from(uint64_t offset) {
    {
      std::lock_guard lock(extents_mu_);
      if (!cached_.empty() && cached_.front().begin <= offset && offset < cached_.back().end) {
        return cached_;
      }
    }
    const auto deadline = Clock::now() + options_.read_timeout;
    const std::string what = "block status at offset " + std::to_string(offset);
    while (true) {
      auto h = take(deadline, what);
      if (!h) return h.status();
      ExtentCollector collector;
      collector.size = size_;
      nbd_extent_callback callback{};
      callback.callback = collect_extents;
      callback.user_data = &collector;
      uint64_t span = std::min(kBlockStatusSpan, size_ - offset);
      if (nbd_block_status(h->get(), span, offset, callback, 0) == 0) {
        give_back(std::move(*h));
        std::lock_guard lock(extents_mu_);
        cached_ = collector.extents;
        return std::move(collector.extents);
      }
      Status failed = Status::error(libnbd_errno(),
                                    "source " + name_ + ": " + what + ": " + libnbd_error(uri_));
      if (alive(h->get())) {
        // The server could not say: everything counts as data, the copy finds the zeros.
        give_back(std::move(*h));
        return std::vector<BlockExtent>{};
      }
      drop(std::move(*h), failed.message());
      if (cancelled_.load() || Clock::now() >= deadline) return failed;
    }
  }

  // The export a new connection reaches must be the one opened (a restarted server may export
  // something else under the same name).
  Status check_same_export(nbd_handle* h) const {
    int64_t size = nbd_get_size(h);
    if (size < 0 || static_cast<uint64_t>(size) != size_) {
      return Status::error(EIO, "source " + name_ + " now exports " + std::to_string(size) +
                                    " bytes, not " + std::to_string(size_) +
                                    ": refusing the reconnected server");
    }
    return Status::ok();
  }

  // Opens connections until `wanted_` are open: first the extra ones after start() (a server that
  // refuses them lowers `wanted_`), then any that were lost, with backoff.
  void reconnect_loop() {
    std::unique_lock lock(mu_);
    milliseconds backoff = kFirstBackoff;
    while (!stopping_) {
      if (open_ >= wanted_) {
        filling_ = false;
        backoff = kFirstBackoff;
        changed_.wait(lock, [&] { return stopping_ || open_ < wanted_; });
        continue;
      }
      lock.unlock();
      auto h = connect(uri_, name_, options_.connect_timeout, cancelled_);
      Status usable = h ? check_same_export(h->get()) : h.status();
      lock.lock();
      if (usable) {
        idle_.push_back(std::move(*h));
        ++open_;
        if (!filling_) ++reconnects_;
        backoff = kFirstBackoff;
        changed_.notify_all();
        continue;
      }
      if (stopping_) break;
      last_error_ = usable.message();
      if (filling_ && open_ > 0) {
        wanted_ = open_;  // the server takes no more clients (qemu-nbd's --shared, for one)
        filling_ = false;
        continue;
      }
      changed_.wait_for(lock, backoff, [&] { return stopping_; });
      backoff = std::min(backoff * 2, kMaxBackoff);
    }
  }

  const std::string uri_;   // in clear: only ever given to libnbd
  const std::string name_;  // redacted: for everything else
  const NbdSourceOptions options_;
  uint64_t size_ = 0;
  uint64_t max_request_ = kDefaultMaxRequest;
  bool block_status_ = false;

  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  std::condition_variable changed_;  // a connection freed, opened or lost; cancel; stop
  std::vector<Handle> idle_;         // guarded by mu_
  unsigned open_ = 0;                // guarded by mu_: idle or in use
  unsigned wanted_ = 1;              // guarded by mu_
  bool filling_ = false;             // guarded by mu_: opening the extra connections
  uint64_t reconnects_ = 0;          // guarded by mu_
  std::string last_error_;           // guarded by mu_
  bool stopping_ = false;            // guarded by mu_
  std::thread reconnector_;

  std::mutex extents_mu_;
  std::vector<BlockExtent> cached_;  // guarded by extents_mu_: the last block status answer
};

}  // namespace

Result<std::unique_ptr<SourceDevice>> open_nbd_source(const std::string& uri,
                                                      const NbdSourceOptions& options) {
  CLONEFS_RETURN_IF_ERROR(check_source_uri(uri));
  auto source = std::make_unique<NbdSource>(uri, options);
  CLONEFS_RETURN_IF_ERROR(source->start());
  return std::unique_ptr<SourceDevice>(std::move(source));
}

}  // namespace clonefs
