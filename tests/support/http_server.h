// A real HTTP server for http(s) sources: nginx (Range requests and If-Unmodified-Since on
// static files, as artifact servers and object stores answer them) serving a directory on
// 127.0.0.1 at a free port, with its own configuration, prefix and pid file in a temporary
// directory; run as this process's child and stopped by its PID at scope end.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace clonefs::testing {

// An https server's certificate and key (PEM files); empty: plain http.
struct HttpTls {
  std::string certificate, key;
};

// Makes `directory`/cert.pem and key.pem: a self-signed certificate for 127.0.0.1 (its own CA,
// as an organisation's artifact server has one no system trusts). "" or what openssl said.
std::string make_self_signed_certificate(const std::string& directory);

class HttpServer {
 public:
  // Serves `root`; `work` is a directory of its own for its configuration, logs and temp files.
  // `server_directives` go into the server block (e.g. a check of a request header).
  HttpServer(std::string root, std::string work, std::string server_directives = "",
             HttpTls tls = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  bool running() const { return pid_ > 0; }
  // http://127.0.0.1:PORT/NAME (https:// with TLS)
  std::string url(const std::string& name) const;
  // The access log: one line per request, with its status.
  std::string access_log() const;
  // Bytes nginx sent, headers included ($bytes_sent summed over the access log).
  uint64_t bytes_sent() const;
  std::string error() const { return error_; }
  pid_t pid() const { return pid_; }

 private:
  std::string root_, work_, error_;
  bool tls_ = false;
  int port_ = 0;
  pid_t pid_ = -1;
};

// Why HTTP source tests cannot run here ("" if they can): nginx or nbdkit's curl plugin missing.
std::string http_environment_problem();

}  // namespace clonefs::testing

#define CLONEFS_REQUIRE_HTTP_ENVIRONMENT()                                      \
  do {                                                                          \
    std::string http_problem_ = ::clonefs::testing::http_environment_problem(); \
    if (!http_problem_.empty()) {                                               \
      if (::clonefs::testing::running_in_ci())                                  \
        FAIL() << "CI must run HTTP source tests: " << http_problem_;           \
      GTEST_SKIP() << "needs nginx and nbdkit curl: " << http_problem_;         \
    }                                                                           \
  } while (0)
