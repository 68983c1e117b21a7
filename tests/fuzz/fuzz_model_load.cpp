// libFuzzer target: limn_model_load_from_memory over model files of every kind and format
// (TorchScript archives and compiled .pt2 packages, valid and broken), through the public C API
// of liblimn as an application calls it. Every input must load or fail with a status and a
// message; a model that loads must describe itself and run once on a small picture. Crashes,
// hangs and sanitizer reports are bugs, in limn or in LibTorch behind it (limn checks the ZIP
// archive before LibTorch reads it: src/zip_check.cpp).
//
// Compiled packages hold native code (a .so that LibTorch loads and runs): a mutated one is
// arbitrary code by design (limn.h: "Load only packages you trust"). Inputs whose archive holds a
// .so (or a weights .blob, which that code reads unchecked) that is not byte for byte one of the
// fixture packages' ($LIMN_TEST_FIXTURES/*.pt2) are skipped, so mutations of the archive's
// structure, names and metadata (extra/limn.json, the AOTInductor JSON) are fuzzed and the code is
// not. The rule uses limn's own ZIP checker to find the entries; an archive it refuses is passed
// on, for limn must refuse it too. A custom mutator keeps half the mutations inside the entries of
// well-formed archives, so that they get past that checker.
#include <dirent.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "error.h"
#include "limn/limn.h"
#include "zip_check.h"

namespace {

std::set<std::string>& trusted_code() {
    static std::set<std::string> contents;
    return contents;
}

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool is_native_code(const std::string& name) {
    return name.find(".so") != std::string::npos || name.find(".blob") != std::string::npos;
}

// The native-code entries of a ZIP archive, or false when one is not a trusted one.
bool code_is_trusted(const uint8_t* data, size_t size, bool collect) {
    std::vector<limn::core::ZipEntry> entries;
    try {
        entries = limn::core::check_zip_memory(data, size, "<fuzz>");
    } catch (const limn::core::Failure&) {
        return true;  // limn refuses it before LibTorch opens it
    }
    for (const limn::core::ZipEntry& e : entries) {
        if (!is_native_code(e.name)) continue;
        if (e.method != 0) return false;
        std::string bytes(reinterpret_cast<const char*>(data) + e.data_offset, e.compressed_size);
        if (collect) {
            trusted_code().insert(std::move(bytes));
        } else if (!trusted_code().count(bytes)) {
            return false;
        }
    }
    return true;
}

}  // namespace

// libFuzzer's own mutator (weak: the replay build has none, and never calls the custom mutator).
extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size) __attribute__((weak));

// Half the mutations change bytes inside one entry of a well-formed archive, in place and at the
// same size, so that loadable models reach LibTorch's readers with damaged records (pickles, code,
// extra/limn.json, the AOTInductor JSON); the others mutate anything, structure included.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
    std::minstd_rand rng(seed);
    if (rng() % 2 == 0) return LLVMFuzzerMutate(data, size, max_size);
    std::vector<limn::core::ZipEntry> entries;
    try {
        entries = limn::core::check_zip_memory(data, size, "<fuzz>");
    } catch (const limn::core::Failure&) {
        return LLVMFuzzerMutate(data, size, max_size);
    }
    std::vector<const limn::core::ZipEntry*> fair;  // native code would only be skipped
    for (const limn::core::ZipEntry& e : entries) {
        if (!is_native_code(e.name) && e.compressed_size > 0) fair.push_back(&e);
    }
    if (fair.empty()) return LLVMFuzzerMutate(data, size, max_size);
    const limn::core::ZipEntry& e = *fair[rng() % fair.size()];
    const size_t len = static_cast<size_t>(std::min<uint64_t>(e.compressed_size, 4096));
    const size_t start = static_cast<size_t>(e.data_offset) +
                         (e.compressed_size > len ? rng() % (e.compressed_size - len + 1) : 0);
    std::vector<uint8_t> window(data + start, data + start + len);
    const size_t n = LLVMFuzzerMutate(window.data(), len, len);
    std::memcpy(data + start, window.data(), n);  // a shorter result leaves the old tail
    return size;
}

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    const char* dir = std::getenv("LIMN_TEST_FIXTURES");
    if (!dir || !*dir) return 0;  // then every input with native code is skipped
    if (DIR* d = ::opendir(dir)) {
        while (const dirent* e = ::readdir(d)) {
            const std::string name = e->d_name;
            if (name.size() < 4 || name.compare(name.size() - 4, 4, ".pt2") != 0) continue;
            const std::string bytes = read_all(std::string(dir) + "/" + name);
            code_is_trusted(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), true);
        }
        ::closedir(d);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const bool verbose = std::getenv("LIMN_FUZZ_VERBOSE") != nullptr;
    if (!code_is_trusted(data, size, false)) {
        if (verbose) std::fprintf(stderr, "  skipped: native code not from the fixtures\n");
        return -1;  // not a finding, and not worth keeping
    }
    limn_model_options options;
    limn_model_options_init(&options);
    options.device = "cpu";
    options.name = "fuzz";
    options.max_pixels = 1 << 16;
    limn_model* model = nullptr;
    const limn_status st = limn_model_load_from_memory(data, size, &options, &model);
    if (verbose) std::fprintf(stderr, "  %s: %s\n", limn_status_string(st), limn_last_error());
    if (st != LIMN_OK) {
        if (model || !*limn_last_error()) __builtin_trap();  // out-parameter untouched, a message
        return 0;
    }
    limn_model_info info;
    std::memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (limn_model_get_info(model, &info) != LIMN_OK) __builtin_trap();
    int32_t w = info.fixed_width > 0 ? info.fixed_width : info.size_multiple;
    int32_t h = info.fixed_height > 0 ? info.fixed_height : info.size_multiple;
    while (info.fixed_width == 0 && (w < info.min_width || w < 8)) w += info.size_multiple;
    while (info.fixed_height == 0 && (h < info.min_height || h < 8)) h += info.size_multiple;
    if (static_cast<int64_t>(w) * h <= 256 * 256) {
        limn_image* in = nullptr;
        limn_image* out = nullptr;
        if (limn_image_alloc(w, h, LIMN_PIXEL_RGB8, &in) == LIMN_OK) {
            for (int32_t y = 0; y < h; ++y) std::memset(in->data + y * in->stride, 37 * y, in->stride);
            (void)limn_model_run_alloc(model, in, LIMN_PIXEL_RGBA8, &out);
        }
        limn_image_free(out);
        limn_image_free(in);
    }
    limn_model_free(model);
    return 0;
}
