// SHA-256 (FIPS 180-4), for checking a model file against the digest its publisher gives before
// any of it is parsed or run. No LibTorch here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace limn::core {

class Sha256 {
public:
    Sha256();
    void update(const void* data, size_t size);
    std::string hex_digest();  // 64 lowercase hex digits; call once, after the last update

private:
    void block(const uint8_t* p);
    uint32_t h_[8];
    uint8_t buffer_[64];
    size_t buffered_ = 0;
    uint64_t length_ = 0;
};

std::string sha256_hex(const void* data, size_t size);
// Throws Failure(LIMN_ERR_IO) when the file cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace limn::core
