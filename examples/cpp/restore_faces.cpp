// restore_faces.cpp: C++ with limn.hpp. Restores the faces of a photo given their landmarks, then
// cartoonizes it, reusing one buffer, and reports device memory.
//
//     limn-example-cpp FACE_MODEL CARTOON_MODEL IN OUT X1 Y1 ... X5 Y5 [DEVICE]
//
// Errors arrive as limn::Error (status + message).
#include <limn/limn.hpp>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 15 && argc != 16) {
        std::cerr << "usage: " << argv[0] << " FACE_MODEL CARTOON_MODEL IN OUT X1 Y1 ... X5 Y5 [DEVICE]\n";
        return 2;
    }
    try {
        const std::string device = limn::resolve_device(argc == 16 ? argv[15] : "auto");
        const limn::Model face(argv[1], limn::ModelOptions().device(device).expected_kind(LIMN_MODEL_KIND_FACE_RESTORE));
        const limn::Model cartoon(argv[2], limn::ModelOptions().device(device).expected_kind(LIMN_MODEL_KIND_CARTOON));

        limn::Image photo = limn::load_image(argv[3]);
        limn_face f{};
        for (int i = 0; i < 10; ++i) f.landmarks[i] = std::strtof(argv[5 + i], nullptr);
        const auto restored = face.restore_faces(photo.view(), photo.view(), {f});
        const auto cartooned = cartoon.cartoonize(photo.view(), photo.view(), limn::CartoonizeOptions().strength(0.8f));
        limn::save_image(argv[4], photo.view());

        const limn_memory_stats mem = limn::memory_stats(device);
        std::cout << argv[4] << ": " << restored.faces << " face(s) restored, cartoon in " << cartooned.tiles
                  << " tile(s), " << (restored.seconds + cartooned.seconds) << " s, peak "
                  << mem.peak_allocated / (1 << 20) << " MiB on " << device << "\n";
    } catch (const limn::Error& e) {
        std::cerr << "error (" << limn_status_string(e.status()) << "): " << e.what() << "\n";
        return 1;
    }
    return 0;
}
