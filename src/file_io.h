// Files written whole or not at all: the one atomic-write helper of the library (images, packages
// handed over in memory) and of the CLI (which compiles this file: it has no LibTorch). Failures
// throw Failure(LIMN_ERR_IO) with `what` and the system's reason.
#pragma once

#include <cstddef>
#include <string>

namespace limn::core {

// A new private file, removed when it goes out of scope unless commit() renamed it into place.
// Its name is short whatever the target's (".limn-tmp-" and 8 characters), so a target whose name
// is as long as the file system allows can still be written.
class TempFile {
public:
    // In `folder` (which must exist). `mode` as for open(2): 0666 gives what the umask gives any
    // new file; 0600 keeps it private.
    TempFile(const std::string& folder, const std::string& what, unsigned mode = 0666,
             const std::string& extension = "");
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile();

    void write(const void* data, size_t size);
    // Flushes and closes the file, then renames it over `target` and makes that durable.
    void commit(const std::string& target);
    // Flushes and closes the file, which stays until this object goes.
    void close();
    const std::string& path() const { return name_; }

private:
    std::string what_;
    std::string name_;
    int fd_ = -1;
};

// The file a write to `path` should replace: `path` itself, or where a symbolic link at `path`
// points (followed as cp follows it), so that the link stays and its target gets the new bytes.
// Failure(LIMN_ERR_IO) with `what` for a loop of links.
std::string write_target(const std::string& path, const std::string& what);

// Writes `size` bytes to `path` through a temporary file in the same folder, renamed into place:
// readers see the old file or the new one, never a part. A symbolic link is written through.
void write_file_atomic(const std::string& path, const void* data, size_t size, const std::string& what);

}  // namespace limn::core
