#!/usr/bin/python3
"""Combines sgf_bench_ops' Google Benchmark JSON and torch_peer.py's JSON into one Markdown table.

Times are the best (minimum) repetition of each row, a repetition being the mean over its calls;
GFLOP/s = the convolution's FLOPs / that time. The roof is the Eigen SGEMM row with the same thread
count from the same sgf run. sgf/torch is the time ratio: below 1 means sgf is faster.
"""
import argparse
import json
import math
import re
import sys
from collections import defaultdict

NAME_RE = re.compile(r"^(?P<op>conv3x3|modconv3x3_up|modconv3x3)/(?P<dir>fwd|bwd)/(?P<model>[^/]+)/"
                     r"c(?P<cin>\d+)-(?P<cout>\d+)/h(?P<h>\d+)/n(?P<n>\d+)/t(?P<t>\d+)$")
TO_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def load_sgf(path):
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        name = b["run_name"].split("/iterations:")[0]
        r = rows.setdefault(name, dict(times=[], flop=b["flop"], threads=int(b["threads"]), iters=int(b["iterations"])))
        r["times"].append(b["real_time"] * TO_SECONDS[b["time_unit"]])
    return data["context"], rows


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("sgf_json")
    ap.add_argument("torch_json", nargs="?", help="torch_peer.py output; without it the torch columns are empty")
    args = ap.parse_args()

    ctx, rows = load_sgf(args.sgf_json)
    tctx, tres = {}, {}
    if args.torch_json:
        with open(args.torch_json) as f:
            peer = json.load(f)
        tctx, tres = peer["context"], peer["results"]

    roof = {}  # threads -> (GFLOP/s, size): the better of the SGEMM rows run first and last
    for name, r in rows.items():
        if name.startswith("sgemm/"):
            g = r["flop"] / min(r["times"]) * 1e-9
            if g > roof.get(r["threads"], (0, ""))[0]:
                roof[r["threads"]] = (g, name.split("/")[1])

    out = []
    p = out.append
    p(f"CPU: {ctx.get('cpu_model', '?')}, {ctx.get('num_cpus', '?')} logical CPUs "
      f"(L2 {', '.join(str(c['size'] // 1024) + ' KiB' for c in ctx.get('caches', []) if c['level'] == 2)[:40]}"
      f", L3 {', '.join(str(c['size'] // 1024 // 1024) + ' MiB' for c in ctx.get('caches', []) if c['level'] == 3)[:40]})")
    p(f"sgf build: ISA {ctx.get('sgf_isa', '?')}; Eigen {ctx.get('eigen_version', '?')} "
      f"({ctx.get('eigen_simd', '?')}); {ctx.get('compiler', '?')}")
    if tctx:
        p(f"PyTorch {tctx['torch_version']}: oneDNN ISA {tctx['onednn_isa']}; ATen CPU capability "
          f"{tctx['aten_cpu_capability']}")
    else:
        p("PyTorch: not run")
    for t in sorted(roof):
        p(f"Eigen SGEMM roof, {roof[t][1]}^3, {t} thread{'s' if t > 1 else ''}: {roof[t][0]:.1f} GFLOP/s "
          f"(best of the runs at the start and the end)")
    p("")
    p("| op | pass | model | C_in->C_out | H (in->out) | N | thr | sgf ms | sgf GFLOP/s | roof GFLOP/s | % roof "
      "| torch ms | torch GFLOP/s | sgf/torch |")
    p("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios = defaultdict(list)
    for name, r in rows.items():
        m = NAME_RE.match(name)
        if not m:
            continue
        t = int(m["t"])
        best = min(r["times"])
        gf = r["flop"] / best * 1e-9
        rf = roof.get(t, (float("nan"),))[0]  # nan when a filter left the roof rows out
        h = int(m["h"])
        hs = f"{h}->{2 * h}" if m["op"] == "modconv3x3_up" else f"{h}"
        tr = tres.get(name)
        if tr:
            tb = min(tr["times_s"])
            slow = "*" if tr["reps"] == 1 else ""
            ratio = best / tb
            ratios[(m["op"], m["dir"], t)].append(ratio)
            tcols = f"{tb * 1e3:.3f}{slow} | {r['flop'] / tb * 1e-9:.1f} | {ratio:.2f}"
        else:
            tcols = "- | - | -"
        p(f"| {m['op']} | {m['dir']} | {m['model']} | {m['cin']}->{m['cout']} | {hs} | {m['n']} | {t} "
          f"| {best * 1e3:.3f} | {gf:.1f} | {rf:.1f} | {100 * gf / rf:.0f}% | {tcols} |")
    p("")
    if any(tr["reps"] == 1 for tr in tres.values()):
        p("\\* one timed PyTorch call (a single call took over 1 s).")
        p("")
    p("Geometric mean of sgf/torch per group (below 1: sgf faster):")
    p("")
    p("| op | pass | thr | rows | geomean sgf/torch |")
    p("|---|---|---:|---:|---:|")
    for (op, d, t), v in sorted(ratios.items()):
        p(f"| {op} | {d} | {t} | {len(v)} | {geomean(v):.2f} |")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
