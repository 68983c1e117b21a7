#include "landmarks.h"

#include <sstream>

namespace limn_cli {

std::vector<limn_face> parse_landmarks(std::istream& in, const std::string& name) {
    std::vector<limn_face> faces;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        const size_t first = line.find_first_not_of(" \t\r");
        if (first == std::string::npos || line[first] == '#') continue;
        std::istringstream s(line);
        limn_face f{};
        for (float& v : f.landmarks)
            if (!(s >> v)) throw LandmarksError(name + ":" + std::to_string(n) + ": expected 10 numbers (5 x y pairs)");
        std::string extra;
        if (s >> extra) throw LandmarksError(name + ":" + std::to_string(n) + ": more than 10 numbers");
        f.score = 1.0f;
        faces.push_back(f);
    }
    return faces;
}

}  // namespace limn_cli
