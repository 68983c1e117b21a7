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

TEST_CASE("the CPU arena: a model's run memory is kept between runs, counted, capped and released") {
    const limn::Model m(limn_test::fixture("tiny_unet.pt"), limn_test::cpu());
    limn::release_cached_memory("cpu");
    CHECK(limn::memory_stats("cpu").cached == 0);
    const uint64_t loaded = limn::memory_stats("cpu").allocated;
    const uint64_t input = 1024u * 768u * 3u * 4u;  // the float input, one of the run's blocks
    const std::vector<uint8_t> first = limn_test::run_rgb(m, 1024, 768, 3);
    const limn_memory_stats s1 = limn::memory_stats("cpu");
    CHECK(s1.cached >= input);      // kept for the next run
    CHECK(s1.allocated == loaded);  // and not counted as in use
    limn::reset_peak_memory("cpu");
    CHECK(limn_test::run_rgb(m, 1024, 768, 3) == first);
    const limn_memory_stats s2 = limn::memory_stats("cpu");
    CHECK(s2.cached == s1.cached);                    // the same blocks again, given back again
    CHECK(s2.peak_allocated >= loaded + input);       // in use, they count as allocated
    limn::release_cached_memory("cpu");
    CHECK(limn::memory_stats("cpu").cached == 0);

    // Within a CPU limit an arena keeps at most half of it (and tiles follow the limit as ever).
    limn::set_memory_limit("cpu", 16ull << 20);
    CHECK(limn_test::run_rgb(m, 1024, 768, 3) == first);
    CHECK(limn::memory_stats("cpu").cached <= (8ull << 20));
    limn::set_memory_limit("cpu", 0);
    limn::release_cached_memory("cpu");

    // LIMN_CPU_ARENA_MAX=0: models loaded from then on keep nothing.
    setenv("LIMN_CPU_ARENA_MAX", "0", 1);
    const limn::Model off(limn_test::fixture("tiny_unet.pt"), limn_test::cpu());
    unsetenv("LIMN_CPU_ARENA_MAX");
    CHECK(limn_test::run_rgb(off, 1024, 768, 3) == first);
    CHECK(limn::memory_stats("cpu").cached == 0);
}
