// The landmarks file the CLI reads (--landmarks FILE) and writes (`limn detect-faces`): one face a
// line, 10 numbers (the x y pairs of limn_face.landmarks), blank lines and lines starting with '#'
// ignored. Torch-free and separate from the CLI so a fuzz target can parse untrusted text with it.
#pragma once

#include <limn/limn.h>

#include <istream>
#include <stdexcept>
#include <string>
#include <vector>

namespace limn_cli {

struct LandmarksError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The faces listed in `in` (score 1, box zero); `name` starts each message ("NAME:LINE: ...").
// Throws LandmarksError on a line that does not hold exactly 10 numbers.
std::vector<limn_face> parse_landmarks(std::istream& in, const std::string& name);

}  // namespace limn_cli
