#!/usr/bin/env python3
"""One training iteration of the scalable-fingerprinting GAN written as a PyTorch user would write it.

The same model and objective as sgf::Trainer<EigenCpu>::step for a preset (docs/architecture.md):

  E   8 equalised-lr dense layers, lr_mult 0.01, lrelu*sqrt(2)       c (bits) -> w
  G   dense z -> 4x4, modulated 3x3 convs (demodulated, noise, bias, lrelu*sqrt(2)), up-convs as a
      stride-2 transposed conv + FIR [1,3,3,1] blur, ToRGB 1x1 (modulated, not demodulated) with
      the skip architecture (rgb = up2(rgb) + torgb(x))
  F/D fromrgb 1x1, residual blocks (3x3 conv, blur + stride-2 3x3 conv, 1x1 down skip, / sqrt 2),
      [D: minibatch stddev, group 4], 3x3 conv, dense C*16 -> fc_width, dense -> outputs
  L_G+F = softplus(-D(img1)) + 2 mse(img1, img2) + 1 mse(z_hat, z) + 2 BCE(logits, c1)
  L_D   = softplus(D(fake)) + softplus(-D(real));  every 16 steps R1 (gamma/2) E||grad_x D||^2 * 16
          with autograd double backward (create_graph=True)
  three Adam optimisers (beta1 0, beta2 0.99, lazy-regularisation corrected), EMA copy of G.

Usage: torch_train_step.py [--threads 1] [--batch 16] [--warmup 4] [--steps 32] [--repeats 3]
                           [--modconv scale|grouped] [--config JSON_OR_FILE] [--json] [--device cpu|cuda]
--device cuda runs on the GPU with TF32 allowed for matmuls and convolutions and cudnn.benchmark on (the
settings a PyTorch user tuning for speed picks; sgf's fast mode also uses TF32); each step ends with
loss.item(), which synchronises.
--modconv scale (default) modulates by scaling the activations before and after a shared-weight
convolution (StyleGAN2-ADA's training path, fused_modconv=False); grouped builds per-sample weights
and runs one grouped convolution (StyleGAN2's original form). Both compute the same function.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)

# The `small` preset as of this writing (include/sgf/nets/config.hpp). run.sh passes the preset's
# current values with --config (from `sgf_bench_train_step --print-config`), so both sides always
# build the same shapes.
SMALL = dict(resolution=32, image_channels=1, fingerprint_bits=128, z_dim=64, w_dim=512, embed_layers=2,
             embed_width=512, embed_lr_mult=0.01, channel_base=1024, channel_max=64, mbstd_group=4, fc_width=512)
CONFIG_KEYS = tuple(SMALL)


def load_config(text):
    """A ModelConfig as JSON text or a path to a JSON file (sgf's to_json form)."""
    import os
    if os.path.exists(text):
        with open(text) as fh:
            text = fh.read()
    j = json.loads(text)
    return {k: j[k] for k in CONFIG_KEYS}


def channels_at(cfg, r):
    return max(1, min(cfg["channel_base"] // r, cfg["channel_max"]))


def lrelu(x):
    return F.leaky_relu(x, 0.2) * SQRT2


# ---------------------------------------------------------------------------------------- resampling
_F1 = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8.0
FIR = torch.outer(_F1, _F1)  # 4x4, symmetric (correlation == convolution)


def upfirdn2d(x, up=1, down=1, pad=(0, 0), gain=1.0):
    """StyleGAN2's upfirdn2d with the [1,3,3,1] filter: zero-insert, pad (p0, p1), filter, decimate."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, [p0, p1, p0, p1])
    f = (FIR * gain).to(x.device, x.dtype)[None, None].expand(c, 1, 4, 4)
    return F.conv2d(x, f, stride=down, groups=c)


# ---------------------------------------------------------------------------------------- layers
class EqualLinear(nn.Module):
    def __init__(self, fin, fout, lr_mult=1.0, bias_init=0.0, act=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fout, fin) / lr_mult)
        self.bias = nn.Parameter(torch.full([fout], float(bias_init) / lr_mult))
        self.scale = lr_mult / math.sqrt(fin)
        self.lr_mult = lr_mult
        self.act = act

    def forward(self, x):
        x = F.linear(x.flatten(1), self.weight * self.scale, self.bias * self.lr_mult)
        return lrelu(x) if self.act else x


class EqualConv2d(nn.Module):
    """Conv with equalised lr; down=True: blur + 3x3 stride-2 conv, or down2 + 1x1 conv."""

    def __init__(self, cin, cout, k, down=False, bias=True, act=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale = 1.0 / math.sqrt(cin * k * k)
        self.k, self.down, self.act = k, down, act

    def forward(self, x):
        w = self.weight * self.scale
        if self.down and self.k > 1:
            p = 2 + self.k - 1
            x = upfirdn2d(x, pad=((p + 1) // 2, p // 2))
            x = F.conv2d(x, w, self.bias, stride=2)
        elif self.down:
            x = upfirdn2d(x, down=2, pad=(1, 1))
            x = F.conv2d(x, w, self.bias)
        else:
            x = F.conv2d(x, w, self.bias, padding=self.k // 2)
        return lrelu(x) if self.act else x


class ModConv(nn.Module):
    def __init__(self, cin, cout, k, w_dim, demodulate=True, up=False, noise=True, act=True, fused=False):
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cin, cout, k, k) if up else torch.randn(cout, cin, k, k))
        self.noise_strength = nn.Parameter(torch.zeros([])) if noise else None
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = 1.0 / math.sqrt(cin * k * k)
        self.cin, self.cout, self.k = cin, cout, k
        self.demodulate, self.up, self.act, self.fused = demodulate, up, act, fused

    def forward(self, x, w, noise=True):
        n, _, h, wd = x.shape
        s = self.affine(w)                                   # [N, C_in]
        weight = self.weight * self.scale
        wo = weight.transpose(0, 1) if self.up else weight   # [C_out, C_in, k, k]
        d = None
        if self.demodulate:                                  # [N, C_out]
            d = (s.square() @ wo.square().sum([2, 3]).t() + 1e-8).rsqrt()
        if not self.fused:
            x = x * s[:, :, None, None]
            if self.up:
                x = upfirdn2d(F.conv_transpose2d(x, weight, stride=2), pad=(1, 1), gain=4.0)
            else:
                x = F.conv2d(x, weight, padding=self.k // 2)
            if d is not None:
                x = x * d[:, :, None, None]
        else:
            ww = wo[None] * s[:, None, :, None, None]        # [N, C_out, C_in, k, k]
            if d is not None:
                ww = ww * d[:, :, None, None, None]
            x = x.reshape(1, n * self.cin, h, wd)
            if self.up:
                ww = ww.transpose(1, 2).reshape(n * self.cin, self.cout, self.k, self.k)
                x = F.conv_transpose2d(x, ww, stride=2, groups=n)
                x = upfirdn2d(x, pad=(1, 1), gain=4.0)
            else:
                x = F.conv2d(x, ww.reshape(n * self.cout, self.cin, self.k, self.k), padding=self.k // 2, groups=n)
            x = x.reshape(n, self.cout, x.shape[2], x.shape[3])
        if self.noise_strength is not None and noise:
            x = x + torch.randn(n, 1, x.shape[2], x.shape[3]) * self.noise_strength
        x = x + self.bias[None, :, None, None]
        return lrelu(x) if self.act else x


# ---------------------------------------------------------------------------------------- networks
class Generator(nn.Module):
    def __init__(self, cfg, fused=False):
        super().__init__()
        layers, fin = [], cfg["fingerprint_bits"]
        for i in range(cfg["embed_layers"]):
            fout = cfg["w_dim"] if i + 1 == cfg["embed_layers"] else cfg["embed_width"]
            layers.append(EqualLinear(fin, fout, lr_mult=cfg["embed_lr_mult"], act=True))
            fin = fout
        self.embed = nn.Sequential(*layers)
        self.c4 = channels_at(cfg, 4)
        self.input = EqualLinear(cfg["z_dim"], self.c4 * 16, act=True)
        wd, ci = cfg["w_dim"], cfg["image_channels"]
        self.ups, self.convs, self.torgbs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        prev, r = self.c4, 4
        while r <= cfg["resolution"]:
            ch = channels_at(cfg, r)
            if r > 4:
                self.ups.append(ModConv(prev, ch, 3, wd, up=True, fused=fused))
            self.convs.append(ModConv(ch, ch, 3, wd, fused=fused))
            self.torgbs.append(ModConv(ch, ci, 1, wd, demodulate=False, noise=False, act=False, fused=fused))
            prev, r = ch, r * 2

    def forward(self, z, c, noise=True):
        w = self.embed(c)
        x = self.input(z).reshape(z.shape[0], self.c4, 4, 4)
        x = self.convs[0](x, w, noise)
        rgb = self.torgbs[0](x, w)
        for up, conv, torgb in zip(self.ups, self.convs[1:], self.torgbs[1:]):
            x = conv(up(x, w, noise), w, noise)
            rgb = upfirdn2d(rgb, up=2, pad=(2, 1), gain=4.0) + torgb(x, w)
        return rgb


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv0 = EqualConv2d(cin, cin, 3)
        self.conv1 = EqualConv2d(cin, cout, 3, down=True)
        self.skip = EqualConv2d(cin, cout, 1, down=True, bias=False, act=False)

    def forward(self, x):
        return (self.conv1(self.conv0(x)) + self.skip(x)) * (1.0 / SQRT2)


def minibatch_stddev(x, group):
    n, c, h, w = x.shape
    g = min(group, n)
    y = x.reshape(g, -1, c, h, w)                   # sample n = g_index * M + m
    y = (y - y.mean(0)).square().mean(0)
    y = (y + 1e-8).sqrt().mean([1, 2, 3])           # [M]
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)   # [N, 1, H, W]
    return torch.cat([x, y], 1)


class Critic(nn.Module):
    """Decoder F (outputs z_dim + bits) or discriminator D (1 output, minibatch stddev)."""

    def __init__(self, cfg, outputs, mbstd):
        super().__init__()
        r = cfg["resolution"]
        self.fromrgb = EqualConv2d(cfg["image_channels"], channels_at(cfg, r), 1)
        blocks = []
        while r > 4:
            blocks.append(ResBlock(channels_at(cfg, r), channels_at(cfg, r // 2)))
            r //= 2
        self.blocks = nn.Sequential(*blocks)
        c4 = channels_at(cfg, 4)
        self.mbstd = cfg["mbstd_group"] if mbstd else 0
        self.conv4 = EqualConv2d(c4 + (1 if mbstd else 0), c4, 3)
        self.fc = EqualLinear(c4 * 16, cfg["fc_width"], act=True)
        self.out = EqualLinear(cfg["fc_width"], outputs)

    def forward(self, img):
        x = self.blocks(self.fromrgb(img))
        if self.mbstd:
            x = minibatch_stddev(x, self.mbstd)
        return self.out(self.fc(self.conv4(x)))


# ---------------------------------------------------------------------------------------- training
class Trainer:
    def __init__(self, cfg, batch, fused=False, lr=0.002, r1_gamma=0.1, g_reg=4, d_reg=16, ema_kimg=10.0,
                 ema_rampup=0.05, weights=(1.0, 2.0, 1.0, 2.0)):
        self.cfg, self.batch = cfg, batch
        self.G = Generator(cfg, fused)
        self.G_ema = Generator(cfg, fused).requires_grad_(False)
        self.G_ema.load_state_dict(self.G.state_dict())
        self.Fn = Critic(cfg, cfg["z_dim"] + cfg["fingerprint_bits"], mbstd=False)
        self.D = Critic(cfg, 1, mbstd=True)

        def adam(params, k):
            c = k / (k + 1)
            return torch.optim.Adam(params, lr=lr * c, betas=(0.0 ** c, 0.99 ** c), eps=1e-8)

        self.optG, self.optF, self.optD = adam(self.G.parameters(), g_reg), adam(self.Fn.parameters(), g_reg), \
            adam(self.D.parameters(), d_reg)
        self.r1_gamma, self.d_reg, self.ema_kimg, self.ema_rampup = r1_gamma, d_reg, ema_kimg, ema_rampup
        self.w_adv, self.w_cons, self.w_z, self.w_c = weights
        self.step_count = 0

    def draw(self):
        n, cfg = self.batch, self.cfg
        z = torch.randn(n, cfg["z_dim"])
        c1 = torch.randint(0, 2, (n, cfg["fingerprint_bits"])).float()
        c2 = torch.randint(0, 2, (n, cfg["fingerprint_bits"])).float()
        return z, c1, c2

    def step(self, real):
        zd = self.cfg["z_dim"]
        # (1) G + F on the joint objective; D frozen
        z, c1, c2 = self.draw()
        self.D.requires_grad_(False)
        img1, img2 = self.G(z, c1), self.G(z, c2)
        out = self.Fn(img1)
        loss = (self.w_adv * F.softplus(-self.D(img1)).mean()
                + self.w_cons * (img1 - img2).square().mean()
                + self.w_z * (out[:, :zd] - z).square().mean()
                + self.w_c * F.binary_cross_entropy_with_logits(out[:, zd:], c1))
        self.optG.zero_grad(set_to_none=True)
        self.optF.zero_grad(set_to_none=True)
        loss.backward()
        self.optG.step()
        self.optF.step()
        self.D.requires_grad_(True)
        # (2) D on fresh fakes and the real batch
        z, c1, _ = self.draw()
        with torch.no_grad():
            fake = self.G(z, c1)
        loss_d = F.softplus(self.D(fake)).mean() + F.softplus(-self.D(real)).mean()
        self.optD.zero_grad(set_to_none=True)
        loss_d.backward()
        self.optD.step()
        # (3) lazy R1 with double backward
        if self.d_reg > 0 and self.step_count % self.d_reg == 0:
            x = real.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.D(x).sum(), x, create_graph=True)
            penalty = g.square().sum([1, 2, 3]).mean() * (self.r1_gamma / 2)
            self.optD.zero_grad(set_to_none=True)
            (penalty * self.d_reg).backward()
            self.optD.step()
        self.step_count += 1
        # EMA of G
        images = self.step_count * self.batch
        half_life = self.ema_kimg * 1000.0
        if self.ema_rampup > 0:
            half_life = min(half_life, images * self.ema_rampup)
        beta = 0.5 ** (self.batch / half_life)
        with torch.no_grad():
            for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
                pe.copy_(p.lerp(pe, beta))
        return loss.item(), loss_d.item()


def blas_library():
    """The BLAS shared library this process has loaded (PyTorch's dense layers run on it)."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    try:
        with open("/proc/self/maps") as fh:
            libs = {line.split()[-1] for line in fh if "blas" in line.lower() and ".so" in line}
        return ",".join(sorted(libs)) or "none"
    except OSError:
        return "unknown"


def cpu_sample():
    """(machine-wide busy clock ticks, this process's CPU seconds): see others_cores."""
    busy = 0.0
    try:
        with open("/proc/stat") as fh:
            v = [float(x) for x in fh.readline().split()[1:9]]
        busy = sum(v) - v[3] - v[4]
    except (OSError, ValueError, IndexError):
        pass
    return busy, time.process_time()


def others_cores(a, b, wall_s):
    """CPU cores' worth of time that OTHER processes used between two samples wall_s apart."""
    import os
    tick = os.sysconf("SC_CLK_TCK")
    return max(0.0, (b[0] - a[0]) / tick / wall_s - (b[1] - a[1]) / wall_s)


def count(m):
    return sum(p.numel() for p in m.parameters())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--modconv", choices=["scale", "grouped"], default="scale")
    ap.add_argument("--config", help="sgf ModelConfig JSON (text or file); default: the small preset above")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    if a.device != "cpu":
        torch.set_default_device(a.device)  # PyTorch >= 2.0 (Debian's 1.13 runs the CPU path only)
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(1)
    cfg = load_config(a.config) if a.config else SMALL
    tr = Trainer(cfg, a.batch, fused=(a.modconv == "grouped"))
    pG, pF, pD = count(tr.G), count(tr.Fn), count(tr.D)
    r = cfg["resolution"]
    real = torch.sin(0.37 * torch.arange(a.batch * cfg["image_channels"] * r * r, dtype=torch.float32)).reshape(
        a.batch, cfg["image_channels"], r, r)

    for _ in range(a.warmup):
        tr.step(real)
    windows, plain, r1 = [], [], []
    c0, m0 = cpu_sample(), time.perf_counter()
    for _ in range(a.repeats):
        w0 = time.perf_counter()
        for _ in range(a.steps):
            has_r1 = tr.d_reg > 0 and tr.step_count % tr.d_reg == 0
            t0 = time.perf_counter()
            tr.step(real)
            (r1 if has_r1 else plain).append((time.perf_counter() - t0) * 1e3)
        windows.append((time.perf_counter() - w0) * 1e3 / a.steps)
    c1 = cpu_sample()
    others = others_cores(c0, c1, time.perf_counter() - m0)
    cpu_ms = 1e3 * (c1[1] - c0[1]) / (a.steps * a.repeats)
    med = sorted(windows)[len(windows) // 2] if len(windows) % 2 else \
        0.5 * (sorted(windows)[len(windows) // 2 - 1] + sorted(windows)[len(windows) // 2])
    mean = lambda v: sum(v) / len(v) if v else 0.0
    blas = blas_library()
    if a.json:
        print(json.dumps({"impl": "torch", "torch": torch.__version__, "device": a.device, "blas": blas, "modconv": a.modconv, "batch": a.batch,
                          "config": cfg,
                          "threads": a.threads, "params_G": pG, "params_F": pF, "params_D": pD,
                          "ms_per_iter": round(med, 3), "window_ms": [round(w, 3) for w in windows],
                          "plain_step_ms": round(mean(plain), 3), "r1_step_ms": round(mean(r1), 3),
                          "r1_steps": len(r1), "steps": len(plain) + len(r1), "others_cores": round(others, 2),
                          "cpu_ms_per_iter": round(cpu_ms, 3)}))
    else:
        print(f"PyTorch {torch.__version__} train step  modconv={a.modconv} batch={a.batch} threads={a.threads} "
              f"device={a.device}")
        print(f"BLAS: {blas}")
        print(f"parameters: G (incl. E) {pG}  F {pF}  D {pD}  total {pG + pF + pD} (+ EMA copy of G)")
        print(f"windows of {a.steps} steps (ms/iter): " + "  ".join(f"{w:.1f}" for w in windows))
        print(f"median ms/iter: {med:.1f}   plain step {mean(plain):.1f} ms, R1 step {mean(r1):.1f} ms "
              f"({len(r1)} of {len(plain) + len(r1)} steps)")
        print(f"CPU time {cpu_ms:.1f} ms/iter (all threads); other processes used {others:.2f} CPU cores meanwhile")


if __name__ == "__main__":
    main()
