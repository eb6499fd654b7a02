#!/usr/bin/env python3
"""Checks that torch_train_step.py builds the same networks as sgf: loads the parameters that
`sgf_bench_train_step --dump FILE` wrote (after a few training steps, so no parameter is at its
initial value) into the PyTorch G, F and D, runs them on the same inputs (G without noise) and
compares with sgf's outputs; then one G+F step's loss terms and every G and F parameter gradient
(noise strengths zero) against autograd. Also checks that every sgf parameter has a PyTorch counterpart of the
same size and vice versa.

Usage: check_equivalence.py DUMP.safetensors
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

import torch_train_step as tts


def read_safetensors(path):
    with open(path, "rb") as fh:
        (hlen,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(hlen))
        data = fh.read()
    out = {"__metadata__": header.get("__metadata__", {})}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", (name, t["dtype"])
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").copy()).reshape(t["shape"])
    return out


def sgf_names_generator(G, cfg):
    """(torch module, sgf prefix) pairs for the generator."""
    pairs = [(layer, f"G.embed.fc{i}") for i, layer in enumerate(G.embed)]
    pairs.append((G.input, "G.input"))
    for k, (conv, torgb) in enumerate(zip(G.convs, G.torgbs)):
        r = 4 << k
        if k > 0:
            pairs.append((G.ups[k - 1], f"G.b{r}.conv0"))
        pairs.append((conv, f"G.b{r}.conv{1 if k > 0 else 0}"))
        pairs.append((torgb, f"G.b{r}.torgb"))
    return pairs


def sgf_names_critic(C, prefix, cfg):
    pairs = [(C.fromrgb, f"{prefix}.fromrgb")]
    r = cfg["resolution"]
    for blk in C.blocks:
        pairs += [(blk.conv0, f"{prefix}.b{r}.conv0"), (blk.conv1, f"{prefix}.b{r}.conv1"), (blk.skip, f"{prefix}.b{r}.skip")]
        r //= 2
    pairs += [(C.conv4, f"{prefix}.b4.conv"), (C.fc, f"{prefix}.b4.fc"), (C.out, f"{prefix}.b4.out")]
    return pairs


def load(pairs, tensors, used):
    for module, prefix in pairs:
        for pname, p in module.named_parameters():
            key = f"{prefix}.{pname}"
            if key not in tensors:
                raise SystemExit(f"FAIL: PyTorch parameter {key} has no sgf counterpart")
            src = tensors[key]
            if src.numel() != p.numel():
                raise SystemExit(f"FAIL: {key}: sgf has {src.numel()} values, PyTorch {p.numel()}")
            with torch.no_grad():
                p.copy_(src.reshape(p.shape))
            used.add(key)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    t = read_safetensors(sys.argv[1])
    cfg = tts.load_config(t.pop("__metadata__")["sgf.model_config"])
    G = tts.Generator(cfg)
    Fn = tts.Critic(cfg, cfg["z_dim"] + cfg["fingerprint_bits"], mbstd=False)
    D = tts.Critic(cfg, 1, mbstd=True)
    used = set()
    load(sgf_names_generator(G, cfg), t, used)
    load(sgf_names_critic(Fn, "F", cfg), t, used)
    load(sgf_names_critic(D, "D", cfg), t, used)
    unused = [k for k in t if not k.startswith(("in.", "out.", "grad.")) and k not in used]
    if unused:
        raise SystemExit(f"FAIL: sgf parameters without a PyTorch counterpart: {unused[:5]}")
    z, c = t["in.z"].flatten(1), t["in.c"].flatten(1)
    ok = True
    with torch.no_grad():
        w = G.embed(c)
        img = G(z, c, noise=False)
        Gg = tts.Generator(cfg, fused=True)  # the grouped-convolution modulation (--modconv grouped)
        Gg.load_state_dict(G.state_dict())
        outs = {"out.w": w, "out.image": img, "out.image (grouped)": Gg(z, c, noise=False), "out.F": Fn(t["out.image"]), "out.D": D(t["out.image"])}
        for name, got in outs.items():
            ref = t[name.split(" ")[0]].reshape(got.shape)
            err = (got - ref).abs().max().item()
            scale = ref.abs().max().item()
            good = err <= 1e-4 * max(1.0, scale)
            ok &= good
            print(f"{name:20s} max |torch - sgf| = {err:.3g}  (max |sgf| = {scale:.3g})  {'ok' if good else 'MISMATCH'}")
    # One G+F step: the reference-weighted objective of sgf::generator_step_grads (D frozen, noise
    # strengths zero), its four terms and the gradient of every G and F parameter against autograd.
    c2 = t["in.c2"].flatten(1)
    zd = cfg["z_dim"]
    for p in D.parameters():
        p.requires_grad_(False)
    img1, img2 = G(z, c), G(z, c2)
    out = Fn(img1)
    terms = [F.softplus(-D(img1)).mean(), 2.0 * (img1 - img2).square().mean(), 1.0 * (out[:, :zd] - z).square().mean(),
             2.0 * F.binary_cross_entropy_with_logits(out[:, zd:], c)]
    for name, got, ref in zip(("adversarial", "consistency", "latent", "fingerprint"), terms, t["out.losses"].tolist()):
        good = abs(got.item() - ref) <= 1e-4 * max(1.0, abs(ref))
        ok &= good
        print(f"loss {name:14s} torch {got.item():.6g}  sgf {ref:.6g}  {'ok' if good else 'MISMATCH'}")
    sum(terms).backward()
    worst, checked = (0.0, ""), 0
    for module_pairs in (sgf_names_generator(G, cfg), sgf_names_critic(Fn, "F", cfg)):
        for module, prefix in module_pairs:
            for pname, p in module.named_parameters():
                key = f"grad.{prefix}.{pname}"
                if "noise_strength" in key:
                    continue  # depends on the noise draws, which differ between the implementations
                ref = t[key].reshape(p.shape)
                got = p.grad if p.grad is not None else torch.zeros_like(p)
                rel = ((got - ref).norm() / max(ref.norm().item(), 1e-12)).item()
                checked += 1
                if rel > worst[0]:
                    worst = (rel, key)
                if rel > 1e-3:
                    ok = False
                    print(f"{key:40s} relative error {rel:.3g}  MISMATCH")
    print(f"gradients of {checked} G and F parameter tensors: worst relative error {worst[0]:.3g} ({worst[1]})")
    n_params = sum(v.numel() for k, v in t.items() if not k.startswith(("in.", "out.", "grad.")))
    print(f"{len(used)} parameter tensors, {n_params} values, mapped one to one")
    if not ok:
        raise SystemExit("FAIL: the PyTorch model does not match sgf")
    print("equivalence: ok")


if __name__ == "__main__":
    main()
