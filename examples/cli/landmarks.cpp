#include "landmarks.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace limn_cli {
namespace {

// One coordinate; `where` starts the message ("NAME:LINE").
float coordinate(const std::string& word, const std::string& where) {
    char* end = nullptr;
    errno = 0;
    const float v = std::strtof(word.c_str(), &end);
    if (end == word.c_str() || *end) throw LandmarksError(where + ": '" + word + "' is not a number");
    if (!std::isfinite(v) || errno == ERANGE) {
        throw LandmarksError(where + ": '" + word + "' is not a finite number of pixels");
    }
    return v;
}

}  // namespace

std::vector<limn_face> parse_landmarks(std::istream& in, const std::string& name) {
    std::vector<limn_face> faces;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (n == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a UTF-8 byte order mark
        const size_t first = line.find_first_not_of(" \t\r");
        if (first == std::string::npos || line[first] == '#') continue;
        const std::string where = name + ":" + std::to_string(n);
        std::istringstream s(line);
        std::vector<std::string> words;
        for (std::string w; s >> w;) words.push_back(w);
        if (words.size() != 10) {
            throw LandmarksError(where + ": expected 10 numbers (5 x y pairs), found " + std::to_string(words.size()));
        }
        limn_face f{};
        for (size_t k = 0; k < 10; ++k) f.landmarks[k] = coordinate(words[k], where);
        f.score = 1.0f;
        faces.push_back(f);
    }
    return faces;
}

}  // namespace limn_cli
