// Replays fuzz inputs through a libFuzzer target without libFuzzer, as zstd's and libwebp's plain
// CI runs do: every file named on the command line, and every file under every folder named
// (recursively, in sorted order), goes once through LLVMFuzzerTestOneInput. Built with the normal
// compiler, no sanitizer needed; a crash or sanitizer report fails the CTest entry.
//
//   fuzz_replay_<target> DIR_OR_FILE...
//
// Prints each input's name before running it (so a crash names its input) when LIMN_FUZZ_VERBOSE
// is set, and the count at the end. Fails when nothing was replayed (a missing corpus).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

// Regular files at `path` (a file, or a folder searched recursively), sorted; false if missing.
bool collect(const std::string& path, std::vector<std::string>& files) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return false;
    if (S_ISREG(st.st_mode)) {
        files.push_back(path);
        return true;
    }
    if (!S_ISDIR(st.st_mode)) return true;
    DIR* dir = ::opendir(path.c_str());
    if (!dir) return false;
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(dir)) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) collect(path + "/" + name, files);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    std::vector<std::string> files;
    for (int i = 1; i < argc; ++i) {
        if (!collect(argv[i], files)) {
            std::fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            return 1;
        }
    }
    if (files.empty()) {
        std::fprintf(stderr, "replay: no inputs (usage: %s DIR_OR_FILE...)\n", argv[0]);
        return 1;
    }
    const bool verbose = std::getenv("LIMN_FUZZ_VERBOSE") != nullptr;
    size_t bytes = 0;
    for (const std::string& file : files) {
        std::ifstream in(file, std::ios::binary);
        const std::vector<char> data{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        if (verbose) std::fprintf(stderr, "replay: %s (%zu bytes)\n", file.c_str(), data.size());
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
        bytes += data.size();
    }
    std::printf("replayed %zu inputs (%zu bytes)\n", files.size(), bytes);
    return 0;
}
