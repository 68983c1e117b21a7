// Opening a model file: checks that it can be read, then tells a compiled .pt2 package from a
// TorchScript archive by its content (both are zip archives).
#include <c10/core/ScalarType.h>
#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "error.h"
#include "network.h"
#include "zip_check.h"

namespace limn::core {
namespace {

// Lets the archive readers see caller memory without a copy; used only during load.
class MemoryReader : public caffe2::serialize::ReadAdapterInterface {
public:
    MemoryReader(const void* data, size_t size) : data_(static_cast<const char*>(data)), size_(size) {}
    size_t size() const override { return size_; }
    size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
        if (pos >= size_) return 0;
        const size_t count = std::min<size_t>(n, size_ - static_cast<size_t>(pos));
        std::memcpy(buf, data_ + pos, count);
        return count;
    }

private:
    const char* data_;
    size_t size_;
};

bool starts_like_zip(const char* head, size_t n) {
    return n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4;
}

// Both formats are ZIP archives; anything else would reach LibTorch's other loaders (flatbuffers).
void require_zip(const char* head, size_t n, const std::string& origin) {
    if (!starts_like_zip(head, n)) {
        fail(LIMN_ERR_INVALID_MODEL, "model '" + origin + "' is not a TorchScript archive limn can read nor a "
                                                          "compiled .pt2 package (not a ZIP archive)");
    }
}

// check_zip on a file, reading only its directory and headers.
std::vector<ZipEntry> check_zip_file(const std::string& path, uint64_t size) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(LIMN_ERR_IO, "cannot open model file '" + path + "': " + std::strerror(errno));
    const ZipReader read = [&](uint64_t offset, void* buf, size_t n) -> size_t {
        in.clear();
        in.seekg(static_cast<std::streamoff>(offset));
        in.read(static_cast<char*>(buf), static_cast<std::streamsize>(n));
        return static_cast<size_t>(in.gcount());
    };
    return check_zip(size, read, path);
}

// A reader for the archive, or nullptr when it is not one PyTorch can open (the TorchScript
// loader then reports what is wrong).
template <typename Source>
std::unique_ptr<caffe2::serialize::PyTorchStreamReader> open_archive(Source&& source) {
    try {
        return std::make_unique<caffe2::serialize::PyTorchStreamReader>(std::forward<Source>(source));
    } catch (const std::exception&) {
        return nullptr;
    }
}

// The pickles torch::jit::load unpickles, checked first (check_pickle). A record LibTorch cannot
// extract is left for its loader to report.
void check_pickles(caffe2::serialize::PyTorchStreamReader& reader, const std::string& origin) {
    for (const std::string& name : reader.getAllRecords()) {
        const size_t n = name.size();
        if (n < 4 || (name.compare(n - 4, 4, ".pkl") != 0 && name.compare(n - 4, 4, "_pkl") != 0)) continue;
        at::DataPtr data;
        size_t size = 0;
        try {
            std::tie(data, size) = reader.getRecord(name);
        } catch (const std::exception&) {
            continue;
        }
        check_pickle(static_cast<const uint8_t*>(data.get()), size, name, origin);
    }
}

}  // namespace

c10::ScalarType dtype_of(limn_precision precision) {
    switch (precision) {
        case LIMN_PRECISION_FP16: return c10::kHalf;
        case LIMN_PRECISION_BF16: return c10::kBFloat16;
        default: return c10::kFloat;
    }
}

std::unique_ptr<Network> load_network_file(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        fail(LIMN_ERR_IO, "cannot open model file '" + path + "': " + std::strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) fail(LIMN_ERR_IO, "cannot open model file '" + path + "': it is a directory");
    char head[4] = {};
    size_t got = 0;
    {
        std::ifstream probe(path, std::ios::binary);
        if (!probe) fail(LIMN_ERR_IO, "cannot open model file '" + path + "': " + std::strerror(errno));
        probe.read(head, sizeof head);
        got = static_cast<size_t>(probe.gcount());
    }
    if (st.st_size == 0) fail(LIMN_ERR_INVALID_MODEL, "model '" + path + "' is an empty file");
    require_zip(head, got, path);
    const std::vector<ZipEntry> entries = check_zip_file(path, static_cast<uint64_t>(st.st_size));
    const auto reader = open_archive(path);
    if (reader && is_pt2_archive(*reader)) {
        check_package_records(entries, path);
        return load_pt2(*reader, path, path);
    }
    check_archive_records(entries, path);
    if (reader) check_pickles(*reader, path);
    return load_torchscript(path);
}

std::unique_ptr<Network> load_network_memory(const void* data, size_t size, const std::string& origin) {
    if (size == 0) fail(LIMN_ERR_INVALID_MODEL, "model '" + origin + "' is empty (0 bytes)");
    require_zip(static_cast<const char*>(data), size, origin);
    const std::vector<ZipEntry> entries = check_zip_memory(data, size, origin);
    auto bytes = std::make_shared<MemoryReader>(data, size);
    const auto reader = open_archive(bytes);
    if (reader && is_pt2_archive(*reader)) {
        check_package_records(entries, origin);
        return load_pt2_memory(*reader, data, size, origin);
    }
    check_archive_records(entries, origin);
    if (reader) check_pickles(*reader, origin);
    return load_torchscript(bytes, origin);
}

}  // namespace limn::core
