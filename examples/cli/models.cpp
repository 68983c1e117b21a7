// `limn models ...`: the model registry lives in the Python model zoo (limn_models.fetch), which
// downloads and converts; this runs it with the same arguments. $LIMN_PYTHON names the interpreter.
#include "cli.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

namespace limn_cli {

int models_command(int argc, char** argv) {
    const char* python = std::getenv("LIMN_PYTHON");
    if (!python || !*python) python = "python3";
    std::vector<char*> args{const_cast<char*>(python), const_cast<char*>("-m"),
                            const_cast<char*>("limn_models.fetch")};
    for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
    args.push_back(nullptr);
    std::cout.flush();
    ::execvp(python, args.data());
    std::cerr << "limn: `limn models` runs " << python << " -m limn_models.fetch, which could not start: "
              << std::strerror(errno) << " (install the Python package: pip install --no-build-isolation .)\n";
    return kNoModel;
}

}  // namespace limn_cli
