#include "io/nbd_source.h"

#include <libnbd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "io/fingerprint.h"
#include "io/fnv1a.h"
#include "io/source_uri.h"

namespace clonefs {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// NBD's own default when a server advertises no maximum.
constexpr uint64_t kDefaultMaxRequest = 32 << 20;
// A wait on the socket is cut into slices this long so cancellation and deadlines are seen.
constexpr milliseconds kPollSlice{50};
constexpr milliseconds kFirstBackoff{50};
// The identity check's own deadline, if --source-timeout is shorter: a slow server must still
// be able to pass it (a reader waiting for the connection gives up at its own deadline), and a
// check abandoned with its requests in flight would close a connection nbdkit 1.32 may still be
// answering (see kDrainOnCancel).
constexpr milliseconds kIdentityTimeout{30000};
// While every connection is open, one idle connection is probed this often (see probe()).
constexpr milliseconds kProbeInterval{1000};
constexpr uint64_t kProbeBytes = 4096;
// Pieces of the fingerprint an extra connection opened at start reads (see check_same_export).
constexpr size_t kSampledPieces = 4;
// A cancelled read leaves its connection this long to finish the requests it has in flight
// before closing it: nbdkit 1.32 can abort (an assertion in raw_send_socket) when a client
// closes with replies still to send.
constexpr milliseconds kDrainOnCancel{200};
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

// How a connection stands after a request.
enum class Link {
  kUsable,
  kLost,     // dead, or left with requests outstanding
  kLeaving,  // the server answered ESHUTDOWN: it is shutting down and waits for its clients to go
};

// A connection and the server generation it was opened in (see NbdSource::generation_).
struct Connection {
  Handle handle;
  uint64_t generation = 0;
};

// A read request's piece: `buf.size()` bytes at `offset`.
struct Piece {
  uint64_t offset = 0;
  std::span<std::byte> buf;
};

// `buf` at `offset` cut in requests of at most `piece_bytes` bytes.
void add_pieces(std::vector<Piece>& pieces, uint64_t offset, std::span<std::byte> buf,
                uint64_t piece_bytes) {
  for (uint64_t pos = 0; pos < buf.size();) {
    uint64_t length = std::min<uint64_t>(piece_bytes, buf.size() - pos);
    pieces.push_back({offset + pos, buf.subspan(pos, length)});
    pos += length;
  }
}

class NbdSource final : public SourceDevice {
 public:
  NbdSource(std::string uri, NbdSourceOptions options)
      : uri_(std::move(uri)),
        name_(options.name.empty() ? redact_uri(uri_) : options.name),
        options_(options) {}

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
    int64_t max_request = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
    piece_bytes_ = std::max<uint64_t>(
        1, std::min<uint64_t>(options_.piece_bytes, max_request > 0
                                                        ? static_cast<uint64_t>(max_request)
                                                        : kDefaultMaxRequest));
    // What every later connection must serve (the clone checks it against the recorded one).
    pieces_ = fingerprint_pieces(size_);
    Link link = Link::kUsable;
    auto hashes = piece_hashes_on(h, all_pieces(), link);
    if (!hashes) return hashes.status();
    piece_hashes_ = std::move(*hashes);
    idle_.push_back({std::move(*first), 0});
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
    std::vector<Piece> pieces;
    add_pieces(pieces, offset, buf, piece_bytes_);
    return read_on_a_connection(pieces,
                                "source " + name_ + ": read of " + std::to_string(buf.size()) +
                                    " bytes at offset " + std::to_string(offset),
                                "read at offset " + std::to_string(offset), options_.read_timeout);
  }

  Status read_extents(std::span<const Extent> extents, std::span<std::byte> bytes) override {
    std::vector<Piece> pieces;
    size_t at = 0;
    for (const Extent& extent : extents) {
      if (extent.end > size_ || extent.begin > extent.end) {
        return Status::error(EIO, "source " + name_ + ": read of [" + std::to_string(extent.begin) +
                                      ", " + std::to_string(extent.end) +
                                      ") past the end of the export");
      }
      add_pieces(pieces, extent.begin, bytes.subspan(at, extent.length()), piece_bytes_);
      at += extent.length();
    }
    // As long as the identity check of a connection may take: the fingerprint's 66 pieces at
    // once are more than a slow server answers within a short --source-timeout.
    return read_on_a_connection(
        pieces, "source " + name_ + ": read of " + std::to_string(extents.size()) + " extents",
        "read of " + std::to_string(extents.size()) + " extents",
        std::max(options_.read_timeout, kIdentityTimeout));
  }

  // Reads `pieces`, all in flight at once, on one connection of the pool; on a lost link, again
  // on another until `timeout`.
  Status read_on_a_connection(const std::vector<Piece>& pieces, const std::string& where,
                              const std::string& what, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (true) {
      auto c = take(deadline, what);
      if (!c) return c.status();
      Link link = Link::kUsable;
      Status read = read_pieces(c->handle.get(), pieces, where, deadline, link);
      if (link == Link::kUsable) {
        give_back(std::move(*c));
        return read;
      }
      drop(std::move(*c), read.message(), link);
      if (read.code() == ECANCELED || Clock::now() >= deadline) {
        // A shutdown answer is the outage's, not the read's: the caller sees the timeout.
        return link == Link::kLeaving ? Status::error(EIO, where + ": " + read.message()) : read;
      }
    }
  }

  uint64_t size() const override { return size_; }

  // Everything counts as data. NBD block status ("this extent reads as zeros") is not used: a
  // server whose answer is wrong would have hydration skip data that reads return, and the
  // destination would silently differ from the image shown before. Zeros are read and found by
  // the hydrator's all-zero check, which keeps the destination sparse all the same.
  Result<std::optional<Extent>> next_data(uint64_t offset) override {
    if (offset >= size_) return std::optional<Extent>();
    return std::optional<Extent>(Extent{offset, size_});
  }

  const std::string& name() const override { return name_; }

  bool reachable() const override {
    std::lock_guard lock(mu_);
    return open_ > 0;
  }

  std::optional<SourceConnection> connection() const override {
    std::lock_guard lock(mu_);
    SourceConnection c;
    c.state = open_ > 0           ? (open_ < wanted_ ? "degraded" : "connected")
              : !refused_.empty() ? "changed"
                                  : "reconnecting";
    c.connections = open_;
    c.connections_wanted = wanted_;
    c.reconnects = reconnects_;
    c.last_error = open_ == 0 && !refused_.empty() ? refused_ : last_error_;
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
  Result<Connection> take(Clock::time_point deadline, const std::string& what) {
    std::unique_lock lock(mu_);
    while (true) {
      if (cancelled_.load()) {
        return Status::error(ECANCELED, "source " + name_ + ": " + what + " cancelled (closing)");
      }
      if (!idle_.empty()) {
        Connection c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
          !cancelled_.load()) {
        const std::string& last = !refused_.empty() ? refused_ : last_error_;
        std::string why = open_ == 0
                              ? "unreachable for " + seconds_text(options_.read_timeout) +
                                    (last.empty() ? "" : " (" + last + ")")
                              : "no connection free within " + seconds_text(options_.read_timeout);
        return Status::error(EIO, "source " + name_ + ": " + what + ": " + why);
      }
    }
  }

  // A connection of an older generation belongs to a server that is going away: closed, not
  // kept idle (nbdkit waits for it before it exits).
  void give_back(Connection c) {
    std::unique_lock lock(mu_);
    if (c.generation != generation_) {
      --open_;
      changed_.notify_all();
      lock.unlock();
      return;  // `c` closes here, outside the lock
    }
    idle_.push_back(std::move(c));
    changed_.notify_all();
  }

  // A server that answered ESHUTDOWN is leaving: every idle connection to it is closed at once
  // so it can exit, and those in use are closed when given back.
  void drop(Connection c, const std::string& why, Link link) {
    c.handle.reset();
    std::vector<Connection> leaving;
    {
      std::lock_guard lock(mu_);
      --open_;
      last_error_ = why;
      if (link == Link::kLeaving && c.generation == generation_) {
        ++generation_;
        leaving.swap(idle_);
        open_ -= static_cast<unsigned>(leaving.size());
        last_error_ = "the server is shutting down (it answered ESHUTDOWN)";
      }
      changed_.notify_all();
    }
  }

  // Waits a little for the replies to the requests in flight on `h` (see kDrainOnCancel).
  static void drain(nbd_handle* h) {
    const auto until = Clock::now() + kDrainOnCancel;
    while (alive(h) && nbd_aio_in_flight(h) > 0 && Clock::now() < until) {
      if (nbd_poll(h, poll_ms(until)) == -1) break;
    }
  }

  // Every piece in flight at once; `link` tells the caller whether the connection can be used
  // again.
  Status read_pieces(nbd_handle* h, const std::vector<Piece>& pieces, const std::string& where,
                     Clock::time_point deadline, Link& link) {
    std::vector<int64_t> cookies;
    for (const Piece& piece : pieces) {
      nbd_completion_callback none{};
      int64_t cookie = nbd_aio_pread(h, piece.buf.data(), piece.buf.size(), piece.offset, none, 0);
      if (cookie == -1) {
        link = Link::kLost;
        return Status::error(libnbd_errno(), where + ": " + libnbd_error(uri_));
      }
      cookies.push_back(cookie);
    }
    Status failed;
    bool leaving = false;
    while (!cookies.empty()) {
      for (size_t i = 0; i < cookies.size();) {
        int done = nbd_aio_command_completed(h, cookies[i]);
        if (done == 0) {
          ++i;
          continue;
        }
        if (done == -1) {
          leaving = leaving || nbd_get_errno() == ESHUTDOWN;
          if (failed.is_ok()) {
            failed = Status::error(libnbd_errno(), where + ": " + libnbd_error(uri_));
          }
        }
        cookies.erase(cookies.begin() + static_cast<std::ptrdiff_t>(i));
      }
      if (cookies.empty()) break;
      if (!alive(h)) {
        link = Link::kLost;
        return Status::error(EIO, where + ": connection lost");
      }
      if (cancelled_.load()) {
        drain(h);
        link = Link::kLost;
        return Status::error(ECANCELED, where + ": cancelled (closing)");
      }
      if (Clock::now() >= deadline) {
        link = Link::kLost;
        return Status::error(EIO,
                             where + ": no reply within " + seconds_text(options_.read_timeout));
      }
      (void)nbd_poll(h, poll_ms(deadline));
    }
    // A server's error reply leaves the connection usable; a dropped connection does not, and
    // a server shutting down answers nothing else any more.
    link = leaving ? Link::kLeaving : !failed.is_ok() && !alive(h) ? Link::kLost : Link::kUsable;
    return failed;
  }

  std::vector<size_t> all_pieces() const {
    std::vector<size_t> all(pieces_.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    return all;
  }

  // A hash of each of the fingerprint's pieces (io/fingerprint.h) numbered in `which`, as `h`
  // serves them, all in flight at once.
  Result<std::vector<uint64_t>> piece_hashes_on(nbd_handle* h, const std::vector<size_t>& which,
                                                Link& link) {
    uint64_t total = 0;
    for (size_t i : which) total += pieces_[i].length();
    std::vector<std::byte> bytes(total);
    std::vector<Piece> requests;
    uint64_t at = 0;
    for (size_t i : which) {
      add_pieces(requests, pieces_[i].begin, std::span(bytes).subspan(at, pieces_[i].length()),
                 piece_bytes_);
      at += pieces_[i].length();
    }
    Status read =
        read_pieces(h, requests, "source " + name_ + ": identity check",
                    Clock::now() + std::max(options_.read_timeout, kIdentityTimeout), link);
    if (!read) return read;
    std::vector<uint64_t> hashes;
    at = 0;
    for (size_t i : which) {
      Fnv1a64 hash;
      hash.add(std::span(bytes).subspan(at, pieces_[i].length()));
      hashes.push_back(hash.value());
      at += pieces_[i].length();
    }
    return hashes;
  }

  // The export a new connection reaches must be the one opened: a restarted server may serve
  // other data under the same name, and not one of its bytes may reach the destination. A
  // reconnection reads all the fingerprint's pieces (about 6 MiB); the extra connections opened
  // with the first one, to the server that has just answered it, read a few of them (they are
  // opened at every mount). Sets `other` when the server serves another source (rather than
  // failing to say).
  Status check_same_export(nbd_handle* h, bool whole, bool& other) {
    other = false;
    int64_t size = nbd_get_size(h);
    if (size < 0 || static_cast<uint64_t>(size) != size_) {
      other = size >= 0;
      return Status::error(EIO, "the source changed: " + name_ + " now exports " +
                                    std::to_string(size) + " bytes, not " + std::to_string(size_) +
                                    "; refusing the reconnected server");
    }
    std::vector<size_t> which;
    if (whole) {
      which = all_pieces();
    } else {
      for (size_t k = 0; k < kSampledPieces; ++k) which.push_back(next_sample_++ % pieces_.size());
    }
    Link link = Link::kUsable;
    auto hashes = piece_hashes_on(h, which, link);
    if (!hashes) {
      if (link == Link::kLeaving) {
        return Status::error(ESHUTDOWN, "the server is shutting down (it answered ESHUTDOWN)");
      }
      return hashes.status();
    }
    for (size_t k = 0; k < which.size(); ++k) {
      if ((*hashes)[k] == piece_hashes_[which[k]]) continue;
      other = true;
      return Status::error(EIO, "the source changed: " + name_ +
                                    " now serves other data (its bytes at offset " +
                                    std::to_string(pieces_[which[k]].begin) +
                                    " differ from the source's); refusing the reconnected server");
    }
    return Status::ok();
  }

  // A connection nobody uses learns nothing of its server: one that is shutting down (nbdkit on
  // SIGTERM answers ESHUTDOWN to requests, and waits for its clients to leave) or gone is found
  // by a small read on the connection idle longest, now and then. It goes back to the end of
  // the queue, so the probes go round the pool.
  void probe(Connection c) {
    std::vector<std::byte> buf(std::min(size_, kProbeBytes));
    std::vector<Piece> pieces;
    add_pieces(pieces, 0, buf, piece_bytes_);
    Link link = Link::kUsable;
    Status read = read_pieces(c.handle.get(), pieces, "source " + name_ + ": probe",
                              Clock::now() + options_.read_timeout, link);
    if (link == Link::kUsable) {
      give_back(std::move(c));
    } else {
      drop(std::move(c), read.message(), link);
    }
  }

  // Opens connections until `wanted_` are open: first the extra ones after start() (a server that
  // refuses them lowers `wanted_`), then any that were lost, with backoff; probes the idle ones
  // while all are open.
  void reconnect_loop() {
    std::unique_lock lock(mu_);
    milliseconds backoff = kFirstBackoff;
    while (!stopping_) {
      if (open_ >= wanted_) {
        filling_ = false;
        backoff = kFirstBackoff;
        if (!changed_.wait_for(lock, kProbeInterval,
                               [&] { return stopping_ || open_ < wanted_; }) &&
            !idle_.empty()) {
          Connection oldest = std::move(idle_.front());
          idle_.erase(idle_.begin());
          lock.unlock();
          probe(std::move(oldest));
          lock.lock();
        }
        continue;
      }
      const uint64_t generation = generation_;
      const bool whole = !filling_;
      lock.unlock();
      auto h = connect(uri_, name_, options_.connect_timeout, cancelled_);
      bool other = false;
      Status usable = h ? check_same_export(h->get(), whole, other) : h.status();
      lock.lock();
      // A connection made while the server announced its shutdown may be to the leaving one.
      if (usable && generation == generation_) {
        idle_.push_back({std::move(*h), generation_});
        ++open_;
        if (!filling_) ++reconnects_;
        refused_.clear();
        backoff = kFirstBackoff;
        changed_.notify_all();
        continue;
      }
      if (stopping_) break;
      if (usable && generation != generation_) continue;
      last_error_ = usable.message();
      if (other) refused_ = usable.message();
      if (filling_ && open_ > 0 && !other) {
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
  uint64_t piece_bytes_ = kDefaultMaxRequest;
  // The fingerprint's pieces, and a hash of each as the first connection served them.
  std::vector<Extent> pieces_;
  std::vector<uint64_t> piece_hashes_;
  size_t next_sample_ = 0;  // used by the reconnecting thread only

  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  std::condition_variable changed_;  // a connection freed, opened or lost; cancel; stop
  std::vector<Connection> idle_;     // guarded by mu_
  unsigned open_ = 0;                // guarded by mu_: idle or in use
  unsigned wanted_ = 1;              // guarded by mu_
  bool filling_ = false;             // guarded by mu_: opening the extra connections
  uint64_t reconnects_ = 0;          // guarded by mu_
  std::string last_error_;           // guarded by mu_
  // Guarded by mu_: why the last server reached was refused as another source ("" once one is
  // accepted again).
  std::string refused_;
  // Guarded by mu_: bumped when the server announces its shutdown; connections of an older
  // generation are closed instead of reused.
  uint64_t generation_ = 0;
  bool stopping_ = false;  // guarded by mu_
  std::thread reconnector_;
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
