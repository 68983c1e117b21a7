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

}  // namespace limn
