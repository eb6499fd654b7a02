// Compile-only tests of the backend contract (include/sgf/core/concepts.hpp), in the style of
// kokkos/mdspan's compilation_tests: everything here is a static_assert, so a broken contract
// fails the BUILD; the GoogleTest at the end only makes ctest list the suite.
//
//  1. Every shipped backend models every concept (EigenCpu, EigenCpu64, the reference oracle).
//     The CUDA backend is compiled by nvcc only and is checked in its own header.
//  2. Negative cases: MockBackend<Off> has every member the contract asks for, except the ones
//     whose bit is set in Off (a requires-clause removes a member, a flag swaps a type or return
//     type for a wrong one). For EVERY requirement r of EVERY concept:
//       - the full mock (Off = 0) models every concept and Backend (so the mock is a valid model);
//       - MockBackend<bit(r)> does NOT model the concept r belongs to, nor Backend;
//       - MockBackend<bit(r)> still models every OTHER concept (each requirement sits in exactly
//         one group, so a mistake that moves or duplicates a requirement shows up too).
//     A concept that silently became vacuous (a requirement deleted or mistyped into something
//     always true) fails the "does NOT model" assertion for that requirement.
#include <sgf/core/concepts.hpp>
#include <sgf/backends/eigen.hpp>
#include <sgf/backends/reference.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>

namespace sgf::concept_tests {

// ------------------------------------------------------------------ 1. shipped backends
template <class B>
constexpr bool models_every_concept() {
    return StorageBackend<B> && GemmBackend<B> && ConvBackend<B> && ElementwiseBackend<B> && ReductionBackend<B> &&
           ResampleBackend<B> && RandomBackend<B> && LossBackend<B> && OptimiserBackend<B> && Backend<B>;
}
static_assert(StorageBackend<EigenCpu> && GemmBackend<EigenCpu> && ConvBackend<EigenCpu> && ElementwiseBackend<EigenCpu>);
static_assert(ReductionBackend<EigenCpu> && ResampleBackend<EigenCpu> && RandomBackend<EigenCpu> && LossBackend<EigenCpu>);
static_assert(OptimiserBackend<EigenCpu> && Backend<EigenCpu>);
static_assert(models_every_concept<EigenCpu64>(), "sgf::EigenCpu64 must model every backend concept");
static_assert(models_every_concept<reference::Backend>(), "the reference backend must model every backend concept");
static_assert(std::is_same_v<scalar_t<EigenCpu>, float> && std::is_same_v<scalar_t<EigenCpu64>, double>);
static_assert(std::is_same_v<scalar_t<reference::Backend>, double>);
// Not backends at all.
static_assert(!Backend<int> && !StorageBackend<int> && !GemmBackend<int>);
static_assert(!Backend<EigenCpu*> && !Backend<const EigenCpu&>);

// ------------------------------------------------------------------ 2. the requirement list
enum class Group { storage, gemm, conv, elementwise, reduction, resample, random, loss, optimiser };

// One entry per requirement expression (or type constraint) of concepts.hpp, in source order.
#define SGF_REQUIREMENTS(X)                                                                   \
    /* StorageBackend */                                                                      \
    X(scalar_not_floating, storage)                                                           \
    X(buffer_not_movable, storage)                                                            \
    X(no_name, storage)                                                                       \
    X(name_not_string, storage)                                                               \
    X(no_allocate, storage)                                                                   \
    X(allocate_wrong_type, storage)                                                           \
    X(no_buffer_data, storage)                                                                \
    X(buffer_data_const, storage)                                                             \
    X(no_buffer_size, storage)                                                                \
    X(no_upload, storage)                                                                     \
    X(no_download, storage)                                                                   \
    X(no_fill, storage)                                                                       \
    X(no_copy, storage)                                                                       \
    X(no_copy2d, storage)                                                                     \
    X(no_synchronize, storage)                                                                \
    /* GemmBackend */                                                                         \
    X(no_gemm, gemm)                                                                          \
    /* ConvBackend */                                                                         \
    X(no_conv2d_forward, conv)                                                                \
    X(no_conv2d_backward_data, conv)                                                          \
    X(no_conv2d_backward_filter, conv)                                                        \
    /* ElementwiseBackend */                                                                  \
    X(no_bias_act, elementwise)                                                               \
    X(no_bias_act_backward, elementwise)                                                      \
    X(no_scale_channels, elementwise)                                                         \
    X(no_channel_dot, elementwise)                                                            \
    X(no_add_noise, elementwise)                                                              \
    X(no_noise_backward, elementwise)                                                         \
    X(no_axpby, elementwise)                                                                  \
    X(no_mul, elementwise)                                                                    \
    X(no_rsqrt_eps, elementwise)                                                              \
    X(no_square, elementwise)                                                                 \
    X(no_clamp, elementwise)                                                                  \
    X(no_quantize_u8, elementwise)                                                            \
    X(no_group_sumsq, elementwise)                                                            \
    X(no_group_scale_add, elementwise)                                                        \
    /* ReductionBackend */                                                                    \
    X(no_sum, reduction)                                                                      \
    X(sum_returns_void, reduction)                                                            \
    X(no_dot, reduction)                                                                      \
    X(dot_returns_void, reduction)                                                            \
    X(no_sum_rows, reduction)                                                                 \
    X(no_all_finite, reduction)                                                               \
    X(all_finite_not_bool, reduction)                                                         \
    /* ResampleBackend */                                                                     \
    X(no_fir, resample)                                                                       \
    X(no_fir_backward, resample)                                                              \
    X(no_mbstd, resample)                                                                     \
    X(no_mbstd_backward, resample)                                                            \
    /* RandomBackend */                                                                       \
    X(no_normal, random)                                                                      \
    X(no_uniform, random)                                                                     \
    X(no_bits, random)                                                                        \
    /* LossBackend */                                                                         \
    X(no_softplus_loss, loss)                                                                 \
    X(softplus_loss_returns_void, loss)                                                       \
    X(no_bce_logits_loss, loss)                                                               \
    X(bce_logits_loss_returns_void, loss)                                                     \
    X(no_mse_loss, loss)                                                                      \
    X(mse_loss_returns_void, loss)                                                            \
    /* OptimiserBackend */                                                                    \
    X(no_adam_step, optimiser)                                                                \
    X(no_ema, optimiser)

enum Req : int {
#define SGF_X(name, group) name,
    SGF_REQUIREMENTS(SGF_X)
#undef SGF_X
        kRequirementCount
};
static_assert(kRequirementCount <= 64, "the mock's switch is a 64-bit mask");

inline constexpr std::array<Group, kRequirementCount> kGroupOf{
#define SGF_X(name, group) Group::group,
    SGF_REQUIREMENTS(SGF_X)
#undef SGF_X
};
inline constexpr std::array<std::string_view, kRequirementCount> kNameOf{
#define SGF_X(name, group) #name,
    SGF_REQUIREMENTS(SGF_X)
#undef SGF_X
};

constexpr std::uint64_t bit(Req r) { return std::uint64_t(1) << int(r); }

// ------------------------------------------------------------------ 3. the mock backend
// `has(r)` is true unless requirement r is switched off. Members are plain (non-template)
// functions with a trailing requires-clause, so an "off" member does not exist at all.
template <std::uint64_t Off>
struct MockBackend {
    static constexpr bool has(Req r) { return (Off & bit(r)) == 0; }
    template <Req r, class Good, class Bad>
    using pick = std::conditional_t<has(r), Good, Bad>;

    using Scalar = pick<scalar_not_floating, float, int>;
    using S = Scalar;
    using I = std::int64_t;

    struct Movable {};
    struct Immovable {
        Immovable() = default;
        Immovable(Immovable&&) = delete;
        Immovable& operator=(Immovable&&) = delete;
    };
    struct Buffer {
        [[no_unique_address]] pick<buffer_not_movable, Movable, Immovable> pin;
        S* data() requires(has(no_buffer_data) && has(buffer_data_const)) { return nullptr; }
        const S* data() requires(has(no_buffer_data) && !has(buffer_data_const)) { return nullptr; }
        std::size_t size() const requires(has(no_buffer_size)) { return 0; }
    };
    struct NotTheBuffer {};

    // storage
    static constexpr std::string_view name() requires(has(no_name) && has(name_not_string)) { return "mock"; }
    static constexpr int name() requires(has(no_name) && !has(name_not_string)) { return 0; }
    Buffer allocate(std::size_t) requires(has(no_allocate) && has(allocate_wrong_type));  // declared only: never called
    NotTheBuffer allocate(std::size_t) requires(has(no_allocate) && !has(allocate_wrong_type)) { return {}; }
    void upload(const S*, std::size_t, S*) requires(has(no_upload)) {}
    void download(const S*, std::size_t, S*) requires(has(no_download)) {}
    void fill(S*, std::size_t, S) requires(has(no_fill)) {}
    void copy(const S*, S*, std::size_t) requires(has(no_copy)) {}
    void copy2d(I, I, const S*, I, S*, I) requires(has(no_copy2d)) {}
    void synchronize() requires(has(no_synchronize)) {}
    // gemm
    void gemm(bool, bool, I, I, I, S, const S*, I, const S*, I, S, S*, I) requires(has(no_gemm)) {}
    // conv
    void conv2d_forward(const ConvDesc&, S, const S*, const S*, S, S*) requires(has(no_conv2d_forward)) {}
    void conv2d_backward_data(const ConvDesc&, S, const S*, const S*, S, S*) requires(has(no_conv2d_backward_data)) {}
    void conv2d_backward_filter(const ConvDesc&, S, const S*, const S*, S, S*) requires(has(no_conv2d_backward_filter)) {}
    // elementwise
    void bias_act(const Shape&, const S*, const S*, S, Act, S, S*) requires(has(no_bias_act)) {}
    void bias_act_backward(const Shape&, const S*, const S*, Act, S, S*, S*, S, S) requires(has(no_bias_act_backward)) {}
    void scale_channels(const Shape&, const S*, const S*, S*) requires(has(no_scale_channels)) {}
    void channel_dot(const Shape&, const S*, const S*, S, S*) requires(has(no_channel_dot)) {}
    void add_noise(const Shape&, S*, const S*, const S*) requires(has(no_add_noise)) {}
    void noise_backward(const Shape&, const S*, const S*, S, S*) requires(has(no_noise_backward)) {}
    void axpby(I, S, const S*, S, S*) requires(has(no_axpby)) {}
    void mul(I, const S*, const S*, S*) requires(has(no_mul)) {}
    void rsqrt_eps(I, const S*, S, S*) requires(has(no_rsqrt_eps)) {}
    void square(I, const S*, S*) requires(has(no_square)) {}
    void clamp(I, const S*, S, S, S*, S*) requires(has(no_clamp)) {}
    void quantize_u8(I, const S*, S*) requires(has(no_quantize_u8)) {}
    void group_sumsq(I, I, const S*, S, S*) requires(has(no_group_sumsq)) {}
    void group_scale_add(I, I, const S*, const S*, S, S*) requires(has(no_group_scale_add)) {}
    // reductions
    double sum(I, const S*) requires(has(no_sum) && has(sum_returns_void)) { return 0; }
    void sum(I, const S*) requires(has(no_sum) && !has(sum_returns_void)) {}
    double dot(I, const S*, const S*) requires(has(no_dot) && has(dot_returns_void)) { return 0; }
    void dot(I, const S*, const S*) requires(has(no_dot) && !has(dot_returns_void)) {}
    void sum_rows(I, I, const S*, S, S*) requires(has(no_sum_rows)) {}
    bool all_finite(I, const S*) requires(has(no_all_finite) && has(all_finite_not_bool)) { return true; }
    int all_finite(I, const S*) requires(has(no_all_finite) && !has(all_finite_not_bool)) { return 1; }
    // resampling
    void fir(const FirDesc&, const S*, S*) requires(has(no_fir)) {}
    void fir_backward(const FirDesc&, const S*, S*) requires(has(no_fir_backward)) {}
    void mbstd(const Shape&, int, const S*, S*) requires(has(no_mbstd)) {}
    void mbstd_backward(const Shape&, int, const S*, const S*, S*) requires(has(no_mbstd_backward)) {}
    // random
    void normal(const RngKey&, I, S*) requires(has(no_normal)) {}
    void uniform(const RngKey&, I, S*) requires(has(no_uniform)) {}
    void bits(const RngKey&, I, S*) requires(has(no_bits)) {}
    // losses
    double softplus_loss(I, const S*, S, S, S*) requires(has(no_softplus_loss) && has(softplus_loss_returns_void)) { return 0; }
    void softplus_loss(I, const S*, S, S, S*) requires(has(no_softplus_loss) && !has(softplus_loss_returns_void)) {}
    double bce_logits_loss(I, const S*, const S*, S, S*) requires(has(no_bce_logits_loss) && has(bce_logits_loss_returns_void)) {
        return 0;
    }
    void bce_logits_loss(I, const S*, const S*, S, S*) requires(has(no_bce_logits_loss) && !has(bce_logits_loss_returns_void)) {}
    double mse_loss(I, const S*, const S*, S, S*) requires(has(no_mse_loss) && has(mse_loss_returns_void)) { return 0; }
    void mse_loss(I, const S*, const S*, S, S*) requires(has(no_mse_loss) && !has(mse_loss_returns_void)) {}
    // optimiser
    void adam_step(I, S*, const S*, S*, S*, const AdamParams&, I) requires(has(no_adam_step)) {}
    void ema(I, S*, const S*, S) requires(has(no_ema)) {}
};

template <class B>
constexpr bool models(Group g) {
    switch (g) {
        case Group::storage: return StorageBackend<B>;
        case Group::gemm: return GemmBackend<B>;
        case Group::conv: return ConvBackend<B>;
        case Group::elementwise: return ElementwiseBackend<B>;
        case Group::reduction: return ReductionBackend<B>;
        case Group::resample: return ResampleBackend<B>;
        case Group::random: return RandomBackend<B>;
        case Group::loss: return LossBackend<B>;
        case Group::optimiser: return OptimiserBackend<B>;
    }
    return false;
}
inline constexpr std::array kAllGroups{Group::storage,   Group::gemm,     Group::conv,   Group::elementwise, Group::reduction,
                                       Group::resample, Group::random, Group::loss, Group::optimiser};

// The complete mock is a valid backend (otherwise every negative case below would be vacuous).
static_assert(models_every_concept<MockBackend<0>>(), "the complete mock must model every concept");

// Every group has at least one requirement in the list.
consteval bool every_group_has_a_requirement() {
    for (Group g : kAllGroups) {
        bool found = false;
        for (Group h : kGroupOf) found = found || h == g;
        if (!found) return false;
    }
    return true;
}
static_assert(every_group_has_a_requirement());

// Requirement R: removing it breaks exactly its own group (and therefore Backend).
template <int R>
consteval bool breaks_only_its_group() {
    using M = MockBackend<bit(Req(R))>;
    if (Backend<M>) return false;
    for (Group g : kAllGroups)
        if (models<M>(g) != (g != kGroupOf[R])) return false;
    return true;
}
template <int R>
struct Check {
    // On failure the compiler prints Check<R>: R is the requirement's index in SGF_REQUIREMENTS.
    static_assert(breaks_only_its_group<R>(), "removing this requirement must break exactly its concept and Backend");
    static constexpr bool ok = true;
};
template <int... R>
constexpr bool check_all(std::integer_sequence<int, R...>) {
    return (Check<R>::ok && ...);
}
static_assert(check_all(std::make_integer_sequence<int, kRequirementCount>{}));

// A few spelled out, so a reader sees the pattern without expanding the machinery.
static_assert(!GemmBackend<MockBackend<bit(no_gemm)>> && !Backend<MockBackend<bit(no_gemm)>>);
static_assert(!StorageBackend<MockBackend<bit(scalar_not_floating)>>);
static_assert(!ReductionBackend<MockBackend<bit(all_finite_not_bool)>>);
static_assert(!OptimiserBackend<MockBackend<bit(no_ema)>> && ElementwiseBackend<MockBackend<bit(no_ema)>>);
// Two requirements off at once: both groups break.
static_assert(!ConvBackend<MockBackend<bit(no_fir) | bit(no_conv2d_forward)>> &&
              !ResampleBackend<MockBackend<bit(no_fir) | bit(no_conv2d_forward)>>);

}  // namespace sgf::concept_tests

// The real test is that this file compiled; this makes ctest list it and report the counts.
TEST(BackendConcepts, CompileTimeChecksPassed) {
    using namespace sgf::concept_tests;
    EXPECT_EQ(int(kRequirementCount), 55);
    for (int r = 0; r < kRequirementCount; ++r) EXPECT_FALSE(kNameOf[std::size_t(r)].empty());
    SUCCEED() << kRequirementCount << " negative cases checked at compile time";
}
