// mount.clonefs (operate/mount.clonefs.in), the helper mount(8) runs as root with the options of
// an fstab line, run for real on /bin/sh with `clonefs` replaced by a program that prints its
// argv: whatever METADATA, IMAGE and options are, it either refuses (exit 1, a message) or runs
// `clonefs mount --metadata METADATA IMAGE` with only the flags it translates, each value one
// argument, and -o fsname=<METADATA escaped> plus FUSE's options last. A shell quirk that let an
// option become an extra flag or argument, or changed METADATA or IMAGE, would abort here.
//
// Input: a first byte of flags (bit 0: -s, sloppy), then METADATA '\n' IMAGE '\n' OPTIONS.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

// The temporary directory, removed when libFuzzer exits (leaked, so it outlives every static).
const std::string* g_temporary = nullptr;
void remove_at_exit(const std::string& dir) {
  g_temporary = new std::string(dir);
  std::atexit([] { std::filesystem::remove_all(*g_temporary); });
}

struct Helper {
  std::string script, dumper;
};

// The helper with @CLONEFS_BINARY@ replaced by a script printing each argument and a NUL.
const Helper& helper() {
  static const Helper h = [] {
    std::string dir = "/tmp/clonefs-fuzz-helper-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) std::abort();
    Helper out{dir + "/mount.clonefs", dir + "/clonefs"};
    std::ofstream(out.dumper) << "#!/bin/sh\nprintf '%s\\0' \"$@\"\n";
    std::ifstream in(std::string(CLONEFS_SOURCE_DIR) + "/operate/mount.clonefs.in");
    std::stringstream text;
    text << in.rdbuf();
    std::string script = text.str();
    size_t at = script.find("@CLONEFS_BINARY@");
    if (at == std::string::npos) std::abort();
    script.replace(at, 16, out.dumper);
    std::ofstream(out.script) << script;
    if (::chmod(out.dumper.c_str(), 0755) != 0 || ::chmod(out.script.c_str(), 0755) != 0)
      std::abort();
    remove_at_exit(dir);
    return out;
  }();
  return h;
}

struct Ran {
  int exit_code = -1;
  std::string out, err;
};

std::string drain(int fd) {
  std::string text;
  char buf[4096];
  // libFuzzer's timer signal interrupts reads: EINTR is not the end (closing the pipe early
  // killed the helper with SIGPIPE, the first "crash" this target found).
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

Ran run(const std::vector<std::string>& args) {
  int out[2], err[2];
  if (::pipe(out) != 0 || ::pipe(err) != 0) std::abort();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  posix_spawn_file_actions_addclose(&actions, err[0]);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (::posix_spawn(&pid, "/bin/sh", &actions, nullptr, argv.data(), environ) != 0) std::abort();
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(err[1]);
  Ran ran;
  ran.err = drain(err[0]);  // small: the helper says at most a line or two
  ran.out = drain(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return ran;
}

std::vector<std::string> split_nul(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nul; (nul = text.find('\0', start)) != std::string::npos; start = nul + 1)
    out.push_back(text.substr(start, nul - start));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 512) return 0;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  for (char& c : text)
    if (c == '\0') c = 'x';  // an argv holds no NUL
  size_t nl1 = text.find('\n');
  size_t nl2 = nl1 == std::string::npos ? std::string::npos : text.find('\n', nl1 + 1);
  if (nl2 == std::string::npos) return 0;
  const std::string metadata = text.substr(0, nl1), image = text.substr(nl1 + 1, nl2 - nl1 - 1);
  const std::string options = text.substr(nl2 + 1);
  std::vector<std::string> args = {"sh", helper().script, metadata, image, "-o", options};
  if (data[0] & 1) args.push_back("-s");
  Ran ran = run(args);
  if (ran.exit_code == 1) {
    if (ran.err.empty() || !ran.out.empty()) std::abort();
    return 0;
  }
  if (ran.exit_code != 0) {
    std::fprintf(stderr, "mount.clonefs exited %d: %s\n", ran.exit_code, ran.err.c_str());
    std::abort();
  }
  // Leading-dash or empty names are mount(8)'s to refuse; the helper must still pass them whole.
  std::vector<std::string> argv = split_nul(ran.out);
  if (argv.size() < 6 || argv[0] != "mount" || argv[1] != "--metadata" || argv[2] != metadata ||
      argv[3] != image || argv[argv.size() - 2] != "-o" || argv.back().rfind("fsname=", 0) != 0)
    std::abort();
  static const std::set<std::string> kBare = {"--no-hydration", "--hydration",
                                              "--copy-on-read", "--no-copy-on-read",
                                              "--no-priority",  "--writeback-cache"};
  static const std::set<std::string> kValued = {
      "--rate",          "--threshold",      "--batch",
      "--log-level",     "--profile",        "--record-profile",
      "--copy-method",   "--source-timeout", "--source-connections",
      "--restart-limit", "--readahead",      "--log-file",
      "--metrics-file"};
  size_t flags = 0;
  for (size_t i = 4; i + 2 < argv.size(); ++i, ++flags) {
    if (kBare.count(argv[i]) != 0) continue;
    if (kValued.count(argv[i]) == 0 || i + 1 >= argv.size() - 2) std::abort();
    ++i;  // its value, one argument whatever it holds
  }
  // The mount table's source is METADATA, its commas and backslashes escaped for FUSE.
  std::string fsname = "fsname=";
  for (char c : metadata) fsname += c == '\\' ? "\\\\" : c == ',' ? "\\," : std::string(1, c);
  const std::string& fuse = argv.back();
  if (fuse.rfind(fsname, 0) != 0 || (fuse.size() > fsname.size() && fuse[fsname.size()] != ','))
    std::abort();
  // No more flags than options: none appears from nowhere.
  size_t option_count = 1;
  for (char c : options) option_count += c == ',' ? 1 : 0;
  if (flags > option_count) std::abort();
  return 0;
}
