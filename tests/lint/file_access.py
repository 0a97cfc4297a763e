#!/usr/bin/env python3
"""Fails when code in src/ or cli/ opens, creates, renames, removes or chmods a file by path
anywhere but io/safe_files.cc, the one module that does it safely among files other users control
(docs/SEMANTICS.md, "Access"). A call that must stay (a read of the source, a file under /proc or
/sys) is listed in file_access_allowlist.txt with its reason; an entry that matches nothing fails
too, so the list never outlives the code.

Usage: file_access.py SOURCE_DIR
"""
import pathlib
import re
import sys

SAFE_MODULE = "src/io/safe_files.cc"

# Calls taking a path (the descriptor-based fchmod, fsetxattr, ftruncate are safe by nature).
CALLS = ("open", "openat", "openat2", "creat", "fopen", "freopen", "rename", "renameat",
         "renameat2", "unlink", "unlinkat", "remove", "chmod", "fchmodat", "chown", "lchown",
         "fchownat", "setxattr", "lsetxattr", "truncate", "mkstemp", "mkostemp", "mkdir",
         "mkfifo", "mknod", "link", "linkat", "symlink", "symlinkat", "sqlite3_open",
         "sqlite3_open_v2", "basic_logger_mt", "basic_logger_st")
PATTERNS = [
    # A free function (::open( or open(), not a method (x.open(, Clone::open().
    re.compile(r"(?:^|[^A-Za-z0-9_:.>])(?:::)?(" + "|".join(CALLS) + r")\s*\("),
    re.compile(r"\bstd::(ofstream|fstream)\b"),
    re.compile(r"\b(?:std::)?filesystem::(remove|remove_all|rename|permissions|copy|copy_file|"
               r"resize_file|create_directory|create_directories|create_symlink)\s*\("),
    re.compile(r"\b(basic_file_sink|rotating_file_sink|daily_file_sink)"),
]


def hits(root):
    for base in ("src", "cli"):
        for path in sorted((root / base).rglob("*.cc")):
            rel = path.relative_to(root).as_posix()
            if rel == SAFE_MODULE:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("//", 1)[0]
                if any(p.search(code) for p in PATTERNS):
                    yield rel, number, line.strip()


def allowlist(path):
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("@@")]
        if len(parts) != 3 or not all(parts):
            sys.exit(f"{path}:{number}: expected FILE @@ TEXT OF THE LINE @@ REASON")
        entries.append(parts)
    return entries


def main():
    root = pathlib.Path(sys.argv[1])
    entries = allowlist(pathlib.Path(__file__).with_name("file_access_allowlist.txt"))
    used = set()
    bad = []
    for rel, number, line in hits(root):
        match = [i for i, (f, text, _) in enumerate(entries) if f == rel and text in line]
        if match:
            used.update(match)
        else:
            bad.append(f"{rel}:{number}: {line}")
    stale = [f"{f} | {text}" for i, (f, text, _) in enumerate(entries) if i not in used]
    if bad:
        print("Files opened, created, renamed, removed or chmodded by path outside "
              f"{SAFE_MODULE} (use io/safe_files.h, or list a read with its reason in "
              "tests/lint/file_access_allowlist.txt):")
        print("\n".join("  " + b for b in bad))
    if stale:
        print("Allowlist entries that match nothing any more (remove them):")
        print("\n".join("  " + s for s in stale))
    return 1 if bad or stale else 0


if __name__ == "__main__":
    sys.exit(main())
