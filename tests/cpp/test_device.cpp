// Device strings and resolution (white-box: src/device.h).
#include <doctest/doctest.h>

#include "device.h"
#include "error.h"

using limn::core::DeviceRequest;

static limn_status status_of(const char* text) {
    try {
        limn::core::parse_device(text);
        return LIMN_OK;
    } catch (const limn::core::Failure& e) {
        return e.status();
    }
}

TEST_CASE("device strings parse") {
    CHECK(limn::core::parse_device("cpu").kind == DeviceRequest::Kind::Cpu);
    CHECK(limn::core::parse_device("auto").kind == DeviceRequest::Kind::Auto);
    CHECK(limn::core::parse_device("").kind == DeviceRequest::Kind::Auto);
    const auto cuda = limn::core::parse_device("cuda");
    CHECK(cuda.kind == DeviceRequest::Kind::Cuda);
    CHECK(cuda.index == -1);
    const auto c3 = limn::core::parse_device("cuda:3");
    CHECK(c3.kind == DeviceRequest::Kind::Cuda);
    CHECK(c3.index == 3);
    CHECK(limn::core::parse_device("cuda:12").index == 12);
    CHECK(limn::core::parse_device("cuda:0").index == 0);
}

TEST_CASE("bad device strings are invalid arguments naming the string") {
    for (const char* bad : {"gpu", "CPU", "cuda:", "cuda:-1", "cuda:x", "cuda:1x", "cuda:01", " cpu",
                            "cuda:99999", "cuda0", "mps"}) {
        CAPTURE(bad);
        CHECK(status_of(bad) == LIMN_ERR_INVALID_ARGUMENT);
    }
    try {
        limn::core::parse_device("tpu:0");
        FAIL("no exception");
    } catch (const limn::core::Failure& e) {
        CHECK(std::string(e.what()).find("'tpu:0'") != std::string::npos);
    }
}

TEST_CASE("resolution: cpu always works, auto says what it chose, missing CUDA is an error") {
    CHECK(limn::core::resolve_device("cpu").id() == "cpu");
    CHECK(limn::core::resolve_device(nullptr).id() == (limn::core::cuda_device_count() > 0 ? "cuda:0" : "cpu"));
    const int n = limn::core::cuda_device_count();
    try {
        limn::core::resolve_device(("cuda:" + std::to_string(n)).c_str());
        FAIL("no exception");
    } catch (const limn::core::Failure& e) {
        CHECK(e.status() == LIMN_ERR_DEVICE_UNAVAILABLE);
        CHECK(std::string(e.what()).find("cuda:" + std::to_string(n)) != std::string::npos);
    }
    if (n == 0) {
        try {
            limn::core::resolve_device("cuda");
            FAIL("no exception");
        } catch (const limn::core::Failure& e) {
            CHECK(e.status() == LIMN_ERR_DEVICE_UNAVAILABLE);
        }
    }
}

TEST_CASE("device list starts with the CPU and describes it") {
    const auto devices = limn::core::list_devices();
    REQUIRE(!devices.empty());
    CHECK(devices[0].device.id() == "cpu");
    CHECK(!devices[0].name.empty());
    CHECK(devices[0].total_memory > 0);
    CHECK(devices[0].free_memory <= devices[0].total_memory);
    CHECK(devices.size() == static_cast<size_t>(1 + limn::core::cuda_device_count()));
    CHECK(limn::core::build_info().find("LibTorch 2.") != std::string::npos);
    CHECK(limn::core::build_info().find("CPU features:") != std::string::npos);
}
