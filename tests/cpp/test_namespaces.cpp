// The core (limn::core, src/) and the public C++ wrapper (limn, limn.hpp) name their classes
// alike; one file can include both, and each name means one class.
#include <doctest/doctest.h>

#include <type_traits>

#include "cartoonize.h"
#include "detect_faces.h"
#include "limn/limn.hpp"
#include "model.h"
#include "restore_faces.h"

TEST_CASE("the core and the C++ wrapper are distinct namespaces, usable together") {
    static_assert(!std::is_same_v<limn::Model, limn::core::Model>);
    static_assert(!std::is_same_v<limn::ModelOptions, limn::core::ModelOptions>);
    static_assert(!std::is_same_v<limn::CartoonizeOptions, limn::core::CartoonizeOptions>);
    static_assert(!std::is_same_v<limn::DetectFacesOptions, limn::core::DetectFacesOptions>);
    static_assert(!std::is_same_v<limn::RestoreFacesOptions, limn::core::RestoreFacesOptions>);
    // The wrapper's defaults are the core's, through the C init functions.
    const limn::core::DetectFacesOptions core;
    CHECK(limn::DetectFacesOptions().get()->score_threshold == core.score_threshold);
    CHECK(limn::DetectFacesOptions().get()->max_side == core.max_side);
    const limn::core::ModelOptions model;
    CHECK(limn::ModelOptions().get()->max_pixels == model.max_pixels);
    CHECK(limn::precision_name(LIMN_PRECISION_BF16) == "bf16");
    limn_precision p = LIMN_PRECISION_AUTO;
    CHECK(limn::parse_precision("tf32", &p));
    CHECK(p == LIMN_PRECISION_TF32);
    CHECK_FALSE(limn::parse_precision("fp64", &p));
}
