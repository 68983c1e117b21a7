// What the commands write: JSON text, sizes, and files (whole or not at all).
#include "cli.h"

#include <cstdio>

#include "error.h"    // the library's Failure, thrown by its file helper
#include "file_io.h"  // the library's own atomic write (src/file_io.cpp, compiled in: no LibTorch)

namespace limn_cli {

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::string mib(uint64_t bytes) {
    char b[32];
    std::snprintf(b, sizeof b, "%.0f MiB", static_cast<double>(bytes) / (1 << 20));
    return b;
}

void write_file(const std::string& path, const std::string& bytes) {
    try {
        limn::core::write_file_atomic(path, bytes.data(), bytes.size(), "cannot write " + path);
    } catch (const limn::core::Failure& f) {
        throw limn::Error(f.status(), f.what());
    }
}

}  // namespace limn_cli
