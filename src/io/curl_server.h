// The NBD server clonefs runs itself for an http(s) source: nbdkit's curl plugin, a child of the
// process that reads the source, on a unix socket in a private directory.
//
// Why this shape (the smallest that holds up):
// - Owned by the process that opens the source (`clonefs create`, each serving process, an
//   offline command), not by the supervisor: a serving process killed with SIGKILL takes its
//   nbdkit with it (PR_SET_PDEATHSIG, nbdkit's --exit-with-parent), and its successor starts a new
//   one when it reopens the clone, whose identity check (size and fingerprint, engine/clone.h)
//   refuses other data as after any reconnection. The supervisor stays a process that opens
//   nothing remote, and no server outlives the mount or is orphaned. A restart costs one nbdkit
//   start (tens of milliseconds) and the HTTP connections it opens.
// - Spawned by a thread that lives as long as the server: PR_SET_PDEATHSIG fires when the thread
//   that forked exits, not the process. The same thread reaps nbdkit and starts it again (on the
//   same socket, after a backoff) if it dies on its own; the NBD connections then reconnect with
//   the identity check of every reconnection.
// - The socket lies in a directory made by mkdtemp (mode 0700, an unpredictable name) and is
//   reached by both sides through that directory's descriptor (/proc/self/fd/N/nbd.sock): nobody
//   else can connect (the directory is closed to them), plant a socket in it, or redirect it by
//   renaming the directory, whatever its parent.
// - The URL (with its user:password@ and query, a presigned URL's signature) and the request
//   headers reach nbdkit through a memfd read by clonefs's own nbdkit filter
//   (src/nbdkit/parameters_filter.cc), never through argv (/proc/PID/cmdline is world-readable),
//   and never touch a disk.
// - A golden replaced on the server is refused by HTTP itself: every request carries
//   If-Unmodified-Since (the second the server was started, after which the clone checks the
//   source's identity), so a file modified since answers 412, never other bytes.
// - Filters: retry (a failed request is retried on a fresh HTTP connection, 3 times over about
//   7 s, within --source-timeout's 30 s). No readahead and no cache: the destination is the cache
//   (a hydrated region is never read from the source again), reads are already large (256 KiB
//   pieces, several in flight), and nbdkit 1.32's readahead works per NBD connection, which
//   clonefs's pool of connections takes in turn.
// - With --share-source, one server per URL and user on the host, with a cache, serves every
//   clone of it instead: io/shared_curl_server.h.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "io/http_request.h"
#include "io/unique_fd.h"
#include "util/status.h"

namespace clonefs {

// What an http(s) source needs of the nbdkit serving it: this process's own (CurlServer) or the
// one shared by every clone of the golden on the host (SharedCurlServer, io/shared_curl_server.h).
class HttpServerProcess {
 public:
  virtual ~HttpServerProcess() = default;
  // nbd+unix:///?socket=..., valid in this process only.
  virtual std::string nbd_uri() const = 0;
  // nbdkit's last error (curl's, about the URL), redacted; "" if none.
  virtual std::string last_error() = 0;
  // Whether the server answered 412 to the If-Unmodified-Since every request carries: the file
  // was modified after the date the server was started with. Once true, true for good.
  virtual bool modified_since_checked() = 0;
  // The date sent in If-Unmodified-Since.
  virtual const std::string& checked_at() const = 0;
  // Waits for a turn to send a hydration read, held until the descriptor returned is closed; -1
  // (go at once) for a server of this process's own, when no turn can be had, or once `give_up`
  // is set (the clone is closing: its read then fails at once).
  virtual UniqueFd hydration_turn(const std::atomic<bool>& give_up) {
    (void)give_up;
    return UniqueFd();
  }
};

// Shared by both kinds of server.
namespace nbdkit_launch {
// `name` found in PATH, "" if not.
std::string find_program(const std::string& name);
// clonefs's parameters filter beside the binary, refused if another user could change it.
Result<std::string> parameters_filter();
// An HTTP date (RFC 9110), the current second.
std::string http_date_now();
// curl's message for an HTTP 412, as nbdkit logs it.
inline constexpr const char* kPreconditionFailed = "returned error: 412";
// The parameters the curl plugin is given through the memfd: the URL, the request's headers and
// CA file (io/http_request.h) and If-Unmodified-Since `date`, NUL-separated for the parameters
// filter.
std::string curl_parameters(const std::string& url, const HttpRequest& request,
                            const std::string& date);
// The last "error: " line of nbdkit's output, redacted.
std::string last_error_line(const std::string& output, const std::string& url);
}  // namespace nbdkit_launch

class CurlServer final : public HttpServerProcess {
 public:
  // Starts nbdkit for `url` (http:// or https://) and waits until it accepts connections. It
  // fetches nothing yet: the curl plugin opens the URL for each NBD connection.
  // `request`'s headers go with every request, its CA file checks an https server.
  static Result<std::unique_ptr<CurlServer>> start(const std::string& url, HttpRequest request);
  ~CurlServer();
  CurlServer(const CurlServer&) = delete;
  CurlServer& operator=(const CurlServer&) = delete;

  std::string nbd_uri() const override;
  std::string last_error() override;
  bool modified_since_checked() override;
  const std::string& checked_at() const override { return checked_at_; }

 private:
  CurlServer(std::string url, HttpRequest request)
      : url_(std::move(url)), request_(std::move(request)) {}
  Status prepare();
  Status wait_accepting();
  void watch();
  pid_t spawn();
  void read_output();
  void stop_child();

  const std::string url_;      // in clear: only ever written to the parameters memfd
  const HttpRequest request_;  // its headers: the same
  std::string checked_at_;
  std::string directory_;  // the private directory, removed at the end
  UniqueFd directory_fd_;
  UniqueFd parameters_fd_;               // the memfd nbdkit's filter reads
  UniqueFd output_read_, output_write_;  // nbdkit's stdout and stderr
  UniqueFd stop_fd_;                     // an eventfd: the watcher stops nbdkit and returns
  std::string filter_;
  std::thread watcher_;

  std::mutex mu_;
  pid_t pid_ = 0;         // guarded by mu_: 0 while none runs
  int spawn_errno_ = 0;   // guarded by mu_: the first spawn's failure
  bool spawned_ = false;  // guarded by mu_: the first spawn was tried
  std::string output_;    // guarded by mu_: the end of nbdkit's output, raw (holds secrets)
  bool precondition_failed_ = false;  // guarded by mu_
};

}  // namespace clonefs
