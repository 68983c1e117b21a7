// Memory statistics and limits on the CPU (the CUDA side is in test_gpu.cpp).
#include <doctest/doctest.h>
#include <limn/limn.hpp>

#include "fixtures.h"

TEST_CASE("CPU memory statistics follow the process and the limit round-trips") {
    const limn_memory_stats before = limn::memory_stats("cpu");
    CHECK(before.allocated > 0);
    CHECK(before.peak_allocated >= before.allocated);
    CHECK(before.device_total > before.device_free);
    CHECK(before.limit == 0);

    {
        // Touch 64 MiB: the peak must grow by about that much.
        std::vector<uint8_t> block(64u << 20, 1);
        const limn_memory_stats during = limn::memory_stats("cpu");
        CHECK(during.peak_allocated >= before.allocated + (60u << 20));
        CHECK(block[12345] == 1);
    }
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
