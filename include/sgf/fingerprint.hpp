#pragma once
#include <sgf/fingerprint/fingerprint.hpp>
#include <sgf/fingerprint/statistics.hpp>
#include <sgf/fingerprint/attribution.hpp>
#include <sgf/fingerprint/registry.hpp>
