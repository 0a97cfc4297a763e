#include "fuse/passthrough.h"

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fuse/passthrough_abi.h"

namespace clonefs {
namespace {

constexpr size_t kLedgerBytes = 4096;
static_assert(sizeof(PassthroughLedger) <= kLedgerBytes);
static_assert(std::atomic<int32_t>::is_always_lock_free &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "the ledger is shared between processes");

// The backing id reply_open() chose for the open reply this thread is writing (libfuse writes a
// reply on the thread that calls fuse_reply_open), 0 for none.
thread_local int32_t open_reply_backing_id = 0;

// Whose file a backing file may be: one stacked file system layer under IMAGE at most would let
// IMAGE itself sit under an overlay; 1 keeps that, and refuses DEST on an overlay (ELOOP).
constexpr uint32_t kMaxStackDepth = 1;

void copy_reason(char (&to)[200], const std::string& why) {
  std::strncpy(to, why.c_str(), sizeof to - 1);
  to[sizeof to - 1] = '\0';
}

}  // namespace

Passthrough::Passthrough(const PassthroughOptions& options) : options_(options), ledger_(&own_) {
  if (options_.ledger_fd < 0) return;
  struct stat st {};
  if (::fstat(options_.ledger_fd, &st) == 0 && st.st_size < static_cast<off_t>(kLedgerBytes) &&
      ::ftruncate(options_.ledger_fd, kLedgerBytes) != 0) {
    return;  // the process's own ledger: no worse than unsupervised
  }
  void* p =
      ::mmap(nullptr, kLedgerBytes, PROT_READ | PROT_WRITE, MAP_SHARED, options_.ledger_fd, 0);
  // A new memfd reads as zeros: every count 0, no backing id, INIT not seen.
  if (p != MAP_FAILED) ledger_ = static_cast<PassthroughLedger*>(p);
}

Passthrough::~Passthrough() {
  if (ledger_ != &own_) ::munmap(ledger_, kLedgerBytes);
}

int Passthrough::attach(fuse_session* session, const fuse_custom_io& io) {
  fuse_fd_ = fuse_session_fd(session);
  if (!options_.wanted) return 0;  // libfuse's own I/O, as before passthrough existed
  return fuse_session_custom_io(session, &io, fuse_fd_);
}

ssize_t Passthrough::read(int fd, void* buf, size_t size) {
  ssize_t n = ::read(fd, buf, size);
  if (n > 0) requests_.fetch_add(1, std::memory_order_relaxed);
  if (n >= static_cast<ssize_t>(sizeof(fuse_in_header) + sizeof(fuse_init_in))) {
    fuse_in_header header;
    std::memcpy(&header, buf, sizeof header);
    if (header.opcode == FUSE_INIT) {
      fuse_init_in in;
      std::memcpy(&in, static_cast<const char*>(buf) + sizeof header, sizeof in);
      kernel_offers_ =
          (in.flags & fuse_abi::kInitExt) && (in.flags2 & fuse_abi::kPassthroughFlags2);
      init_unique_ = header.unique;
    }
  }
  return n;
}

ssize_t Passthrough::writev(int fd, iovec* iov, int count) {
  if (count != 2 || iov[0].iov_len != sizeof(fuse_out_header)) return ::writev(fd, iov, count);
  fuse_out_header header;
  std::memcpy(&header, iov[0].iov_base, sizeof header);
  if (header.error != 0) return ::writev(fd, iov, count);
  if (open_reply_backing_id != 0 && iov[1].iov_len == sizeof(fuse_abi::OpenOut)) {
    fuse_abi::OpenOut out;
    std::memcpy(&out, iov[1].iov_base, sizeof out);
    out.open_flags |= fuse_abi::kOpenPassthrough;
    out.backing_id = open_reply_backing_id;
    iovec patched[2] = {iov[0], {&out, sizeof out}};
    return ::writev(fd, patched, 2);
  }
  if (header.unique == init_unique_.load() && iov[1].iov_len == sizeof(fuse_abi::InitOut)) {
    fuse_abi::InitOut out;
    std::memcpy(&out, iov[1].iov_base, sizeof out);
    std::string off;
    if (!options_.wanted)
      off = "turned off (--no-passthrough)";
    else if (!kernel_offers_)
      off = "the kernel does not offer FUSE passthrough (Linux 6.9+, CONFIG_FUSE_PASSTHROUGH)";
    else if (out.flags & FUSE_WRITEBACK_CACHE)
      off = "the kernel does not combine it with --writeback-cache";
    else if (!(out.flags & fuse_abi::kInitExt))
      off = "the INIT reply has no extended flags";
    if (off.empty()) {
      out.flags2 |= fuse_abi::kPassthroughFlags2;
      out.max_stack_depth = kMaxStackDepth;
      ledger_->negotiated = 1;
    } else {
      copy_reason(ledger_->init_reason, off);
      ledger_->negotiated = 2;
      if (options_.wanted && options_.log) options_.log->warn("no kernel passthrough: {}", off);
    }
    iovec patched[2] = {iov[0], {&out, sizeof out}};
    return ::writev(fd, patched, 2);
  }
  return ::writev(fd, iov, count);
}

void Passthrough::unavailable(const std::string& why) {
  if (!unavailable_.empty()) return;
  unavailable_ = why;
  if (options_.log) options_.log->warn("no kernel passthrough: {}; opens use FUSE", why);
}

bool Passthrough::register_destination() {
  if (ledger_->backing_id.load() > 0) return true;  // by this process or a predecessor
  struct stat st {};
  if (options_.destination_fd < 0 || ::fstat(options_.destination_fd, &st) != 0) {
    unavailable("the destination has no descriptor to pass to the kernel");
    return false;
  }
  // The kernel reads DEST to its end: a longer one (a block device, a file grown since) would show
  // bytes past IMAGE's end.
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != options_.image_size) {
    unavailable("the destination is not a regular file of exactly the image's size");
    return false;
  }
  fuse_abi::BackingMap map{};
  map.fd = options_.destination_fd;
  int id = ::ioctl(fuse_fd_, fuse_abi::kBackingOpen, &map);
  if (id <= 0) {
    const int e = id < 0 ? errno : EPROTO;
    std::string why = std::string("registering the destination failed: ") + std::strerror(e);
    if (e == EPERM) why += " (it needs CAP_SYS_ADMIN)";
    if (e == ELOOP) why += " (the destination is on a stacked file system, e.g. overlayfs)";
    unavailable(why);
    return false;
  }
  ledger_->backing_id = id;
  if (options_.log) options_.log->info("kernel passthrough: destination registered (id {})", id);
  return true;
}

Passthrough::Kind Passthrough::choose(const std::function<bool()>& hydrated, int32_t* backing_id) {
  std::lock_guard lock(mu_);
  *backing_id = 0;
  PassthroughLedger& l = *ledger_;
  auto fuse = [&] {
    l.fuse_opens.fetch_add(1);
    return Kind::kFuse;
  };
  // An inode open through the page cache refuses a passthrough open, and one with a passthrough
  // open refuses any other: with both counted (only a kill at the wrong moment leaves a stale
  // count), the FUSE path is the choice that keeps the data right.
  if (l.fuse_opens.load() > 0 || !options_.wanted || l.negotiated.load() != 1 || fuse_fd_ < 0)
    return fuse();
  if (l.passthrough_opens.load() == 0) {
    if (!unavailable_.empty() || !hydrated() || !register_destination()) return fuse();
  }
  *backing_id = l.backing_id.load();
  if (*backing_id <= 0) return fuse();
  l.passthrough_opens.fetch_add(1);
  return Kind::kPassthrough;
}

void Passthrough::reply_open(fuse_req_t req, fuse_file_info* fi,
                             const std::function<bool()>& hydrated) {
  int32_t backing_id = 0;
  const Kind kind = choose(hydrated, &backing_id);
  fi->fh = static_cast<uint64_t>(kind);
  // The kernel refuses FOPEN_KEEP_CACHE beside FOPEN_PASSTHROUGH: a passthrough open has no page
  // cache of IMAGE's to keep (DEST's own is used). Only this daemon changes the image, so a
  // FUSE-path open keeps the cached pages.
  fi->keep_cache = kind == Kind::kFuse ? 1 : 0;
  open_reply_backing_id = backing_id;
  const int sent = fuse_reply_open(req, fi);
  open_reply_backing_id = 0;
  // Not delivered (the open was interrupted): the kernel made no file, and sends no release.
  if (sent != 0) released(fi->fh);
}

void Passthrough::released(uint64_t fh) {
  std::lock_guard lock(mu_);
  auto drop = [](std::atomic<uint32_t>& count) {
    uint32_t n = count.load();
    while (n > 0 && !count.compare_exchange_weak(n, n - 1)) {
    }
  };
  if (fh == static_cast<uint64_t>(Kind::kFuse)) drop(ledger_->fuse_opens);
  if (fh == static_cast<uint64_t>(Kind::kPassthrough)) drop(ledger_->passthrough_opens);
}

PassthroughState Passthrough::state() const {
  std::lock_guard lock(mu_);
  PassthroughState s;
  s.passthrough_opens = ledger_->passthrough_opens.load();
  s.fuse_opens = ledger_->fuse_opens.load();
  s.requests = requests_.load(std::memory_order_relaxed);
  if (!options_.wanted) {
    s.state = "off";
    s.reason = "--no-passthrough";
  } else if (ledger_->negotiated.load() == 2) {
    s.state = "unavailable";
    s.reason = ledger_->init_reason;
  } else if (!unavailable_.empty()) {
    s.state = "unavailable";
    s.reason = unavailable_;
  } else if (ledger_->backing_id.load() > 0) {
    s.state = "active";
  } else {
    s.state = "waiting";
    // The state alone cannot say which condition holds; the held opens it can name.
    s.reason = s.fuse_opens == 0
                   ? "opens use passthrough once every region is valid"
                   : "opens use passthrough once every region is valid and the " +
                         std::to_string(s.fuse_opens) + " files opened through clonefs are closed";
  }
  return s;
}

}  // namespace clonefs
