#!/usr/bin/env python3
"""The PyTorch peer of sgf_bench_deployment's decode rows: the decoder F as a PyTorch user would run it.

F is benchmarks/training/torch_train_step.py's Critic (the same architecture as sgf's, checked against
sgf by check_equivalence.py) with z_dim + fingerprint_bits outputs, run under torch.inference_mode()
on random images in [-1, 1]; each run also thresholds the fingerprint logits into bits and copies the
outputs to a NumPy array, as sgf::decode_batch copies them to the host. Per image, median of --runs
after one warm-up, for every thread count and batch size.

Usage: torch_decode.py --preset NAME --config JSON [--threads 1,2] [--batches 1,16] [--runs 3]
Prints "decode ..." lines and "RESULT torch_decode PRESET THREADS BATCH MS_PER_IMAGE".
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "training"))
import torch  # noqa: E402
from torch_train_step import Critic, load_config  # noqa: E402


def int_list(text):
    return [int(v) for v in text.split(",")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", required=True)
    ap.add_argument("--config", required=True, help="sgf ModelConfig JSON (the CONFIG line of sgf_bench_deployment)")
    ap.add_argument("--threads", type=int_list, default=[1, 2])
    ap.add_argument("--batches", type=int_list, default=[1, 16])
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    cfg = load_config(a.config)
    z, bits, r, ch = cfg["z_dim"], cfg["fingerprint_bits"], cfg["resolution"], cfg["image_channels"]
    torch.manual_seed(1)
    F = Critic(cfg, z + bits, mbstd=False).eval()
    for t in a.threads:
        torch.set_num_threads(t)
        for n in a.batches:
            x = torch.rand(n, ch, r, r) * 2 - 1

            def run():
                with torch.inference_mode():
                    out = F(x)
                    logits = out[:, z:]
                    return (logits > 0).numpy(), out.numpy()

            run()  # warm-up
            ms = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                run()
                ms.append((time.perf_counter() - t0) * 1e3)
            per = statistics.median(ms) / n
            print(f"decode {a.preset:9s} {t} thread{' ' if t == 1 else 's'}, batch {n:3d}: {per:8.3f} ms per image "
                  f"({1000.0 / per:.1f} images/s; median of {a.runs} runs) [PyTorch {torch.__version__}]")
            print(f"RESULT torch_decode {a.preset} {t} {n} {per:.4f}", flush=True)


if __name__ == "__main__":
    main()
