// The TorchScript model format: a torch.jit archive whose top module carries limn_* attributes.
#include <caffe2/serialize/read_adapter_interface.h>
#include <ATen/Context.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include "error.h"
#include "network.h"

namespace limn::core {
namespace {


// Module::to(device, dtype) would turn integer buffers (indices, counts) into floats and leave
// tensors held as plain attributes on the CPU in fp32. Here every tensor the module holds moves to
// `device`; floating-point ones (parameters, buffers and plain attributes alike) become `dtype`,
// all others keep theirs. The limn_* metadata tensors stay where they are.
void convert_tensors(torch::jit::Module& module, const c10::Device& device, c10::ScalarType dtype) {
    for (torch::jit::Module sub : module.modules()) {
        const c10::intrusive_ptr<c10::ivalue::Object> object = sub._ivalue();
        const c10::ClassTypePtr& type = sub.type();
        for (size_t i = 0; i < type->numAttributes(); ++i) {
            if (type->getAttributeName(i).rfind("limn_", 0) == 0) continue;
            const c10::IValue value = object->getSlot(i);
            if (!value.isTensor()) continue;
            const at::Tensor t = value.toTensor();
            if (!t.defined()) continue;
            object->setSlot(i, t.is_floating_point() ? t.to(device, dtype) : t.to(device));
        }
    }
}

class TorchScriptNetwork final : public Network {
public:
    TorchScriptNetwork(torch::jit::Module module, std::string origin)
        : module_(std::move(module)), origin_(std::move(origin)) {
        for (const auto& attr : module_.named_attributes(/*recurse=*/false)) {
            if (attr.name.rfind("limn_", 0) != 0) continue;
            raw_[attr.name] = convert(attr.name, attr.value);
        }
    }

    TorchScriptNetwork(torch::jit::Module module, const TorchScriptNetwork& from)
        : module_(std::move(module)),
          origin_(from.origin_),
          raw_(from.raw_),
          selftest_in_(from.selftest_in_),
          selftest_out_(from.selftest_out_) {}

    const RawMetadata& metadata() const override { return raw_; }
    at::Tensor selftest_input() const override { return selftest_in_; }
    at::Tensor selftest_output() const override { return selftest_out_; }
    const char* format() const override { return "torchscript"; }

    std::unique_ptr<Network> prepare(const c10::Device& device, c10::ScalarType dtype,
                                     bool channels_last, const ConvSettings& conv) const override {
        torch::NoGradGuard no_grad;
        torch::jit::Module m = module_.clone();
        m.eval();
        convert_tensors(m, device, dtype);
        if (channels_last) {
            for (at::Tensor p : m.parameters()) {
                if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
            }
        }
        try {
            // Folds parameters into constants and simplifies the graph for inference.
            m = torch::jit::freeze(m);
        } catch (const c10::Error&) {
            // Some modules cannot be frozen (e.g. they mutate attributes); they still run.
        }
        // A frozen graph is inlined already; a module that could not be frozen (GPEN's module
        // lists) calls its submodules' methods and free functions (upfirdn2d), whose convolutions
        // must be stated too: inline them into forward first.
        const std::shared_ptr<torch::jit::Graph> graph = m.get_method("forward").graph();
        torch::jit::Inline(*graph);
        state_conv_settings(*graph->block(), conv);
        return std::make_unique<TorchScriptNetwork>(std::move(m), *this);
    }

    at::Tensor forward(const at::Tensor& x) const override {
        // The profiling executor re-profiles and re-specializes the graph for every new input
        // shape, which made runs on a new photo size several times slower than the frozen graph
        // run as it is (BENCHMARKS.md). The switch is thread-local: the host application's own
        // TorchScript use is unaffected.
        torch::jit::GraphOptimizerEnabledGuard optimizer(false);
        std::vector<c10::IValue> inputs{x};
        c10::IValue out = module_.forward(std::move(inputs));
        if (!out.isTensor()) {
            fail(LIMN_ERR_INVALID_MODEL, "model '" + origin_ + "': forward() returned a " +
                                             out.tagKind() + ", expected a Tensor");
        }
        return out.toTensor();
    }

private:
    MetaValue convert(const std::string& name, const c10::IValue& v) {
        if (v.isInt()) return static_cast<int64_t>(v.toInt());
        if (v.isDouble()) return v.toDouble();
        if (v.isString()) return v.toStringRef();
        if (v.isDoubleList()) return v.toDoubleVector();
        if (v.isIntList()) {
            std::vector<double> d;
            for (int64_t i : v.toIntVector()) d.push_back(static_cast<double>(i));
            return d;
        }
        if (v.isTensor()) {
            const at::Tensor t = v.toTensor();
            if (name == "limn_selftest_input" && t.numel() > 0) selftest_in_ = t;
            if (name == "limn_selftest_output" && t.numel() > 0) selftest_out_ = t;
            return TensorPresence{t.numel() > 0};
        }
        return std::monostate{};
    }

    mutable torch::jit::Module module_;  // forward() is not const in LibTorch but does not mutate
    std::string origin_;
    RawMetadata raw_;
    at::Tensor selftest_in_, selftest_out_;
};

template <typename Source>
std::unique_ptr<Network> load_from(Source&& source, const std::string& origin) {
    torch::jit::Module module;
    try {
        // Without the *.debug_pkl source ranges: LibTorch indexes their text table unchecked when
        // it formats an error, and a damaged one crashed the process (tests/fuzz/README.md).
        module = torch::jit::load(std::forward<Source>(source), torch::Device(torch::kCPU),
                                  /*load_debug_files=*/false);
    } catch (const std::exception& e) {
        const char* detail = e.what();
        if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) detail = ce->what_without_backtrace();
        fail(LIMN_ERR_INVALID_MODEL, "model '" + origin +
                                         "' is not a TorchScript archive limn can read nor a compiled "
                                         ".pt2 package (corrupt, truncated, or not written by "
                                         "limn_models.export): " +
                                         error_summary(detail ? detail : ""));
    }
    if (!module.find_method("forward")) {
        fail(LIMN_ERR_INVALID_MODEL, "model '" + origin + "' has no forward() method");
    }
    return std::make_unique<TorchScriptNetwork>(std::move(module), origin);
}

}  // namespace

int state_conv_settings(torch::jit::Block& block, const ConvSettings& conv) {
    using torch::jit::Node;
    using torch::jit::NamedValue;
    const auto& ctx = at::globalContext();
    const bool deterministic = ctx.deterministicCuDNN() || ctx.deterministicAlgorithms();
    const bool cudnn = ctx.userEnabledCuDNN();
    torch::jit::Graph& graph = *block.owningGraph();
    int unstated = 0;
    for (auto it = block.nodes().begin(); it != block.nodes().end();) {
        Node* n = *it;
        ++it;  // n may be replaced below
        for (torch::jit::Block* inner : n->blocks()) unstated += state_conv_settings(*inner, conv);
        const std::string kind = n->kind().toQualString();
        const bool plain = kind == "aten::conv1d" || kind == "aten::conv2d" || kind == "aten::conv3d";
        const bool transposed = kind == "aten::conv_transpose1d" || kind == "aten::conv_transpose2d" ||
                                kind == "aten::conv_transpose3d";
        if (!plain && !transposed && kind != "aten::convolution" && kind != "aten::_convolution") continue;
        if (n->outputs().size() != 1) continue;
        const auto in = n->inputs();
        const auto is_list = [&](size_t i) { return i < in.size() && in[i]->type()->kind() == c10::TypeKind::ListType; };
        std::vector<NamedValue> args;
        if (plain && in.size() == 7 && is_list(3) && is_list(4)) {
            // (input, weight, bias, stride, padding, dilation, groups)
            const size_t dims = static_cast<size_t>(kind[kind.size() - 2] - '0');  // conv<N>d
            args = {in[0], in[1], in[2], in[3], in[4], in[5], NamedValue(false),
                    NamedValue(c10::IValue(std::vector<int64_t>(dims, 0))), in[6]};
        } else if (transposed && in.size() == 8 && is_list(3)) {
            // (input, weight, bias, stride, padding, output_padding, groups, dilation)
            args = {in[0], in[1], in[2], in[3], in[4], in[7], NamedValue(true), in[5], in[6]};
        } else if (!plain && !transposed && in.size() >= 9) {
            args.assign(in.begin(), in.begin() + 9);
        } else {
            ++unstated;  // e.g. conv2d with padding="same"
            continue;
        }
        args.insert(args.end(), {NamedValue(conv.cudnn_benchmark), NamedValue(deterministic), NamedValue(cudnn),
                                 NamedValue(conv.allow_tf32)});
        torch::jit::WithInsertPoint here(n);
        torch::jit::Value* out = graph.insert(c10::Symbol::fromQualString("aten::_convolution"), args);
        out->setType(n->output()->type());
        n->output()->replaceAllUsesWith(out);
        n->destroy();
    }
    return unstated;
}

std::unique_ptr<Network> load_torchscript(const std::string& path) { return load_from(path, path); }

std::unique_ptr<Network> load_torchscript(std::shared_ptr<caffe2::serialize::ReadAdapterInterface> bytes,
                                          const std::string& origin) {
    return load_from(std::move(bytes), origin);
}

}  // namespace limn::core
