#include "support/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/system.h"

namespace clonefs::testing {
namespace {

// A port nobody listens on now: bound to 0, read back, closed (nginx binds it a moment later;
// the start is retried on another port if somebody took it meanwhile).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  if (fd >= 0) ::close(fd);
  return port;
}

bool accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}

}  // namespace

std::string make_self_signed_certificate(const std::string& directory) {
  CommandResult r =
      run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
          "-nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
          "-keyout " +
          shell_quote(directory + "/key.pem") + " -out " + shell_quote(directory + "/cert.pem"));
  return r.exit_code == 0 ? "" : "openssl req failed: " + r.output;
}

HttpServer::HttpServer(std::string root, std::string work, std::string server_directives,
                       HttpTls tls)
    : root_(std::move(root)), work_(std::move(work)), tls_(!tls.certificate.empty()) {
  const std::string listen_tls =
      tls_ ? " ssl; ssl_certificate " + tls.certificate + "; ssl_certificate_key " + tls.key : "";
  for (int attempt = 0; attempt < 5 && pid_ < 0; ++attempt) {
    port_ = free_port();
    const std::string conf = work_ + "/nginx.conf";
    std::ofstream(conf) << "daemon off;\nmaster_process off;\nworker_processes 1;\n"
                        << "pid " << work_ << "/nginx.pid;\nerror_log " << work_ << "/error.log;\n"
                        << "events { worker_connections 256; }\nhttp {\n"
                        << "  log_format clonefs '$remote_addr [$time_local] \"$request\" $status "
                        << "\"$http_range\" $body_bytes_sent $bytes_sent';\n"
                        << "  access_log " << work_ << "/access.log clonefs;\n"
                        << "  client_body_temp_path " << work_ << ";\n  proxy_temp_path " << work_
                        << ";\n  fastcgi_temp_path " << work_ << ";\n  uwsgi_temp_path " << work_
                        << ";\n  scgi_temp_path " << work_ << ";\n"
                        << "  server { listen 127.0.0.1:" << port_ << listen_tls << "; root "
                        << root_ << "; " << server_directives << " }\n}\n";
    const std::string error_log = work_ + "/error.log";
    pid_t pid = ::fork();
    if (pid < 0) break;
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the test process, should a crash skip ~
      ::execlp("nginx", "nginx", "-p", work_.c_str(), "-c", conf.c_str(), "-e", error_log.c_str(),
               nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 500; ++i) {
      if (accepts(port_)) {
        pid_ = pid;
        break;
      }
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (pid_ < 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      std::ifstream in(error_log);
      std::stringstream text;
      text << in.rdbuf();
      error_ = text.str();
    }
  }
}

HttpServer::~HttpServer() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
}

std::string HttpServer::url(const std::string& name) const {
  return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_) + "/" + name;
}

std::string HttpServer::access_log() const {
  std::ifstream in(work_ + "/access.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

uint64_t HttpServer::bytes_sent() const {
  std::istringstream log(access_log());
  uint64_t total = 0;
  for (std::string line; std::getline(log, line);) {
    size_t last = line.rfind(' ');
    if (last != std::string::npos) total += std::strtoull(line.c_str() + last + 1, nullptr, 10);
  }
  return total;
}

std::string http_environment_problem() {
  if (run("command -v nginx").exit_code != 0) return "nginx is not installed";
  if (run("nbdkit curl --version").exit_code != 0) return "nbdkit's curl plugin is missing";
  if (run("command -v openssl").exit_code != 0) return "openssl is not installed";
  return "";
}

}  // namespace clonefs::testing
