// Memory statistics and limits on the CPU (the CUDA side is in test_gpu.cpp).
#include <doctest/doctest.h>
#include <limn/limn.hpp>

#include "fixtures.h"

TEST_CASE("CPU memory statistics: the process's resident set, limn's tensors, and the limit") {
    const limn_memory_stats before = limn::memory_stats("cpu");
    CHECK(before.reserved > 0);  // resident set
    CHECK(before.peak_reserved >= before.reserved);
    CHECK(before.device_total > before.device_free);
    CHECK(before.limit == 0);
    {
        // Touch 64 MiB outside limn: the resident peak grows, limn's tensors do not.
        std::vector<uint8_t> block(64u << 20, 1);
        const limn_memory_stats during = limn::memory_stats("cpu");
        CHECK(during.peak_reserved >= before.reserved + (60u << 20));
        CHECK(during.allocated == before.allocated);
        CHECK(block[12345] == 1);
    }
    {
        // A run's tensors: the float input alone is 1024 * 1024 * 3 * 4 bytes.
        const limn::Model m(limn_test::fixture("tiny_unet.pt"), limn::ModelOptions().device("cpu"));
        const uint64_t loaded = limn::memory_stats("cpu").allocated;
        CHECK(loaded > before.allocated);  // the weights
        limn::reset_peak_memory("cpu");
        CHECK(limn::memory_stats("cpu").peak_allocated == loaded);
        limn_test::run_rgb(m, 1024, 1024, 1);
        const limn_memory_stats after_run = limn::memory_stats("cpu");
        CHECK(after_run.peak_allocated >= loaded + 1024u * 1024u * 3u * 4u);
        CHECK(after_run.allocated == loaded);  // nothing of the run stays
    }
    CHECK(limn::memory_stats("cpu").allocated == before.allocated);  // freed with the model
    limn::reset_peak_memory("cpu");
    const limn_memory_stats after = limn::memory_stats("cpu");
    CHECK(after.peak_allocated >= after.allocated);

    limn::set_memory_limit("cpu", 512ull << 20);
    CHECK(limn::memory_stats("cpu").limit == (512ull << 20));
    limn::set_memory_limit("cpu", 0);
    CHECK(limn::memory_stats("cpu").limit == 0);
    CHECK_NOTHROW(limn::release_cached_memory("cpu"));
    CHECK_THROWS_AS(limn::memory_stats("cuda:42"), limn::Error);
}
