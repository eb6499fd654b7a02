#!/usr/bin/env python3
"""Cross-check of the fingerprint-learning ablation (docs/training-log.md) in PyTorch with autograd.

Builds the same 16-px model as examples/ablation/main.cpp from the benchmark's independent PyTorch
implementation (benchmarks/training/torch_train_step.py: same architecture and objective as
sgf::Trainer) and trains only G and F on the reconstruction losses (adversarial weight 0, the D step
skipped), with the same consistency warm-up, learning rate and running bit accuracy as the C++
harness. If autograd reads the bits no faster than sgf, the slow learning is the method's, not a
gradient bug of ours.

With --w-adv > 0 the adversarial loss and the discriminator are on too (D step on fresh fakes and
Fashion-MNIST reals padded to 32x32 and 2x2-averaged to 16x16 as in the C++ harness, lazy R1 with
gamma 0.1 by default every 16 steps via double backward), the consistency warm-up as given.

Usage: /usr/bin/python3 examples/ablation/torch_ablation.py BITS STEPS [--lr 0.002] [--w-latent 0.031]
           [--w-fp 2] [--w-adv 0] [--r1-gamma 0.1] [--consistency-rampup-kimg 1000] [--w-dim W] [--threads 1] [--seed 1]
"""
import gzip
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks", "training"))
import torch_train_step as tts  # noqa: E402


def fashion_mnist_16(path="/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"):
    """The training split as [60000, 1, 16, 16] floats in [-1, 1]: padded to 32 with -1, 2x2 means."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    n = int.from_bytes(raw[4:8], "big")
    x = torch.frombuffer(bytearray(raw[16:16 + n * 784]), dtype=torch.uint8).reshape(n, 1, 28, 28).float() / 127.5 - 1
    x = F.pad(x, [2, 2, 2, 2], value=-1.0)
    return F.avg_pool2d(x, 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bits", type=int)
    ap.add_argument("steps", type=int)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--w-latent", type=float, default=0.031)
    ap.add_argument("--w-fp", type=float, default=2.0)
    ap.add_argument("--w-adv", type=float, default=0.0)
    ap.add_argument("--r1-gamma", type=float, default=0.1)
    ap.add_argument("--consistency-rampup-kimg", type=float, default=1000.0)
    ap.add_argument("--w-dim", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    w_dim = a.w_dim or max(64, a.bits)
    # ModelConfig::tiny() with the C++ harness's changes
    cfg = dict(resolution=16, image_channels=1, fingerprint_bits=a.bits, z_dim=16, w_dim=w_dim, embed_layers=2,
               embed_width=w_dim, embed_lr_mult=0.01, channel_base=256, channel_max=32, mbstd_group=4, fc_width=128)
    G = tts.Generator(cfg)
    Fn = tts.Critic(cfg, cfg["z_dim"] + a.bits, mbstd=False)
    c = 4 / 5  # lazy-regularisation correction with interval 4, as the C++ trainer's G and F optimisers
    opt = [torch.optim.Adam(m.parameters(), lr=a.lr * c, betas=(0.0, 0.99 ** c), eps=1e-8) for m in (G, Fn)]
    n, zd, acc = 16, cfg["z_dim"], 0.5
    if a.w_adv > 0:
        D = tts.Critic(cfg, 1, mbstd=True)
        cd = 16 / 17  # D's lazy-regularisation correction (interval 16)
        opt_d = torch.optim.Adam(D.parameters(), lr=a.lr * cd, betas=(0.0, 0.99 ** cd), eps=1e-8)
        reals = fashion_mnist_16()
    for step in range(1, a.steps + 1):
        kimg = (step - 1) * n / 1000.0
        w_cons = 2.0 * min(1.0, kimg / a.consistency_rampup_kimg) if a.consistency_rampup_kimg > 0 else 2.0
        z = torch.randn(n, zd)
        c1 = torch.randint(0, 2, (n, a.bits)).float()
        c2 = torch.randint(0, 2, (n, a.bits)).float()
        img1, img2 = G(z, c1), G(z, c2)
        out = Fn(img1)
        adv = F.softplus(-D(img1)).mean() if a.w_adv > 0 else torch.zeros(())
        lz = (out[:, :zd] - z).square().mean()
        lc = F.binary_cross_entropy_with_logits(out[:, zd:], c1)
        cons = (img1 - img2).square().mean()
        loss = a.w_adv * adv + w_cons * cons + a.w_latent * lz + a.w_fp * lc
        for o in opt:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opt:
            o.step()
        if a.w_adv > 0:  # D on fresh fakes and a real batch; lazy R1 every 16 steps
            real = reals[torch.randint(0, reals.shape[0], (n,))]
            with torch.no_grad():
                fake = G(torch.randn(n, zd), torch.randint(0, 2, (n, a.bits)).float())
            loss_d = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            if a.r1_gamma > 0 and step % 16 == 0:
                x = real.detach().requires_grad_(True)
                (g,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
                opt_d.zero_grad(set_to_none=True)
                (g.square().sum([1, 2, 3]).mean() * (a.r1_gamma / 2) * 16).backward()
                opt_d.step()
        bit_acc = ((out[:, zd:] > 0).float() == c1).float().mean().item()
        acc = 0.98 * acc + 0.02 * bit_acc
        if step % 500 == 0:
            print(f"torch bits {a.bits} lr {a.lr} w_latent {a.w_latent} w {w_dim} | step {step} acc {acc:.3f} "
                  f"latent MSE {lz.item():.3f} consistency MSE {cons.item():.4f}", flush=True)


if __name__ == "__main__":
    main()
