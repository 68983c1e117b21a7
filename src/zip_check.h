// Structural checks of a model file's ZIP archive before LibTorch's readers see it. Both formats
// are ZIP archives read by miniz (PyTorchStreamReader, AOTIModelPackageLoader), which trusts
// offsets and sizes more than a file from an asset pack deserves; a file that fails here is
// refused with LIMN_ERR_INVALID_MODEL and a message naming what is wrong. No LibTorch here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace limn::core {

struct ZipEntry {
    std::string name;
    uint64_t header_offset = 0;    // of its local file header
    uint64_t data_offset = 0;      // of its (compressed) bytes
    uint64_t compressed_size = 0;
    uint64_t size = 0;             // uncompressed
    uint16_t method = 0;           // 0 stored, 8 deflated
};

// Reads up to `n` bytes at `offset` into `buf`; returns how many it read.
using ZipReader = std::function<size_t(uint64_t offset, void* buf, size_t n)>;

// Checks the archive of `size` bytes that `read` reads: one end-of-central-directory record (and
// its ZIP64 twin, which must agree) ending the file, a central directory inside the file, every
// entry's local header where the directory says with the same name and method, stored or deflated
// data inside the file, no two entries overlapping, no name twice. Returns the entries in
// directory order. Throws Failure(LIMN_ERR_INVALID_MODEL) whose message starts with
// "model 'ORIGIN' is not a TorchScript archive limn can read nor a compiled .pt2 package".
std::vector<ZipEntry> check_zip(uint64_t size, const ZipReader& read, const std::string& origin);
std::vector<ZipEntry> check_zip_memory(const void* data, size_t size, const std::string& origin);

// The records LibTorch's readers need, all in the folder the first entry names (PyTorchStreamReader
// takes that folder as the archive's): a version record. A compiled package besides: entries in one
// folder, no name that leaves the extraction folder (AOTIModelPackageLoader writes every
// "data/aotinductor/model" entry under a temporary folder by its name), and exactly one compiled
// library there, so that LibTorch never compiles the package's C++ source at load time (which
// runs a compiler command taken from the package). Throw as check_zip does.
void check_archive_records(const std::vector<ZipEntry>& entries, const std::string& origin);
void check_package_records(const std::vector<ZipEntry>& entries, const std::string& origin);

// Walks the opcodes of a pickle record (TorchScript's data.pkl, constants.pkl, *.debug_pkl) and
// refuses one whose stated string, bytes or integer length runs past the record, or whose memo
// index exceeds the record's size: LibTorch's unpickler allocates (and fills) what a length says
// before reading it, so a 4 KB file could make it take 4 GB. Stops at STOP or an opcode it does
// not know (LibTorch then judges the rest). Throws Failure(LIMN_ERR_INVALID_MODEL).
void check_pickle(const uint8_t* data, size_t size, const std::string& record, const std::string& origin);

}  // namespace limn::core
