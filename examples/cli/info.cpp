// `limn info MODEL [--json]`: what a model file (or a fetched name) holds.
#include "cli.h"

#include <iostream>

namespace limn_cli {
namespace {

// On the CPU where it can run there; a package compiled for CUDA on the device it was built for.
std::unique_ptr<limn::Model> open_model(const std::string& path) {
    try {
        return std::make_unique<limn::Model>(path, limn::ModelOptions().device("cpu").warmup(false));
    } catch (const limn::Error& e) {
        if (e.status() != LIMN_ERR_UNSUPPORTED) throw;
        return std::make_unique<limn::Model>(path, limn::ModelOptions().device("auto").warmup(false));
    }
}

void print_json(const std::string& path, const limn_model_info& i) {
    std::cout << "{\"file\": " << json_string(path) << ", \"name\": " << json_string(i.name) << ", \"kind\": \""
              << limn::model_kind_name(i.kind) << "\", \"format\": " << json_string(i.format)
              << ", \"device\": " << json_string(i.device) << ", \"precision\": \"" << limn::precision_name(i.precision)
              << "\", \"metadata_version\": " << i.format_version << ", \"size_multiple\": " << i.size_multiple
              << ", \"fixed_width\": " << i.fixed_width << ", \"fixed_height\": " << i.fixed_height
              << ", \"min_width\": " << i.min_width << ", \"min_height\": " << i.min_height
              << ", \"tile_margin\": " << i.tile_margin << ", \"face_template\": ";
    if (i.has_face_template) {
        std::cout << "[";
        for (int k = 0; k < 10; ++k) std::cout << (k ? ", " : "") << i.face_template[k];
        std::cout << "]";
    } else {
        std::cout << "null";
    }
    std::cout << ", \"role\": " << json_string(i.role) << ", \"crop_size\": " << i.crop_size
              << ", \"source\": " << json_string(i.source) << ", \"license\": " << json_string(i.license) << "}\n";
}

void print_text(const std::string& path, const limn_model_info& i) {
    const std::string format = std::string(i.format) == "pt2"
                                   ? std::string("compiled package (pt2) for ") +
                                         (std::string(i.device) == "cpu" ? "cpu, " : "cuda, ") +
                                         limn::precision_name(i.precision)
                                   : std::string("TorchScript (any device and precision)");
    std::cout << "file:          " << path << "\n"
              << "name:          " << i.name << "\n"
              << "kind:          " << limn::model_kind_name(i.kind) << "\n"
              << "file format:   " << format << "\n"
              << "metadata:      version " << i.format_version << "\n";
    if (i.fixed_width > 0) std::cout << "size:          " << i.fixed_width << "x" << i.fixed_height << " (fixed)\n";
    else std::cout << "size:          any multiple of " << i.size_multiple << "\n";
    if (i.min_width > 1 || i.min_height > 1) {
        std::cout << "smallest input: " << i.min_width << "x" << i.min_height << " (smaller pictures are padded)\n";
    }
    std::cout << "tile margin:   " << i.tile_margin << "\n";
    if (std::string(i.role) == "head") {
        std::cout << "role:          head network: aligned " << i.crop_size << "x" << i.crop_size
                  << " face crops (the face on the template below)\n";
    }
    if (i.has_face_template) {
        std::cout << "face template:";
        for (int k = 0; k < 10; k += 2) std::cout << " (" << i.face_template[k] << ", " << i.face_template[k + 1] << ")";
        std::cout << "\n";
    }
    std::cout << "source:        " << i.source << "\n"
              << "licence:       " << i.license << "\n";
}

}  // namespace

int info_command(const Args& a) {
    if (a.inputs.size() != 1) throw UsageError("info takes one model file");
    try {
        const std::string path = model_file(a.inputs[0]);
        const limn_model_info i = open_model(path)->info();
        if (a.json) {
            print_json(path, i);
        } else {
            print_text(path, i);
        }
    } catch (const limn::Error& e) {
        std::cerr << "limn: " << e.what() << "\n";
        return kNoModel;
    }
    return kOk;
}

}  // namespace limn_cli
