#pragma once
#include <sgf/nets/config.hpp>
#include <sgf/nets/generator.hpp>
#include <sgf/nets/critic.hpp>
