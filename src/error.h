// Internal error type: every failure inside limn is a Failure carrying the limn_status the C ABI
// returns and a message naming what was wrong. c_api.cpp turns it (and every other exception)
// into a status. No LibTorch here.
#pragma once

#include <stdexcept>
#include <string>

#include "limn/limn.h"

namespace limn {

class Failure : public std::runtime_error {
public:
    Failure(limn_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    limn_status status() const noexcept { return status_; }

private:
    limn_status status_;
};

[[noreturn]] inline void fail(limn_status status, const std::string& message) {
    throw Failure(status, message);
}

// One line that says what went wrong in an error text: the first line, except for errors the
// TorchScript interpreter rethrows (a traceback whose last line is the original error). LibTorch's
// advice to its own users ("If you are seeing this error...", allocator settings, ...) is dropped,
// and a long line is cut at a sentence or word boundary, never inside a word.
inline std::string error_summary(const std::string& text) {
    const std::string marker = "The following operation failed in the TorchScript interpreter";
    std::string line;
    if (text.compare(0, marker.size(), marker) != 0) {
        line = text.substr(0, text.find('\n'));
    } else {
        const size_t end = text.find_last_not_of("\n \t");
        if (end == std::string::npos) return text;
        const size_t begin = text.rfind('\n', end);
        const size_t from = begin == std::string::npos ? 0 : begin + 1;
        line = text.substr(from, end - from + 1);
    }
    for (const char* advice : {" If you are seeing this", " If reserved but unallocated", " See documentation for",
                               " Please report a bug", " This error may appear"}) {
        const size_t at = line.find(advice);
        if (at != std::string::npos) line.resize(at);
    }
    constexpr size_t kMax = 240;
    if (line.size() > kMax) {
        size_t cut = line.rfind(". ", kMax);
        if (cut != std::string::npos && cut > kMax / 2) {
            line.resize(cut + 1);
        } else {
            cut = line.rfind(' ', kMax);
            line.resize(cut != std::string::npos && cut > kMax / 2 ? cut : kMax);
            line += "...";
        }
    }
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.pop_back();
    return line;
}

}  // namespace limn
