// libFuzzer target: the CLI's landmarks-file reader (examples/cli/landmarks.cpp), which parses a
// user's text file. Every input either parses into faces of 10 landmarks each, or throws
// LandmarksError naming the file and line; nothing else may escape, crash or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "landmarks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    try {
        const std::vector<limn_face> faces = limn_cli::parse_landmarks(in, "<fuzz>");
        // Each non-comment line became one face: never more faces than lines.
        size_t lines = 1;
        for (size_t i = 0; i < size; ++i) lines += data[i] == '\n';
        if (faces.size() > lines) __builtin_trap();
        for (const limn_face& f : faces) {
            if (f.score != 1.0f) __builtin_trap();
        }
    } catch (const limn_cli::LandmarksError& e) {
        if (std::string(e.what()).rfind("<fuzz>:", 0) != 0) __builtin_trap();
    }
    return 0;
}
