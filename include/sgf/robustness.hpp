// Robustness evaluation: image perturbations (sgf::attack::apply on [N, C, H, W] batches in
// [-1, 1]) and model perturbations (sgf::attack::apply on a generator's parameters).
#pragma once
#include <sgf/robustness/image_attacks.hpp>
#include <sgf/robustness/finetune_attack.hpp>
#include <sgf/robustness/model_attacks.hpp>
