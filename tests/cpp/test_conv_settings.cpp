// How TorchScript graphs are prepared: every convolution states the model's cuDNN benchmark and TF32
// flags (aten::_convolution), computing the same values, so nothing reads or changes LibTorch's
// process-wide settings.
#include <doctest/doctest.h>
#include <torch/csrc/jit/ir/irparser.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/torch.h>

#include <memory>
#include <string>

#include "network.h"

namespace {

// A 3x3 convolution, a transposed 2x2 one of stride 2 and a 1-D one, each with its bias.
constexpr const char* kConvolutions = R"IR(
graph(%x : Tensor, %w : Tensor, %b : Tensor, %wt : Tensor, %v : Tensor, %w1 : Tensor):
  %one : int = prim::Constant[value=1]()
  %two : int = prim::Constant[value=2]()
  %zero : int = prim::Constant[value=0]()
  %s1 : int[] = prim::ListConstruct(%one, %one)
  %s2 : int[] = prim::ListConstruct(%two, %two)
  %z : int[] = prim::ListConstruct(%zero, %zero)
  %l1 : int[] = prim::ListConstruct(%one)
  %y : Tensor = aten::conv2d(%x, %w, %b, %s1, %s1, %s1, %one)
  %t : Tensor = aten::conv_transpose2d(%y, %wt, %b, %s2, %z, %z, %one, %s1)
  %u : Tensor = aten::conv1d(%v, %w1, %b, %l1, %l1, %l1, %one)
  return (%t, %u))IR";

std::shared_ptr<torch::jit::Graph> parse(const char* ir) {
    auto g = std::make_shared<torch::jit::Graph>();
    torch::jit::parseIR(ir, g.get());
    return g;
}

std::vector<at::Tensor> run(const std::shared_ptr<torch::jit::Graph>& g, const std::vector<at::Tensor>& in) {
    torch::jit::Stack stack(in.begin(), in.end());
    torch::jit::GraphExecutor(g, "test").run(stack);
    std::vector<at::Tensor> out;
    for (const auto& v : stack) out.push_back(v.toTensor());
    return out;
}

int count(const torch::jit::Graph& g, const char* kind) {
    int n = 0;
    for (const torch::jit::Node* node : g.nodes()) n += std::string(node->kind().toQualString()) == kind;
    return n;
}

}  // namespace

TEST_CASE("convolutions state the model's cuDNN benchmark and TF32 flags and compute the same") {
    torch::manual_seed(3);
    const std::vector<at::Tensor> in{torch::rand({1, 3, 9, 7}), torch::rand({3, 3, 3, 3}), torch::rand({3}),
                                     torch::rand({3, 3, 2, 2}), torch::rand({1, 3, 11}), torch::rand({3, 3, 3})};
    const auto before = run(parse(kConvolutions), in);
    for (const limn::core::ConvSettings conv : {limn::core::ConvSettings{false, false}, limn::core::ConvSettings{true, true}}) {
        CAPTURE(conv.cudnn_benchmark);
        const auto g = parse(kConvolutions);
        CHECK(limn::core::state_conv_settings(*g->block(), conv) == 0);
        CHECK(count(*g, "aten::_convolution") == 3);
        CHECK(count(*g, "aten::conv2d") + count(*g, "aten::conv_transpose2d") + count(*g, "aten::conv1d") == 0);
        for (const torch::jit::Node* node : g->nodes()) {
            if (std::string(node->kind().toQualString()) != "aten::_convolution") continue;
            REQUIRE(node->inputs().size() == 13);
            CHECK(torch::jit::toIValue(node->input(9))->toBool() == conv.cudnn_benchmark);
            CHECK(torch::jit::toIValue(node->input(12))->toBool() == conv.allow_tf32);
        }
        const auto after = run(g, in);
        REQUIRE(after.size() == 2);
        CHECK(after[0].sizes() == before[0].sizes());
        CHECK(torch::equal(after[0], before[0]));
        CHECK(torch::equal(after[1], before[1]));
    }
}

TEST_CASE("convolutions with string padding are counted as not stated and left as they are") {
    const auto g = parse(R"IR(
graph(%x : Tensor, %w : Tensor):
  %none : NoneType = prim::Constant()
  %one : int = prim::Constant[value=1]()
  %s1 : int[] = prim::ListConstruct(%one, %one)
  %same : str = prim::Constant[value="same"]()
  %y : Tensor = aten::conv2d(%x, %w, %none, %s1, %same, %s1, %one)
  return (%y))IR");
    CHECK(limn::core::state_conv_settings(*g->block(), limn::core::ConvSettings{}) == 1);
    CHECK(count(*g, "aten::conv2d") == 1);
    CHECK(count(*g, "aten::_convolution") == 0);
}
