// Where the test fixtures (written by `python -m limn_models.fixtures`) are: $LIMN_TEST_FIXTURES.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <limn/limn.hpp>

namespace limn_test {

inline std::string fixture(const std::string& name) {
    const char* dir = std::getenv("LIMN_TEST_FIXTURES");
    if (!dir || !*dir) throw std::runtime_error("LIMN_TEST_FIXTURES is not set");
    return std::string(dir) + "/" + name;
}

// Model options for the CPU in fp32: what the pipeline tests compare against exact references in.
inline limn::ModelOptions cpu() { return limn::ModelOptions().device("cpu").precision(LIMN_PRECISION_FP32); }

inline std::vector<char> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Whether the RetinaFace detection cases exist ($LIMN_DETECT_CASES/cases.txt): the fixture
// detect_cases writes them only where the published weights are (../shared/data).
inline bool detect_cases_present() {
    const char* dir = std::getenv("LIMN_DETECT_CASES");
    return dir && *dir && std::ifstream(std::string(dir) + "/cases.txt").good();
}

// An RGB8 picture owned by the test.
struct Rgb {
    int w = 0, h = 0;
    std::vector<uint8_t> px;
    limn_image view() { return limn_image{px.data(), w, h, static_cast<size_t>(w) * 3, LIMN_PIXEL_RGB8}; }
};

inline Rgb gray(int w, int h) { return Rgb{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3, 128)}; }

// Deterministic, non-trivial pixel bytes (never all zeros).
inline std::vector<uint8_t> pattern(size_t n, unsigned seed) {
    std::vector<uint8_t> v(n);
    uint32_t s = seed * 2654435761u + 12345u;
    for (auto& b : v) {
        s = s * 1664525u + 1013904223u;
        b = static_cast<uint8_t>(s >> 24);
    }
    return v;
}

// Runs `m` (a limn::Model) on a w x h RGB8 pattern image and returns the RGB8 result.
template <typename Model>
std::vector<uint8_t> run_rgb(const Model& m, int w, int h, unsigned seed) {
    std::vector<uint8_t> in = pattern(static_cast<size_t>(w) * h * 3, seed);
    std::vector<uint8_t> out(in.size());
    limn_image a{in.data(), w, h, static_cast<size_t>(w) * 3, LIMN_PIXEL_RGB8};
    limn_image b{out.data(), w, h, static_cast<size_t>(w) * 3, LIMN_PIXEL_RGB8};
    m.run(a, b);
    return out;
}

// Largest absolute difference of two float buffers of the same size.
inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0.0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
    return d;
}

// PSNR in dB of two 8-bit buffers of the same size (1e9 when identical).
inline double psnr8(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    double se = 0.0;
    for (size_t i = 0; i < a.size(); ++i) se += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    return se == 0.0 ? 1e9 : 10.0 * std::log10(255.0 * 255.0 * static_cast<double>(a.size()) / se);
}

// The limn_status a call through limn.hpp ends with (LIMN_OK if it returns).
template <typename F>
limn_status status_of(F&& f) {
    try {
        f();
    } catch (const limn::Error& e) {
        return e.status();
    }
    return LIMN_OK;
}

}  // namespace limn_test
