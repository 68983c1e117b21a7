// limn: the command-line tool. Cartoonizes photos, restores faces, describes models and devices.
#include "cli.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

namespace limn_cli {
namespace {

// A standard stream the caller closed (`>&-`) gets a descriptor that refuses writes, so that no
// file limn opens takes its number (and its output) and a write to it is an error, not lost.
void guard_standard_streams() {
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
            const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (null >= 0 && null != fd) {
                ::dup2(null, fd);
                ::close(null);
            }
        }
    }
}

// What the command wrote to stdout (JSON, plans, landmarks, `-o -` images) reached it, or the
// command fails: a full disk or a closed pipe is an error, not exit 0 with the output cut short.
int stdout_checked(int status) {
    std::cout.flush();
    if (!std::cout) {
        std::cerr << "limn: cannot write to standard output\n";
        return status == kOk ? kFailed : status;
    }
    return status;
}

int run_command(int argc, char** argv) {
    if (argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
        std::cout << usage_text();
        return kOk;
    }
    if (argc >= 2 && std::strcmp(argv[1], "--version") == 0) {
        std::cout << "limn " << limn::version() << "\n";
        return kOk;
    }
    if (argc >= 2 && std::strcmp(argv[1], "models") == 0) return models_command(argc, argv);
    try {
        const Args a = parse(argc, argv);
        if (a.command == "cartoonize" || a.command == "restore-faces") return images_command(a, argv[0]);
        if (a.command == "info") return info_command(a);
        if (a.command == "detect-faces") return detect_faces_command(a);
        return devices_command(a);
    } catch (const HelpRequest& h) {
        std::cout << usage_text(h.command);
        return kOk;
    } catch (const UsageError& e) {
        std::cerr << "limn: " << e.what() << "\n(`limn --help` shows the usage)\n";
        return kUsage;
    } catch (const std::exception& e) {  // limn::Error and the rest
        std::cerr << "limn: " << e.what() << "\n";
        return kFailed;
    }
}

}  // namespace
}  // namespace limn_cli

int main(int argc, char** argv) {
    limn_cli::guard_standard_streams();
    return limn_cli::stdout_checked(limn_cli::run_command(argc, argv));
}
