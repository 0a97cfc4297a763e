// The nbdkit an http(s) source opened with --share-source reads through: one per golden URL and
// user on the host, shared by every clone of it, with nbdkit's cache filter so that what one
// clone fetched the others read from the host's disk. Eight clones of one golden then fetch it
// about once instead of eight times.
//
// Why this shape:
// - One server per (user, URL): its directory is named by a 128-bit hash of the full URL (two
//   URLs that differ only in a secret are two servers, since each server fetches with its own
//   URL's credentials), inside a directory private to the user (0700, checked to be the user's
//   own): /run/clonefs-sources for root, $XDG_RUNTIME_DIR/clonefs-sources or
//   /tmp/clonefs-sources-UID for others. Nobody else can connect to the socket, plant a file, or
//   learn the hash (which is of a URL that may hold a password).
// - Nobody's child: started by whichever clone finds none running (under an flock on "lock"),
//   double-forked into a session of its own, so a clone killed or restarted does not take it
//   down with it; the others' connections go on.
// - Stopped when no clone uses it: every process that reads through it holds a shared flock on
//   "lease" for as long as it has the source open (through reconnections, when its connection pool
//   may momentarily hold no connection), and nbdkit's exitwhen filter checks every second while
//   idle, and at each disconnection, whether an exclusive lock could be taken: then nobody holds
//   a lease, nbdkit refuses new connections and exits. A killed clone's lease goes with its
//   descriptors. A clone that finds the server gone (it died, or exited as the clone arrived)
//   starts a new one under the lock; its connections reconnect with the identity check of any
//   reconnection.
// - The cache: nbdkit's cache filter (cache-on-read) keeps what was fetched in a file it creates
//   in $TMPDIR (default /var/tmp, on disk) and unlinks at once: private to the user (0600), of at
//   most the golden's size, gone when nbdkit exits, however it exits.
// - A golden replaced on the server: the server was started with If-Unmodified-Since (the second
//   it started), so every fetch after a replacement answers 412 and the cache holds only blocks of
//   the file as it was when the server started; no clone reads a byte of the new file through it
//   (each clone's identity check, size and fingerprint, runs on every connection as before). Its
//   log (stderr, a 0600 file in the directory) shows the 412 to every clone, which turns the
//   source "changed" for good, and a later clone does not join a server whose log shows one: it
//   starts a new one (the old one serves its remaining clients from its cache until they go).
// - The URL and headers reach nbdkit as for an unshared source: through a memfd read by clonefs's
//   parameters filter, never argv; the command line holds no path, only descriptor numbers.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "io/curl_server.h"
#include "io/unique_fd.h"
#include "util/status.h"

namespace clonefs {

class SharedCurlServer final : public HttpServerProcess {
 public:
  // Joins the server for `url`, starting it if none runs (or if the running one has seen the
  // file change), and waits until it accepts connections.
  // `request`'s headers go with every request, its CA file checks an https server; clones given
  // other headers (other credentials) or another CA file get a server of their own, as clones of
  // another URL do.
  static Result<std::unique_ptr<SharedCurlServer>> start(const std::string& url,
                                                         HttpRequest request);
  // Gives up this process's lease: the server exits once nobody else holds one.
  ~SharedCurlServer() override;
  SharedCurlServer(const SharedCurlServer&) = delete;
  SharedCurlServer& operator=(const SharedCurlServer&) = delete;

  std::string nbd_uri() const override;
  std::string last_error() override;
  bool modified_since_checked() override;
  const std::string& checked_at() const override { return checked_at_; }

  // One of kHydrationTurns turns shared by every process reading through this server (an flock
  // on a file of its directory), held until the descriptor is closed: nbdkit's cache filter
  // sends one request at a time to the plugin, in no order, so eight clones hydrating at once
  // each queued several 4 MiB fetches ahead of every read a user was waiting on. With two turns
  // a read on demand waits for at most two hydration fetches, and the server is still never
  // idle between them. -1 if the turn's file cannot be opened (hydration then goes at once).
  UniqueFd hydration_turn(const std::atomic<bool>& give_up) override;
  static constexpr unsigned kHydrationTurns = 2;

  // The running server's PID (0 if none): for tests.
  pid_t server_pid();

 private:
  SharedCurlServer(std::string url, HttpRequest request)
      : url_(std::move(url)), request_(std::move(request)) {}
  Status open_directory();
  Status join();
  Status join_locked();
  Status hold_current_lease();
  bool joinable();
  Status spawn();
  Status wait_accepting(pid_t pid, int pidfd);
  void watch();
  void read_log_locked();

  const std::string url_;      // in clear: only ever written to the parameters memfd
  const HttpRequest request_;  // its headers: the same
  UniqueFd directory_fd_;      // the server's directory, O_PATH
  UniqueFd lock_fd_, lease_fd_;
  UniqueFd stop_fd_;  // an eventfd: the watcher returns
  std::thread watcher_;
  std::atomic<unsigned> next_turn_{0};

  std::mutex mu_;
  std::string checked_at_;            // set at each join, under mu_ after start
  pid_t pid_ = 0;                     // guarded by mu_
  UniqueFd pidfd_;                    // guarded by mu_
  UniqueFd log_fd_;                   // guarded by mu_: the current server's log, read as it grows
  std::string log_tail_;              // guarded by mu_: its end, raw (may hold secrets)
  bool precondition_failed_ = false;  // guarded by mu_: sticky
};

}  // namespace clonefs
