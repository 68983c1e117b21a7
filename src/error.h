// Internal error type: every failure inside limn is a Failure carrying the limn_status the C ABI
// returns and a message naming what was wrong. c_api.cpp turns it (and every other exception)
// into a status. No LibTorch here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "limn/limn.h"

namespace limn::core {

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

// A number for a message as a person writes it (1.5, 0.1, 1e+30), not std::to_string's 1.500000.
inline std::string number_text(double value) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", value);
    return buf;
}

// `text` as valid UTF-8: well-formed sequences kept, every other byte written as \xNN. Messages can
// quote file names and bytes from files, which need not be UTF-8; limn_last_error() promises it.
inline std::string valid_utf8(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const size_t n = text.size();
    for (size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && len > 1) {  // no overlong forms, surrogates or code points past U+10FFFF
            const uint32_t cp = len == 2 ? ((c & 0x1Fu) << 6) | (p[i + 1] & 0x3Fu)
                                : len == 3 ? ((c & 0x0Fu) << 12) | ((p[i + 1] & 0x3Fu) << 6) | (p[i + 2] & 0x3Fu)
                                           : ((c & 0x07u) << 18) | ((p[i + 1] & 0x3Fu) << 12) |
                                                 ((p[i + 2] & 0x3Fu) << 6) | (p[i + 3] & 0x3Fu);
            ok = cp >= (len == 2 ? 0x80u : len == 3 ? 0x800u : 0x10000u) && cp <= 0x10FFFFu &&
                 !(cp >= 0xD800u && cp <= 0xDFFFu);
        }
        if (ok) {
            out.append(text, i, len);
            i += len;
        } else {
            static const char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xF];
            ++i;
        }
    }
    return out;
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

}  // namespace limn::core
