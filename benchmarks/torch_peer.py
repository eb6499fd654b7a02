#!/usr/bin/python3
"""PyTorch peer of benchmarks/ops (sgf_bench_ops).

Reads the Google Benchmark JSON written by sgf_bench_ops and, for every sgf row, times the same
operation in PyTorch with the same shapes, thread count and number of repetitions, after one untimed
warm-up call; a repetition is the mean of sgf's iteration count, or of fewer calls where PyTorch is
much slower (so that a repetition still takes about 0.2 s); rows where one PyTorch call takes over
1 s get a single timed call (see measure()). Like sgf_bench_ops, the process first puts glibc's
allocator in its long-running state (prime_allocator()). Writes a JSON file that
benchmarks/report.py combines with the sgf results.

What the PyTorch side runs (written the way PyTorch users write these layers):
  conv3x3 fwd   F.conv2d(x, weight * gain, padding=1) under torch.no_grad(),
                gain = 1/sqrt(c_in*9) (the equalised-lr weight scaling, applied per call)
  conv3x3 bwd   torch.autograd.grad of that conv w.r.t. x and weight (retained graph): the data and
                filter gradients, like sgf's conv2d_backward_data + conv2d_backward_filter
  modconv3x3    StyleGAN2(-ADA)'s modulated conv in its non-fused form (the one its PyTorch code uses
                for training): styles = affine(w); demodulation coefficients from the [N, O, I, k, k]
                modulated-weight tensor; x * styles -> conv2d -> * dcoefs; + noise * strength; bias,
                lrelu(0.2) * sqrt(2). fwd under no_grad; bwd = autograd.grad w.r.t. x, w and every
                parameter (retained graph).
  modconv3x3_up the same with conv_transpose2d(stride 2) followed by the [1,3,3,1] FIR blur
                (pad 1, gain 4) as a depthwise conv2d, StyleGAN2's up-sampling conv.
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

NAME_RE = re.compile(r"^(?P<op>conv3x3|modconv3x3_up|modconv3x3)/(?P<dir>fwd|bwd)/(?P<model>[^/]+)/"
                     r"c(?P<cin>\d+)-(?P<cout>\d+)/h(?P<h>\d+)/n(?P<n>\d+)/t(?P<t>\d+)$")


def sgf_rows(path):
    """One entry per sgf row, in run order: name, fields, iterations, repetitions."""
    with open(path) as f:
        data = json.load(f)
    rows, seen = [], set()
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        name = b["run_name"].split("/iterations:")[0]
        if name in seen:
            continue
        seen.add(name)
        m = NAME_RE.match(name)
        if not m:
            continue  # the sgemm roof rows
        rows.append(dict(name=name, op=m["op"], dir=m["dir"], cin=int(m["cin"]), cout=int(m["cout"]),
                         h=int(m["h"]), n=int(m["n"]), threads=int(m["t"]), iters=int(b["iterations"]),
                         reps=int(b.get("repetitions", 1)), w_dim=int(b.get("w_dim", 0))))
    return rows


# ------------------------------------------------------------------------------------------------
# The operations


class EqConv:
    def __init__(self, r, g):
        n, cin, cout, h = r["n"], r["cin"], r["cout"], r["h"]
        self.gain = 1.0 / math.sqrt(cin * 9)
        self.x = torch.randn(n, cin, h, h, generator=g)
        self.weight = torch.randn(cout, cin, 3, 3, generator=g)
        if r["dir"] == "bwd":
            self.x.requires_grad_(True)
            self.weight.requires_grad_(True)
            self.y = F.conv2d(self.x, self.weight * self.gain, padding=1)
            self.dy = torch.randn(self.y.shape, generator=g)

    def fwd(self):
        with torch.no_grad():
            return F.conv2d(self.x, self.weight * self.gain, padding=1)

    def bwd(self):
        return torch.autograd.grad(self.y, (self.x, self.weight), self.dy, retain_graph=True)


class ModConv:
    def __init__(self, r, g):
        n, cin, cout, h, wd = r["n"], r["cin"], r["cout"], r["h"], r["w_dim"]
        self.up = r["op"] == "modconv3x3_up"
        self.cin, self.cout = cin, cout
        bwd = r["dir"] == "bwd"
        # Parameters in sgf's layouts: weight [O, I, 3, 3], or [I, O, 3, 3] (ConvTranspose2d's) for up.
        self.aff_w = torch.randn(cin, wd, generator=g).requires_grad_(bwd)
        self.aff_b = torch.ones(cin).requires_grad_(bwd)
        self.aff_gain = 1.0 / math.sqrt(wd)
        self.weight = torch.randn(*((cin, cout) if self.up else (cout, cin)), 3, 3, generator=g).requires_grad_(bwd)
        self.wgain = 1.0 / math.sqrt(cin * 9)
        self.noise_strength = torch.zeros([]).requires_grad_(bwd)
        self.bias = torch.zeros(cout).requires_grad_(bwd)
        self.x = torch.randn(n, cin, h, h, generator=g).requires_grad_(bwd)
        self.wlat = torch.randn(n, wd, generator=g).requires_grad_(bwd)
        f = torch.tensor([1.0, 3.0, 3.0, 1.0])
        f = torch.outer(f, f)
        self.blur = (f / f.sum() * 4.0).reshape(1, 1, 4, 4).repeat(cout, 1, 1, 1)  # gain 4 for x2 up
        if bwd:
            self.y = self.forward()
            self.dy = torch.randn(self.y.shape, generator=g)
            self.inputs = (self.x, self.wlat, self.aff_w, self.aff_b, self.weight, self.noise_strength, self.bias)

    def forward(self):
        x = self.x
        n = x.shape[0]
        styles = F.linear(self.wlat, self.aff_w * self.aff_gain, self.aff_b)  # [N, I]
        weight = self.weight * self.wgain
        w_oi = weight.transpose(0, 1) if self.up else weight  # [O, I, 3, 3]
        wm = w_oi.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, O, I, 3, 3]
        dcoefs = (wm.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, O]
        x = x * styles.reshape(n, -1, 1, 1)
        if self.up:
            x = F.conv_transpose2d(x, weight, stride=2)  # [N, O, 2H+1, 2W+1]
            x = F.conv2d(F.pad(x, [1, 1, 1, 1]), self.blur, groups=self.cout)  # [N, O, 2H, 2W]
        else:
            x = F.conv2d(x, weight, padding=1)
        x = x * dcoefs.reshape(n, -1, 1, 1)
        noise = torch.randn(n, 1, x.shape[2], x.shape[3])
        x = x + noise * self.noise_strength
        return F.leaky_relu(x + self.bias.reshape(1, -1, 1, 1), 0.2) * math.sqrt(2.0)

    def fwd(self):
        with torch.no_grad():
            return self.forward()

    def bwd(self):
        return torch.autograd.grad(self.y, self.inputs, self.dy, retain_graph=True)


def measure(fn, iters, reps, target_s=0.2, slow_s=1.0):
    """reps repetitions, each the mean of `iters` calls, after one warm-up call. iters is lowered where
    PyTorch is much slower than sgf on a row (a repetition then still takes about target_s), and a row
    whose single call takes over slow_s (PyTorch's reference-GEMM fallbacks) gets one timed call."""
    t0 = time.perf_counter()
    fn()  # warm-up
    warm = time.perf_counter() - t0
    if warm > slow_s:
        iters, reps = 1, 1
    else:
        t0 = time.perf_counter()
        fn()
        est = time.perf_counter() - t0
        iters = max(1, min(iters, math.ceil(target_s / max(est, 1e-9))))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        times.append((time.perf_counter() - t0) / iters)
    return times, iters


def prime_allocator():
    """Allocates and frees a 30 MiB block, which raises glibc's dynamic mmap threshold to 30 MiB (and
    the trim threshold to twice that; the threshold only follows freed blocks up to 32 MiB), the state
    of any long-running process that has freed a large buffer. Without it, a fresh process gives freed
    memory back to the kernel and faults it in again on every call; sgf_bench_ops does the same at
    its start. SGF_BENCH_NO_PRIME=1 skips it in both."""
    t = torch.empty((30 << 20) // 4, dtype=torch.float32)
    t.fill_(0)
    del t


def onednn_isa():
    """The ISA line oneDNN prints in verbose mode, from a one-conv subprocess."""
    code = ("import torch, torch.nn.functional as F\n"
            "with torch.no_grad(): F.conv2d(torch.randn(2, 16, 8, 8), torch.randn(16, 16, 3, 3), padding=1)\n")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, ONEDNN_VERBOSE="1", DNNL_VERBOSE="1")).stdout
        for line in out.splitlines():
            if ",isa:" in line:
                return line.split(",isa:", 1)[1].strip()
    except Exception as e:  # informational only
        return f"unknown ({e})"
    return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sgf", required=True, help="Google Benchmark JSON written by sgf_bench_ops")
    ap.add_argument("--out", required=True, help="where to write the PyTorch timings (JSON)")
    args = ap.parse_args()

    rows = sgf_rows(args.sgf)
    if os.environ.get("SGF_BENCH_NO_PRIME") != "1":
        prime_allocator()
    cap = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
    ctx = dict(torch_version=torch.__version__, aten_cpu_capability=cap[1] if cap else "unknown",
               onednn_isa=onednn_isa(), mkldnn_enabled=torch.backends.mkldnn.is_available())
    results = {}
    for i, r in enumerate(rows):
        torch.set_num_threads(r["threads"])
        g = torch.Generator().manual_seed(1)
        op = EqConv(r, g) if r["op"] == "conv3x3" else ModConv(r, g)
        fn = op.fwd if r["dir"] == "fwd" else op.bwd
        times, iters = measure(fn, r["iters"], r["reps"])
        results[r["name"]] = dict(times_s=times, iters=iters, reps=len(times), threads=torch.get_num_threads())
        print(f"[{i + 1}/{len(rows)}] {r['name']}: {min(times) * 1e3:.3f} ms", file=sys.stderr, flush=True)
        del op
    with open(args.out, "w") as f:
        json.dump(dict(context=ctx, results=results), f, indent=1)


if __name__ == "__main__":
    main()
