#pragma once
#include <sgf/io/atomic_file.hpp>
#include <sgf/io/safetensors.hpp>
#include <sgf/io/image.hpp>
#include <sgf/io/datasets.hpp>
#include <sgf/io/model_file.hpp>
