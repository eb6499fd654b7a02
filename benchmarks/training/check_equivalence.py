#!/usr/bin/env python3
"""Checks that torch_train_step.py builds the same networks as sgf: loads the parameters that
`sgf_bench_train_step --dump FILE` wrote (after a few training steps, so no parameter is at its
initial value) into the PyTorch G, F and D, runs them on the same inputs (G without noise) and
compares with sgf's outputs; then one G+F step's loss terms and every G and F parameter gradient
(noise strengths zero) against autograd, and D's logistic-loss and R1 gradients. Also checks that every sgf parameter has a PyTorch counterpart of the
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


def compare_grads(t, prefix, module_pairs, tol, skip=()):
    """Compares autograd's gradients (p.grad of each module parameter) with sgf's (`prefix`.name in the
    dump): relative error = norm of the difference over the norm of autograd's gradient. Tensors whose
    autograd gradient is ~0 (e.g. R1 of biases after the last kink) must be ~0 in sgf too. Prints each
    mismatch; returns ((worst relative error, its name), number of tensors compared); a zero-gradient
    mismatch counts as relative error inf."""
    pairs = [(f"{mprefix}.{pname}", p) for module, mprefix in module_pairs for pname, p in module.named_parameters()
             if not any(s in pname for s in skip)]
    largest = max((p.grad.norm().item() if p.grad is not None else 0.0) for _, p in pairs)
    worst, n = (0.0, ""), 0
    for name, p in pairs:
        ref = t[f"{prefix}.{name}"].reshape(p.shape)
        got = p.grad if p.grad is not None else torch.zeros_like(p)
        if got.norm().item() <= 1e-9 * largest:
            if ref.norm().item() > 1e-6 * largest:
                worst = (float("inf"), name)
                print(f"{prefix}.{name:30s} is {ref.norm().item():.3g} in sgf, ~0 in PyTorch  MISMATCH")
            continue
        rel = ((got - ref).norm() / got.norm()).item()
        n += 1
        if rel > worst[0]:
            worst = (rel, name)
        if rel > tol:
            print(f"{prefix}.{name:30s} relative error {rel:.3g}  MISMATCH")
    return worst, n


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
    unused = [k for k in t if not k.startswith(("in.", "out.", "grad")) and k not in used]
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
    (w_gf, n_gf) = compare_grads(t, "grad", sgf_names_generator(G, cfg) + sgf_names_critic(Fn, "F", cfg), 1e-3,
                                 skip=("noise_strength",))  # noise strengths: their gradient depends on the noise draws
    ok &= w_gf[0] <= 1e-3
    print(f"gradients of {n_gf} G and F parameter tensors: worst relative error {w_gf[0]:.3g} ({w_gf[1]})")

    # D's logistic loss on sgf's fakes and the fixed real batch, then R1 (gamma 1): D's gradients.
    # sgf's R1 gradient is a central difference of first-order gradients computed on a float64 copy
    # of D (R1InFloat64, what the trainer uses), autograd's a double backward in float32.
    for p in D.parameters():
        p.requires_grad_(True)
    fake, real = t["out.image"].reshape(img1.shape), t["in.real"].reshape(img1.shape)
    d_fake, d_real, r1_ref = t["out.d_losses"].tolist()

    D.zero_grad(set_to_none=True)
    lf, lr_ = F.softplus(D(fake)).mean(), F.softplus(-D(real)).mean()
    (lf + lr_).backward()
    good = abs(lf.item() - d_fake) <= 1e-4 * max(1.0, abs(d_fake)) and abs(lr_.item() - d_real) <= 1e-4 * max(1.0, abs(d_real))
    ok &= good
    (w_d, n_d) = compare_grads(t, "grad_d", sgf_names_critic(D, "D", cfg), 1e-3)
    ok &= w_d[0] <= 1e-3
    print(f"D loss fake/real torch {lf.item():.6g}/{lr_.item():.6g}  sgf {d_fake:.6g}/{d_real:.6g}  {'ok' if good else 'MISMATCH'}; "
          f"gradients of {n_d} D tensors: worst relative error {w_d[0]:.3g} ({w_d[1]})")
    D.zero_grad(set_to_none=True)
    x = real.clone().requires_grad_(True)
    (gx,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    penalty = gx.square().sum([1, 2, 3]).mean() * 0.5
    penalty.backward()
    good = abs(penalty.item() - r1_ref) <= 1e-3 * max(1e-3, abs(r1_ref))
    ok &= good
    (w_r, n_r) = compare_grads(t, "grad_r1", sgf_names_critic(D, "D", cfg), 1e-3)
    ok &= w_r[0] <= 1e-3
    print(f"R1 penalty torch {penalty.item():.6g}  sgf {r1_ref:.6g}  {'ok' if good else 'MISMATCH'}; "
          f"gradients of {n_r} D tensors (float64 central difference vs double backward): worst relative error {w_r[0]:.3g} ({w_r[1]})")
    n_params = sum(v.numel() for k, v in t.items() if not k.startswith(("in.", "out.", "grad")))
    print(f"{len(used)} parameter tensors, {n_params} values, mapped one to one")
    if not ok:
        raise SystemExit("FAIL: the PyTorch model does not match sgf")
    print("equivalence: ok")


if __name__ == "__main__":
    main()
