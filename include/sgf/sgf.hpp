// sgf: scalable fingerprinting of generative models. Public entry point (backend-neutral): the core,
// layers, networks, model files and images, fingerprints and the registry, decoding. Include a
// backend as well: <sgf/backends/eigen.hpp> (CPU) or <sgf/backends/cuda.cuh> (GPU).
#pragma once
#include <sgf/core/version.hpp>
#include <sgf/core/error.hpp>
#include <sgf/core/sha256.hpp>
#include <sgf/core/text.hpp>
#include <sgf/core/shape.hpp>
#include <sgf/core/descriptors.hpp>
#include <sgf/core/philox.hpp>
#include <sgf/core/concepts.hpp>
#include <sgf/core/tensor.hpp>
#include <sgf/layers.hpp>
#if __has_include(<sgf/io.hpp>)
#include <sgf/io.hpp>
#endif
#if __has_include(<sgf/fingerprint.hpp>)
#include <sgf/fingerprint.hpp>
#endif
#if __has_include(<sgf/nets.hpp>)
#include <sgf/nets.hpp>
#endif
#if __has_include(<sgf/verify/decode.hpp>)
#include <sgf/verify/decode.hpp>
#endif
