// Issue #28: goldens served over HTTP, through a real nginx, nbdkit's curl plugin started by
// clonefs itself, and real mounts: an ext4 golden cloned, mounted on a loop device, hydrated and
// finalized; a golden replaced on the server refused, never mixed in; the URL's secrets in no
// process's argv and nowhere clonefs writes; an unreadable URL refused at create.
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mount/nbd_fixture.h"
#include "support/http_server.h"
#include "support/processes.h"

namespace clonefs::testing {
namespace {

// Every process's command line on the machine, NULs as spaces.
std::vector<std::string> all_command_lines() {
  std::vector<std::string> out;
  for (ProcessEntry& p : all_processes()) {
    for (char& c : p.command_line) c = c == '\0' ? ' ' : c;
    if (!p.command_line.empty()) out.push_back(std::move(p.command_line));
  }
  return out;
}

// The nbdkit processes clonefs started (their command line names its filter's parameter), each
// with its parent's PID.
std::vector<std::pair<int, int>> clonefs_nbdkits() {
  std::vector<std::pair<int, int>> out;
  for (const ProcessEntry& p : all_processes()) {
    if (p.command_line.find("clonefs-parameters=") != std::string::npos)
      out.emplace_back(p.pid, p.parent);
  }
  return out;
}

// The private directories clonefs made for nbdkit's sockets (none left once it is done).
size_t private_directories() {
  size_t n = 0;
  for (const char* parent : {"/run", "/tmp"}) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(parent, ec)) {
      if (e.path().filename().string().rfind("clonefs-http-", 0) == 0) ++n;
    }
  }
  return n;
}

// CLONEFS_SOURCE_URI set for the commands this test runs (inherited, in no argv), unset after.
class SourceUriVariable {
 public:
  explicit SourceUriVariable(const std::string& uri) {
    ::setenv("CLONEFS_SOURCE_URI", uri.c_str(), 1);
  }
  ~SourceUriVariable() { ::unsetenv("CLONEFS_SOURCE_URI"); }
};

// CLONEFS_SOURCE_HEADERS set for the commands this test runs, unset after.
class SourceHeadersVariable {
 public:
  explicit SourceHeadersVariable(const std::string& headers) {
    ::setenv("CLONEFS_SOURCE_HEADERS", headers.c_str(), 1);
  }
  ~SourceHeadersVariable() { ::unsetenv("CLONEFS_SOURCE_HEADERS"); }
};

// CLONEFS_SOURCE_CA set for the commands this test runs, unset after.
class SourceCaVariable {
 public:
  explicit SourceCaVariable(const std::string& path) {
    ::setenv("CLONEFS_SOURCE_CA", path.c_str(), 1);
  }
  ~SourceCaVariable() { ::unsetenv("CLONEFS_SOURCE_CA"); }
};

class HttpMount : public NbdMount {
 protected:
  void SetUp() override {
    NbdMount::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    CLONEFS_REQUIRE_HTTP_ENVIRONMENT();
    std::filesystem::create_directories(www());
    std::filesystem::create_directories(dir_.file("nginx"));
    server_ = std::make_unique<HttpServer>(www(), dir_.file("nginx"));
    ASSERT_TRUE(server_->running()) << "nginx did not start: " << server_->error();
  }
  std::string www() const { return dir_.file("www"); }
  std::string golden() const { return www() + "/golden.img"; }
  // Replaces the golden on the server as a publisher does: a new file renamed over the old one.
  void replace_golden(const std::vector<std::byte>& bytes) {
    write_file(golden() + ".new", bytes);
    std::filesystem::rename(golden() + ".new", golden());
  }
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpMount, Ext4GoldenOverHttpIsClonedMountedHydratedAndFinalized) {
  const std::string tree = dir_.file("tree");
  std::filesystem::create_directories(tree + "/etc");
  write_file(tree + "/etc/payload.bin", random_bytes(3 * kMiB + 123, 28));
  CommandResult mkfs =
      run("mkfs.ext4 -q -F -d " + shell_quote(tree) + " " + shell_quote(golden()) + " 64M");
  ASSERT_EQ(mkfs.exit_code, 0) << mkfs.output;
  const std::string golden_digest = file_digest(golden());

  CommandResult created = create_from(server_->url("golden.img"));
  ASSERT_EQ(created.exit_code, 0) << created.output;
  mount("--no-hydration");
  CloneStatus s = status_json(image());
  EXPECT_EQ(s.source, server_->url("golden.img"));
  ASSERT_TRUE(s.source_connection.has_value());
  EXPECT_EQ(s.source_connection->state, "connected");
  {
    // The guest's view: ext4 read through the loop device, its file as it was put in.
    LoopDevice loop(image(), "--read-only");
    ASSERT_TRUE(loop.ok());
    FilesystemMount fs(loop.device(), dir_.file("guest"));
    ASSERT_TRUE(fs.ok());
    EXPECT_TRUE(same_content(dir_.file("guest/etc/payload.bin"), tree + "/etc/payload.bin"));
  }
  EXPECT_NE(server_->access_log().find(" 206 "), std::string::npos) << "no Range request";
  ASSERT_EQ(run(clonefs("hydrate --resume " + shell_quote(image()))).exit_code, 0);
  hydrate_wait();
  unmount();
  CommandResult finalize = run(clonefs("finalize --metadata " + shell_quote(meta())));
  ASSERT_EQ(finalize.exit_code, 0) << finalize.output;
  EXPECT_TRUE(same_content(dest(), golden()));
  EXPECT_EQ(file_digest(golden()), golden_digest);
  EXPECT_EQ(private_directories(), 0u) << "a private directory of nbdkit's was left behind";
}

// The server's file replaced under a running clone (same size, other bytes): every request
// carries If-Unmodified-Since, the server answers 412, and no byte of the new file is shown.
TEST_F(HttpMount, GoldenReplacedOnTheServerIsRefusedNeverMixedIn) {
  const auto original = random_bytes(8 * kMiB, 281);
  write_file(golden(), original);
  ASSERT_EQ(create_from(server_->url("golden.img")).exit_code, 0);
  mount("--no-hydration --source-timeout 3");
  // What a reader saw before: the first MiB.
  CommandResult head = run("dd status=none bs=1M count=1 if=" + shell_quote(image()) +
                           " of=" + shell_quote(dir_.file("first")));
  ASSERT_EQ(head.exit_code, 0) << head.output;
  // HTTP dates have whole seconds: the new file must be modified after the second the server
  // was started in (README says so).
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const auto replacement = random_bytes(8 * kMiB, 282);
  replace_golden(replacement);

  // A region not read yet: an error, never the new file's bytes.
  CommandResult tail =
      run("dd status=none bs=1M skip=6 count=1 iflag=direct if=" + shell_quote(image()) +
          " of=" + shell_quote(dir_.file("tail")));
  EXPECT_NE(tail.exit_code, 0) << "a region of the replaced file was read";
  if (std::filesystem::exists(dir_.file("tail")) &&
      std::filesystem::file_size(dir_.file("tail")) > 0) {
    auto got = read_file(dir_.file("tail"));
    std::vector<std::byte> replaced(replacement.begin() + 6 * kMiB,
                                    replacement.begin() + 6 * kMiB + got.size());
    EXPECT_FALSE(got == replaced) << "the replaced file's bytes were mixed into the image";
  }
  CloneStatus s = status_json(image());
  ASSERT_TRUE(s.source_connection.has_value());
  EXPECT_EQ(s.source_connection->state, "changed");
  EXPECT_NE(s.source_connection->last_error.find("412"), std::string::npos)
      << s.source_connection->last_error;
  // Hydration gets nothing of the new file either, and never completes.
  ASSERT_EQ(run(clonefs("hydrate --resume " + shell_quote(image()))).exit_code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  s = status_json(image());
  EXPECT_LT(s.regions_valid, s.regions_total);
  EXPECT_FALSE(s.complete);
  // What was read before is still what it was.
  auto first = read_file(dir_.file("first"));
  EXPECT_TRUE(std::equal(first.begin(), first.end(), original.begin()));
  unmount();
  CommandResult finalize = run(clonefs("finalize --metadata " + shell_quote(meta())));
  EXPECT_NE(finalize.exit_code, 0) << finalize.output;
  // And the destination holds nothing of the replacement.
  auto destination = read_file(dest());
  for (size_t at = 0; at + 65536 <= destination.size(); at += 65536) {
    bool zero = std::all_of(destination.begin() + at, destination.begin() + at + 65536,
                            [](std::byte b) { return b == std::byte{0}; });
    if (zero) continue;
    ASSERT_TRUE(std::equal(destination.begin() + at, destination.begin() + at + 65536,
                           original.begin() + at))
        << "the destination differs from the original golden at offset " << at;
  }
}

TEST_F(HttpMount, SecretsOfTheUrlReachNoArgvMetadataLogStatusOrMetrics) {
  write_file(golden(), random_bytes(4 * kMiB, 283));
  // nginx ignores both; a presigned URL's signature and a password are what must not leak.
  const std::string password = "Pw0rdHTTPsecret";
  const std::string signature = "f00dSIGNATUREc0ffee";
  const std::string credential = "AKIAcredentialSECRET";
  std::string url = server_->url("golden.img");
  url.insert(url.find("://") + 3, "alice:" + password + "@");
  url += "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + credential +
         "&X-Amz-Signature=" + signature;
  const std::vector<std::string> secrets = {password, signature, credential};
  SourceUriVariable variable(url);
  // No --source: the URL comes from CLONEFS_SOURCE_URI, so it is in no command line.
  CommandResult created =
      run(clonefs("create --dest " + shell_quote(dest()) + " --metadata " + shell_quote(meta())));
  ASSERT_EQ(created.exit_code, 0) << created.output;
  const std::string metrics = dir_.file("metrics.prom");
  const std::string log = dir_.file("mount.log");
  mount("--log-file " + shell_quote(log) + " --metrics-file " + shell_quote(metrics));
  hydrate_wait();
  EXPECT_TRUE(same_content(image(), golden()));

  bool nbdkit_seen = false;
  for (const std::string& line : all_command_lines()) {
    if (line.find("clonefs-parameters=") != std::string::npos) nbdkit_seen = true;
    for (const std::string& secret : secrets)
      EXPECT_EQ(line.find(secret), std::string::npos) << "in a command line: " << line;
  }
  EXPECT_TRUE(nbdkit_seen) << "no nbdkit of clonefs's was running";
  for (int i = 0; i < 120 && file_text(metrics).find("clonefs") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the first metrics write
  std::string written = created.output + run(clonefs("status " + shell_quote(image()))).output +
                        run(clonefs("status --json " + shell_quote(image()))).output +
                        file_text(metrics) + file_text(log) + file_text(meta()) +
                        file_text(meta() + "-wal");
  EXPECT_NE(file_text(metrics).find("golden.img?***"), std::string::npos) << "no source in metrics";
  unmount();
  written += file_text(log) + file_text(meta()) + file_text(meta() + "-wal");
  for (const std::string& secret : secrets)
    EXPECT_EQ(written.find(secret), std::string::npos) << secret << " was written";
  EXPECT_NE(file_text(meta()).find("golden.img?***"), std::string::npos) << "not recorded redacted";
}

// A server that wants a token and a cookie gets them from CLONEFS_SOURCE_HEADERS, with every
// request, its own server's and the shared one's; they reach no command line and nothing clonefs
// writes. Without them create gets the server's 403, in one line, and makes nothing.
TEST_F(HttpMount, HeadersFromTheEnvironmentReachTheServerAndNothingElse) {
  const std::string token = "t0kenHEADERsecret";
  const std::string cookie = "c00kieHEADERsecret";
  std::filesystem::create_directories(dir_.file("nginx-guarded"));
  HttpServer guarded(www(), dir_.file("nginx-guarded"),
                     "if ($http_authorization != \"Bearer " + token + "\") { return 403; } " +
                         "if ($cookie_session != \"" + cookie + "\") { return 403; }");
  ASSERT_TRUE(guarded.running()) << guarded.error();
  const auto bytes = random_bytes(8 * kMiB, 285);
  write_file(golden(), bytes);
  const std::string url = guarded.url("golden.img");
  CommandResult refused = create_from(url);
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_NE(refused.output.find("403"), std::string::npos) << refused.output;
  EXPECT_EQ(std::count(refused.output.begin(), refused.output.end(), '\n'), 1) << refused.output;
  EXPECT_FALSE(std::filesystem::exists(meta()));

  SourceHeadersVariable headers("Authorization: Bearer " + token + "\r\nCookie: session=" + cookie);
  CommandResult created = create_from(url);
  ASSERT_EQ(created.exit_code, 0) << created.output;
  const std::string log = dir_.file("mount.log");
  mount("--share-source --no-hydration --log-file " + shell_quote(log));
  EXPECT_EQ(read_file(image()), bytes);
  std::string written = created.output + run(clonefs("status " + shell_quote(image()))).output +
                        run(clonefs("status --json " + shell_quote(image()))).output;
  for (const std::string& line : all_command_lines()) {
    EXPECT_EQ(line.find(token), std::string::npos) << "in a command line: " << line;
    EXPECT_EQ(line.find(cookie), std::string::npos) << "in a command line: " << line;
  }
  unmount();
  written += file_text(log) + file_text(meta()) + file_text(meta() + "-wal");
  EXPECT_EQ(written.find(token), std::string::npos) << "the token was written";
  EXPECT_EQ(written.find(cookie), std::string::npos) << "the cookie was written";
  const std::string access = guarded.access_log();
  EXPECT_NE(access.find(" 206 "), std::string::npos) << access;
}

// An https server with a certificate of a CA no system trusts (an organisation's own): refused
// at create as curl refuses it, unless CLONEFS_SOURCE_CA names that CA, in a file no other user
// can write; then cloned, mounted (alone and with --share-source) and read end to end.
TEST_F(HttpMount, HttpsIsCheckedAgainstTheCaGivenInTheEnvironment) {
  const std::string tls = dir_.file("tls");
  std::filesystem::create_directories(tls);
  ASSERT_EQ(make_self_signed_certificate(tls), "");
  std::filesystem::create_directories(dir_.file("nginx-tls"));
  HttpServer secure(www(), dir_.file("nginx-tls"), "",
                    HttpTls{tls + "/cert.pem", tls + "/key.pem"});
  ASSERT_TRUE(secure.running()) << secure.error();
  const auto bytes = random_bytes(8 * kMiB, 287);
  write_file(golden(), bytes);
  const std::string url = secure.url("golden.img");
  ASSERT_EQ(url.rfind("https://", 0), 0u) << url;

  CommandResult refused = create_from(url);
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_NE(refused.output.find("certificate"), std::string::npos) << refused.output;
  EXPECT_EQ(std::count(refused.output.begin(), refused.output.end(), '\n'), 1) << refused.output;
  EXPECT_FALSE(std::filesystem::exists(meta()));

  const std::string ca = tls + "/cert.pem";
  {
    // Whoever can write the CAs can have their own server taken for the golden's.
    ASSERT_EQ(::chmod(ca.c_str(), 0666), 0);
    SourceCaVariable variable(ca);
    CommandResult writable = create_from(url);
    EXPECT_NE(writable.exit_code, 0) << writable.output;
    EXPECT_NE(writable.output.find("CLONEFS_SOURCE_CA"), std::string::npos) << writable.output;
    EXPECT_NE(writable.output.find("can be written by other users"), std::string::npos)
        << writable.output;
    EXPECT_FALSE(std::filesystem::exists(meta()));
    ASSERT_EQ(::chmod(ca.c_str(), 0644), 0);
  }
  SourceCaVariable variable(ca);
  CommandResult created = create_from(url);
  ASSERT_EQ(created.exit_code, 0) << created.output;
  for (const char* flags : {"--no-hydration", "--no-hydration --share-source"}) {
    mount(flags);
    EXPECT_EQ(read_file(image()), bytes) << flags;
    unmount();
  }
  EXPECT_NE(secure.access_log().find(" 206 "), std::string::npos) << secure.access_log();
}

// A header line clonefs cannot send as given is refused before anything starts, naming the line
// and never the value.
TEST_F(HttpMount, AMalformedOrReservedHeaderIsRefusedWithoutItsValue) {
  write_file(golden(), random_bytes(1 * kMiB, 286));
  for (const std::string& bad :
       {std::string("Authorization Bearer v4lueSECRET"), std::string("Range: bytes=0-v4lueSECRET"),
        std::string("X-Token: v4lue\x01SECRET")}) {
    SourceHeadersVariable headers("Accept: */*\n" + bad);
    CommandResult created = create_from(server_->url("golden.img"));
    EXPECT_NE(created.exit_code, 0) << created.output;
    EXPECT_NE(created.output.find("CLONEFS_SOURCE_HEADERS: line 2"), std::string::npos)
        << created.output;
    EXPECT_EQ(created.output.find("SECRET"), std::string::npos) << created.output;
    EXPECT_FALSE(std::filesystem::exists(meta()));
  }
}

// nbdkit belongs to the serving process: a SIGKILL of that process takes its nbdkit along (none
// is orphaned), and the successor serves the image through an nbdkit of its own.
TEST_F(HttpMount, SigkillOfTheServingProcessTakesItsNbdkitAndTheSuccessorServes) {
  const auto bytes = random_bytes(8 * kMiB, 284);
  write_file(golden(), bytes);
  ASSERT_EQ(create_from(server_->url("golden.img")).exit_code, 0);
  const size_t directories_before = private_directories();
  mount("--no-hydration");
  const int serving = mounted_->daemon_pid();
  ASSERT_GT(serving, 0);
  auto before = clonefs_nbdkits();
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0].second, serving) << "nbdkit is not the serving process's child";
  ASSERT_EQ(::kill(serving, SIGKILL), 0);

  // A read after the kill is answered by the successor, with the golden's bytes.
  CommandResult read =
      run("dd status=none bs=1M skip=5 count=1 iflag=direct if=" + shell_quote(image()) +
          " of=" + shell_quote(dir_.file("after")));
  ASSERT_EQ(read.exit_code, 0) << read.output;
  auto after = read_file(dir_.file("after"));
  ASSERT_EQ(after.size(), kMiB);
  EXPECT_TRUE(std::equal(after.begin(), after.end(), bytes.begin() + 5 * kMiB));
  const int successor = mounted_->daemon_pid();
  EXPECT_NE(successor, serving);
  std::vector<std::pair<int, int>> now;
  for (int i = 0; i < 100; ++i) {  // the old nbdkit exits on its parent's death (SIGTERM)
    now = clonefs_nbdkits();
    if (now.size() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(now.size(), 1u) << "the killed process's nbdkit outlived it";
  EXPECT_NE(now[0].first, before[0].first);
  EXPECT_EQ(now[0].second, successor);
  unmount();
  EXPECT_TRUE(clonefs_nbdkits().empty()) << "nbdkit outlived the mount";
  // The killed process could not remove its private directory: the next server's start did.
  EXPECT_EQ(private_directories(), directories_before);
}

// nbdkit's socket is in a directory of its own, closed to everyone else: another user can
// neither connect (and read the golden with clonefs's credentials) nor look inside.
TEST_F(HttpMount, NoOtherUserCanReachNbdkitsSocket) {
  write_file(golden(), random_bytes(4 * kMiB, 286));
  ASSERT_EQ(create_from(server_->url("golden.img")).exit_code, 0);
  mount("--no-hydration");
  const std::string prefix = "clonefs-http-" + std::to_string(mounted_->daemon_pid()) + "-";
  std::string directory;
  for (const auto& e : std::filesystem::directory_iterator("/run")) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) directory = e.path().string();
  }
  ASSERT_FALSE(directory.empty()) << "no private directory for " << prefix;
  struct stat st {};
  ASSERT_EQ(::lstat(directory.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  const std::string connect =
      "python3 -c \"import socket; socket.socket(socket.AF_UNIX).connect('" + directory +
      "/nbd.sock')\"";
  CommandResult as_owner = run(connect);
  EXPECT_EQ(as_owner.exit_code, 0) << as_owner.output;  // the check below can fail
  CommandResult as_nobody =
      run("setpriv --reuid=65534 --regid=65534 --clear-groups " + connect + " 2>&1");
  EXPECT_NE(as_nobody.exit_code, 0);
  EXPECT_NE(as_nobody.output.find("Permission denied"), std::string::npos) << as_nobody.output;
  CommandResult list =
      run("setpriv --reuid=65534 --regid=65534 --clear-groups ls " + shell_quote(directory));
  EXPECT_NE(list.exit_code, 0) << list.output;
  unmount();
}

// An nbdkit that dies on its own (a crash) is started again on the same socket by the process
// that owns it, and reads go on after a reconnection (with its identity check).
TEST_F(HttpMount, AnNbdkitThatDiesIsStartedAgainAndReadsGoOn) {
  const auto bytes = random_bytes(8 * kMiB, 285);
  write_file(golden(), bytes);
  ASSERT_EQ(create_from(server_->url("golden.img")).exit_code, 0);
  mount("--no-hydration");
  auto before = clonefs_nbdkits();
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(::kill(before[0].first, SIGKILL), 0);
  CommandResult read =
      run("dd status=none bs=1M skip=3 count=1 iflag=direct if=" + shell_quote(image()) +
          " of=" + shell_quote(dir_.file("after")));
  ASSERT_EQ(read.exit_code, 0) << read.output;
  auto after = read_file(dir_.file("after"));
  ASSERT_EQ(after.size(), kMiB);
  EXPECT_TRUE(std::equal(after.begin(), after.end(), bytes.begin() + 3 * kMiB));
  auto now = clonefs_nbdkits();
  ASSERT_EQ(now.size(), 1u);
  EXPECT_NE(now[0].first, before[0].first);
  EXPECT_EQ(now[0].second, before[0].second) << "not the same serving process's";
  CloneStatus s = status_json(image());
  ASSERT_TRUE(s.source_connection.has_value());
  EXPECT_GE(s.source_connection->reconnects, 1u);
  unmount();
}

// The largest body nginx sent for one request ($body_bytes_sent, the access log's last field but
// one).
uint64_t largest_body(const std::string& access_log) {
  uint64_t largest = 0;
  std::istringstream lines(access_log);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::vector<std::string> words;
    for (std::string w; fields >> w;) words.push_back(w);
    if (words.size() >= 2) largest = std::max<uint64_t>(largest, std::stoull(words.end()[-2]));
  }
  return largest;
}

// Every request over HTTP is a round trip the server answers one at a time (per connection, and
// per server behind the shared cache): hydration's 4 MiB copies go as requests of megabytes, not
// cut into 256 KiB pieces as for other NBD servers (io/http_source.h).
TEST_F(HttpMount, HydrationFetchesMegabytesPerRequestNotRoundTripsOf256KiB) {
  const std::vector<std::byte> bytes = random_bytes(16 * kMiB, 33);
  write_file(golden(), bytes);
  ASSERT_EQ(create_from(server_->url("golden.img"), "--region-size 16K").exit_code, 0);
  // Its own server: behind the shared one's cache the identity samples, cached at create, cut a
  // golden this small into runs of less than 1 MiB.
  mount("--batch 256 --threshold 512");
  hydrate_wait();
  unmount();
  EXPECT_EQ(read_file(dest()), bytes);
  EXPECT_GE(largest_body(server_->access_log()), 4 * kMiB) << server_->access_log();
}

TEST_F(HttpMount, UnreadableUrlAtCreateGivesOneErrorAndCreatesNothing) {
  const size_t directories_before = private_directories();
  struct Case {
    std::string url, reason;
  };
  const std::vector<Case> cases = {
      {server_->url("missing.img") + "?X-Amz-Signature=n0tSHOWNsig", "404"},
      {"http://127.0.0.1:1/golden.img", "Couldn't connect"}};
  for (const Case& c : cases) {
    CommandResult created = create_from(c.url);
    EXPECT_NE(created.exit_code, 0) << created.output;
    EXPECT_NE(created.output.find(c.reason), std::string::npos) << created.output;
    EXPECT_EQ(std::count(created.output.begin(), created.output.end(), '\n'), 1) << created.output;
    EXPECT_EQ(created.output.find("n0tSHOWNsig"), std::string::npos) << created.output;
    EXPECT_FALSE(std::filesystem::exists(dest()));
    EXPECT_FALSE(std::filesystem::exists(meta()));
  }
  EXPECT_EQ(private_directories(), directories_before);
}

}  // namespace
}  // namespace clonefs::testing
