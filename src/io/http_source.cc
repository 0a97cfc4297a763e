#include "io/http_source.h"

#include <atomic>

#include "io/curl_server.h"
#include "io/http_request.h"
#include "io/shared_curl_server.h"
#include "io/source_uri.h"

namespace clonefs {
namespace {

class HttpSource final : public SourceDevice {
 public:
  HttpSource(std::unique_ptr<HttpServerProcess> server, std::unique_ptr<SourceDevice> nbd,
             std::string name)
      : server_(std::move(server)), nbd_(std::move(nbd)), name_(std::move(name)) {}

  Status read_at(uint64_t offset, std::span<std::byte> buf) override {
    if (Status changed = refusal(); !changed) return changed;
    Status read = nbd_->read_at(offset, buf);
    // nbdkit logs the 412 before it answers the request: it is known by the time the read fails.
    if (!read) {
      if (Status changed = refusal(); !changed) return changed;
    }
    return read;
  }
  uint64_t size() const override { return nbd_->size(); }
  Result<std::optional<Extent>> next_data(uint64_t offset) override {
    return nbd_->next_data(offset);
  }
  Status read_for_hydration(uint64_t offset, std::span<std::byte> buf) override {
    const UniqueFd turn = server_->hydration_turn(closing_);
    return read_at(offset, buf);
  }
  const std::string& name() const override { return name_; }
  bool reachable() const override {
    return !server_->modified_since_checked() && nbd_->reachable();
  }
  std::optional<SourceConnection> connection() const override {
    auto c = nbd_->connection();
    if (c && server_->modified_since_checked()) {
      c->state = "changed";
      c->last_error = changed_message();
    }
    return c;
  }
  void cancel_waits() override {
    closing_.store(true, std::memory_order_relaxed);
    nbd_->cancel_waits();
  }

 private:
  std::string changed_message() const {
    return "the source changed: the server says " + name_ + " was modified after " +
           server_->checked_at() + " (HTTP 412 to If-Unmodified-Since); refusing it";
  }
  Status refusal() const {
    if (!server_->modified_since_checked()) return Status::ok();
    return Status::error(EIO, "source " + name_ + ": " + changed_message());
  }

  // Declared first, destroyed last: the NBD connections close before nbdkit is stopped.
  std::unique_ptr<HttpServerProcess> server_;
  std::unique_ptr<SourceDevice> nbd_;
  const std::string name_;
  std::atomic<bool> closing_{false};  // cancel_waits: a hydration read waits for no turn
};

Result<std::unique_ptr<HttpServerProcess>> start_server(const std::string& url, HttpRequest request,
                                                        bool share) {
  if (share) {
    auto shared = SharedCurlServer::start(url, std::move(request));
    if (!shared) return shared.status();
    return std::unique_ptr<HttpServerProcess>(std::move(*shared));
  }
  auto own = CurlServer::start(url, std::move(request));
  if (!own) return own.status();
  return std::unique_ptr<HttpServerProcess>(std::move(*own));
}

}  // namespace

Result<std::unique_ptr<SourceDevice>> open_http_source(const std::string& url,
                                                       const NbdSourceOptions& options) {
  CLONEFS_RETURN_IF_ERROR(check_source_uri(url));
  const std::string shown = redact_uri(url);
  auto request = http_request_from_environment();
  if (!request) return request.status();
  auto server = start_server(url, std::move(*request), options.share);
  if (!server) return server.status().with_context("source " + shown);
  NbdSourceOptions nbd = options;
  nbd.name = shown;
  nbd.piece_bytes = kHttpPieceBytes;
  auto source = open_nbd_source((*server)->nbd_uri(), nbd);
  if (!source) {
    // libnbd only knows the export could not be opened; nbdkit's log says what curl got.
    std::string why = (*server)->last_error();
    if (why.empty()) return source.status();
    return Status::error(source.status().code(), "source " + shown + " cannot be read: " + why);
  }
  return std::unique_ptr<SourceDevice>(
      std::make_unique<HttpSource>(std::move(*server), std::move(*source), shown));
}

}  // namespace clonefs
