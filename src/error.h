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
// TorchScript interpreter rethrows (a traceback whose last line is the original error).
inline std::string error_summary(const std::string& text) {
    const std::string marker = "The following operation failed in the TorchScript interpreter";
    if (text.compare(0, marker.size(), marker) != 0) return text.substr(0, text.find('\n'));
    size_t end = text.find_last_not_of("\n \t");
    if (end == std::string::npos) return text;
    const size_t begin = text.rfind('\n', end);
    return text.substr(begin == std::string::npos ? 0 : begin + 1, end - (begin == std::string::npos ? 0 : begin + 1) + 1);
}

}  // namespace limn
