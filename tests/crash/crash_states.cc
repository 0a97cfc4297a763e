#include "crash/crash_states.h"

#include <algorithm>
#include <cstring>

#include "crash/image_model.h"

namespace clonefs::crash {

uint64_t fingerprint(const FileSet& files) {
  uint64_t h = 0x9e3779b97f4a7c15ULL;
  auto mix = [&h](uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdULL;
  };
  for (const FileImage& f : files) {
    mix(f.exists ? f.bytes.size() + 1 : 0);
    size_t i = 0;
    for (; i + 8 <= f.bytes.size(); i += 8) {
      uint64_t word;
      std::memcpy(&word, f.bytes.data() + i, 8);
      mix(word);
    }
    for (; i < f.bytes.size(); ++i) mix(std::to_integer<uint64_t>(f.bytes[i]));
  }
  return h;
}

DiskModel::DiskModel(FileSet durable) {
  for (size_t i = 0; i < kTracedFiles; ++i) {
    files_[i].durable = durable[i];
    files_[i].current = std::move(durable[i]);
  }
}

void DiskModel::add_pieces(FileModel& f, uint64_t offset, uint64_t length) {
  const uint64_t end = std::min<uint64_t>(offset + length, f.current.bytes.size());
  for (uint64_t s = offset / kSectorSize * kSectorSize; s < end; s += kSectorSize) {
    uint64_t piece_end = std::min<uint64_t>(s + kSectorSize, f.current.bytes.size());
    f.pending.push_back(
        {PendingKind::kPiece, f.incarnation, s,
         std::vector<std::byte>(f.current.bytes.begin() + static_cast<ptrdiff_t>(s),
                                f.current.bytes.begin() + static_cast<ptrdiff_t>(piece_end)),
         std::max(offset, s) - s, std::min(end, piece_end) - s});
    ++f.pieces;
  }
}

void DiskModel::sync(FileModel& f) {
  f.durable = f.current;
  f.durable_incarnation = f.incarnation;
  f.pending.clear();
  f.pieces = 0;
  f.metadata_ops = 0;
}

void DiskModel::apply(const Event& event) {
  FileModel& f = files_[static_cast<size_t>(event.file)];
  switch (event.kind) {
    case EventKind::kWrite:
      f.current.exists = true;
      if (f.current.bytes.size() < event.offset + event.bytes.size())
        f.current.bytes.resize(event.offset + event.bytes.size());
      std::copy(event.bytes.begin(), event.bytes.end(),
                f.current.bytes.begin() + static_cast<ptrdiff_t>(event.offset));
      add_pieces(f, event.offset, event.bytes.size());
      return;
    case EventKind::kPunch: {
      uint64_t end = std::min<uint64_t>(event.offset + event.length, f.current.bytes.size());
      if (event.offset >= end) return;
      std::fill(f.current.bytes.begin() + static_cast<ptrdiff_t>(event.offset),
                f.current.bytes.begin() + static_cast<ptrdiff_t>(end), std::byte{0});
      add_pieces(f, event.offset, end - event.offset);
      return;
    }
    case EventKind::kTruncate:
      f.current.bytes.resize(event.offset);
      f.pending.push_back({PendingKind::kTruncate, f.incarnation, event.offset, {}});
      ++f.metadata_ops;
      return;
    case EventKind::kCreate:
      if (f.current.exists) return;
      f.current = {true, {}};
      f.incarnation = ++f.lives;
      f.pending.push_back({PendingKind::kCreate, f.incarnation, 0, {}});
      ++f.metadata_ops;
      return;
    case EventKind::kDelete:
      f.current = {};
      f.incarnation = ++f.lives;
      f.pending.push_back({PendingKind::kDelete, f.incarnation, 0, {}});
      ++f.metadata_ops;
      if (event.durable) sync(f);
      return;
    case EventKind::kSync:
      sync(f);
      return;
    case EventKind::kOpBegin:
    case EventKind::kAck:
      return;
  }
}

FileImage DiskModel::materialize(const FileModel& f, const Choice& choice, std::mt19937_64* junk) {
  FileImage state = f.durable;
  uint64_t incarnation = f.durable_incarnation;
  size_t piece = 0, metadata = 0;
  for (const Pending& op : f.pending) {
    if (op.kind != PendingKind::kPiece) {
      if (metadata++ >= choice.metadata_prefix) continue;
      if (op.kind == PendingKind::kTruncate) {
        if (state.exists) state.bytes.resize(op.offset);
        continue;
      }
      state = {op.kind == PendingKind::kCreate, {}};
      incarnation = op.incarnation;
      continue;
    }
    const size_t index = piece++;
    // A piece of a file whose creation did not persist, or that was deleted, lands nowhere.
    if (!choice.keep[index] || !state.exists || op.incarnation != incarnation) continue;
    if (state.bytes.size() < op.offset + op.bytes.size())
      state.bytes.resize(op.offset + op.bytes.size());
    auto at = state.bytes.begin() + static_cast<ptrdiff_t>(op.offset);
    std::copy(op.bytes.begin(), op.bytes.end(), at);
    if (junk != nullptr && choice.garble[index]) {
      for (uint64_t i = op.written_begin; i < op.written_end; ++i) {
        at[static_cast<ptrdiff_t>(i)] = static_cast<std::byte>((*junk)());
      }
    }
  }
  return state;
}

CrashState DiskModel::build(const std::array<Choice, kTracedFiles>& choices, std::mt19937_64* junk,
                            std::string how) const {
  CrashState state;
  state.how = std::move(how);
  for (size_t i = 0; i < kTracedFiles; ++i)
    state.files[i] = materialize(files_[i], choices[i], junk);
  return state;
}

CrashState DiskModel::drop_pending() const {
  std::array<Choice, kTracedFiles> choices;
  for (size_t i = 0; i < kTracedFiles; ++i)
    choices[i] = {0, std::vector<bool>(files_[i].pieces, false), {}};
  return build(choices, nullptr, "drop pending");
}

CrashState DiskModel::keep_pending() const {
  std::array<Choice, kTracedFiles> choices;
  for (size_t i = 0; i < kTracedFiles; ++i) {
    choices[i] = {files_[i].metadata_ops, std::vector<bool>(files_[i].pieces, true), {}};
  }
  return build(choices, nullptr, "keep pending");
}

CrashState DiskModel::random_pending(std::mt19937_64& rng, bool garble,
                                     const std::string& how) const {
  static constexpr uint64_t kKeepPercent[] = {20, 50, 80};
  const uint64_t keep_percent = kKeepPercent[rng() % 3];
  std::array<Choice, kTracedFiles> choices;
  for (size_t i = 0; i < kTracedFiles; ++i) {
    const FileModel& f = files_[i];
    Choice& c = choices[i];
    c.metadata_prefix = rng() % (f.metadata_ops + 1);
    const bool tearable = garble && i != static_cast<size_t>(TracedFile::kDestination);
    for (size_t p = 0; p < f.pieces; ++p) {
      c.keep.push_back(rng() % 100 < keep_percent);
      c.garble.push_back(tearable && rng() % 100 < 15);
    }
  }
  return build(choices, &rng, how);
}

uint64_t DiskModel::enumeration_size(uint64_t limit) const {
  uint64_t total = 1;
  for (const FileModel& f : files_) {
    if (f.pieces >= 32) return 0;
    total *= (f.metadata_ops + 1) << f.pieces;
    if (total > limit) return 0;
  }
  return total;
}

CrashState DiskModel::enumerated(uint64_t index) const {
  const uint64_t total = enumeration_size(UINT64_MAX);
  std::array<Choice, kTracedFiles> choices;
  uint64_t rest = index;
  for (size_t i = 0; i < kTracedFiles; ++i) {
    const FileModel& f = files_[i];
    choices[i].metadata_prefix = rest % (f.metadata_ops + 1);
    rest /= f.metadata_ops + 1;
    for (size_t p = 0; p < f.pieces; ++p, rest >>= 1) choices[i].keep.push_back(rest & 1);
  }
  return build(choices, nullptr,
               "exhaustive " + std::to_string(index + 1) + "/" + std::to_string(total));
}

size_t DiskModel::pending_pieces() const {
  size_t n = 0;
  for (const FileModel& f : files_) n += f.pieces;
  return n;
}

}  // namespace clonefs::crash
