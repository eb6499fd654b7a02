"""How strongly each fingerprint bit enters the generator through the embedding E, and how well each
bit is read (docs/training-log.md, session 30). Uses the numpy reader of examples/numpy_reference.

  python3 embedding_balance.py analyse MODEL EVAL_JSON
      per-bit sensitivity of w = E(c) (mean relative change of w when one bit flips, 40 random codes),
      the norm of each bit's column in E's first layer, and their correlation with the per-bit accuracy
      of `sgf --json eval --model MODEL` (its per_bit_accuracy_png, saved as EVAL_JSON)
  python3 embedding_balance.py equalise SRC DST [median|max] [POWER]
      a copy of meta model SRC whose E.fc0 column k is scaled by g_k = (target / S_k)^POWER about the
      bits' mean (c - 1/2), so that every bit moves w by about the same relative amount
  python3 embedding_balance.py embed-lr SRC DST MULT
      a copy of SRC with E's learning-rate multiplier MULT, its stored weights rescaled so that E
      computes the same function (W = V mult / sqrt(in), b mult)
  python3 embedding_balance.py conditioning MODEL [EVAL_JSON]
      how independently the bits move E's layers and the styles: for random codes, the matrix of
      changes when each bit flips (columns), its condition number and the number of directions that
      hold 90% / 99% of its energy; with EVAL_JSON, the correlation of per-bit accuracy with each
      bit's change and with the part of it no other bit's change can mimic. MODEL may be a
      checkpoint (its live G is analysed)
  python3 embedding_balance.py conditioning-fresh LAYERS WIDTH W_DIM [BITS]
      the same for w of a freshly initialised E (stored weights N(0, 1/lr_mult^2), zero biases, lr
      multiplier 0.01; median of 5 random codes)
  python3 embedding_balance.py widen SRC DST WIDTH [SEED] [AFFINE_STD]
      a copy of meta model SRC (2-layer E) whose E hidden width and w_dim are WIDTH, computing the
      same images: new hidden units and new w features are random (as at initialisation), the new
      columns that read them (E.fc1's old rows, every style affine) are zero, and the old columns
      are rescaled for the larger fan-in (session 34, docs/training-log.md). AFFINE_STD > 0 draws
      the affines' new columns from N(0, AFFINE_STD^2) instead (stored units; 1 is a fresh layer's
      scale), which changes the images
"""
import json
import os
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "numpy_reference"))
import sgf_numpy as ref  # noqa: E402


def sensitivity(t, cfg, trials=40, seed=0):
    """S_k: mean over random codes of ||E(c with bit k flipped) - E(c)|| / ||E(c)||."""
    nb = cfg["fingerprint_bits"]
    rng = np.random.default_rng(seed)
    s = np.zeros(nb)
    for _ in range(trials):
        c = rng.integers(0, 2, nb).astype(np.float32)
        w0 = ref.embed(t, cfg, c)
        for k in range(nb):
            c2 = c.copy()
            c2[k] = 1 - c2[k]
            s[k] += np.linalg.norm(ref.embed(t, cfg, c2) - w0) / np.linalg.norm(w0)
    return s / trials


def rewrite(src, dst, changes, config=None):
    """Copies safetensors file src to dst with the tensors in `changes` replaced (and the config, when
    given), recomputing sgf's checksums."""
    cfg, t = load(src)
    write_tensors(src, dst, {**t, **{k: np.asarray(v, np.float32) for k, v in changes.items()}}, config or cfg)


def flip_matrix(f, c):
    """Columns f(c with bit k flipped) - f(c), k = 0 .. n-1, in float64."""
    f0 = f(c)
    cols = []
    for k in range(len(c)):
        c2 = c.copy()
        c2[k] = 1 - c2[k]
        cols.append(f(c2) - f0)
    return np.stack(cols, 1).astype(np.float64)


def spectrum(m):
    """(condition number, directions holding 90% of the energy, directions holding 99%)."""
    sv = np.linalg.svd(m, compute_uv=False)
    e = np.cumsum(sv ** 2) / (sv ** 2).sum()
    return sv[0] / sv[-1], int(np.searchsorted(e, 0.9)) + 1, int(np.searchsorted(e, 0.99)) + 1


def conditioning(model, eval_json=None, trials=20, seed=0):
    cfg, t = load(model)
    nb, m = cfg["fingerprint_bits"], cfg["embed_lr_mult"]
    # "G." only: a checkpoint also holds the EMA copy and the optimiser moments under other prefixes
    affines = sorted(k[:-len(".affine.weight")] for k in t if k.startswith("G.") and k.endswith(".affine.weight"))
    rng = np.random.default_rng(seed)

    def embed_layer(c, layer):
        h = c[None]
        for i in range(layer + 1):
            h = ref.lrelu(ref.dense(h, t[f"G.embed.fc{i}.weight"], t[f"G.embed.fc{i}.bias"], m))
        return h[0]

    def styles(c):  # every modulated layer's style
        w = ref.embed(t, cfg, c)
        return [ref.dense(w, t[a + ".affine.weight"], t[a + ".affine.bias"])[0] for a in affines]

    codes = [rng.integers(0, 2, nb).astype(np.float32) for _ in range(trials)]
    print(f"{model}: E {cfg['embed_layers']} x {cfg['embed_width']}, w_dim {cfg['w_dim']}, {nb} bits, {trials} random codes (medians)")
    for layer in range(cfg["embed_layers"]):
        r = np.array([spectrum(flip_matrix(lambda c: embed_layer(c, layer), c)) for c in codes])
        print(f"  E layer {layer} output: condition number {np.median(r[:, 0]):.1f}; directions for 90% / 99% of the "
              f"energy {np.median(r[:, 1]):.0f} / {np.median(r[:, 2]):.0f}")
    norm_sum, unique_sum, rs = np.zeros(nb), np.zeros(nb), []
    for c in codes:
        s0 = styles(c)  # each layer's change relative to that layer's style norm at c
        d = flip_matrix(lambda x: np.concatenate([s / np.linalg.norm(a) for s, a in zip(styles(x), s0)]), c)
        rs.append(spectrum(d))
        norm_sum += np.linalg.norm(d, axis=0)
        unique_sum += 1 / np.sqrt(np.diag(np.linalg.inv(d.T @ d)))  # distance of column k from the others' span
    rs = np.array(rs)
    print(f"  styles ({d.shape[0]} values): condition number {np.median(rs[:, 0]):.1f}; "
          f"directions for 90% / 99% of the energy {np.median(rs[:, 1]):.0f} / {np.median(rs[:, 2]):.0f}")
    norm, unique = norm_sum / trials, unique_sum / trials
    print(f"  per bit: change of the styles {norm.min():.4f} .. {norm.max():.4f}; the part no other bit can mimic "
          f"{unique.min():.5f} .. {unique.max():.5f} ({np.median(unique / norm):.4f} of the change, median)")
    if eval_json:
        acc = np.array(json.load(open(eval_json))["per_bit_accuracy_png"])
        rank = lambda v: np.argsort(np.argsort(v))
        for name, v in (("the styles' change", norm), ("its unmimicable part", unique)):
            print(f"  correlation of per-bit accuracy with {name}: Pearson {np.corrcoef(acc, v)[0, 1]:.3f}, "
                  f"Spearman {np.corrcoef(rank(acc), rank(v))[0, 1]:.3f}")


def conditioning_fresh(layers, width, w_dim, bits=128, seed=0):
    rng = np.random.default_rng(seed)
    cfg, t = {"embed_layers": layers, "embed_lr_mult": 0.01}, {}
    for i in range(layers):
        fan_out, fan_in = (w_dim if i == layers - 1 else width), (bits if i == 0 else width)
        t[f"G.embed.fc{i}.weight"] = rng.normal(0.0, 1.0 / cfg["embed_lr_mult"], (fan_out, fan_in)).astype(np.float32)
        t[f"G.embed.fc{i}.bias"] = np.zeros(fan_out, np.float32)
    codes = np.random.default_rng(seed + 1).integers(0, 2, (5, bits)).astype(np.float32)
    r = np.median([spectrum(flip_matrix(lambda c: ref.embed(t, cfg, c)[0], c)) for c in codes], axis=0)
    print(f"fresh E {layers} x {width}, w_dim {w_dim}, {bits} bits: condition number {r[0]:.0f}; "
          f"directions for 90% / 99% of the energy {r[1]:.0f} / {r[2]:.0f}")


def write_tensors(src, dst, tensors, config):
    """Writes dst with src's metadata, the tensors (src's names and order, any shapes) and config,
    recomputing sgf's checksums and every offset."""
    raw = open(src, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__")
    data, entries = bytearray(), {}
    for name in header:
        b = np.ascontiguousarray(tensors[name], "<f4").tobytes()
        entries[name] = {"data_offsets": [len(data), len(data) + len(b)], "dtype": "F32",
                         "shape": list(tensors[name].shape)}
        data += b
    meta["sgf.config"] = json.dumps(config, separators=(",", ":"), sort_keys=True)
    meta["sgf.config_checksum"] = "crc32:%08x" % zlib.crc32(meta["sgf.config"].encode())
    meta["sgf.checksum"] = "crc32:%08x" % zlib.crc32(bytes(data))
    h = json.dumps({"__metadata__": meta, **entries}, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = dst + ".tmp"
    open(tmp, "wb").write(struct.pack("<Q", len(h)) + h + bytes(data))
    os.replace(tmp, dst)


def widen(src, dst, width, seed=34, affine_std=0.0):
    """Net2net-style widening of E's hidden layer and w: the same function, better-conditioned new
    routes from c to the styles (a tall random map has singular values within a factor ~3 of each
    other; a square one's smallest is near zero)."""
    kind = ref.load_safetensors(src)[0].get("sgf.kind")
    if kind != "meta-model":  # a checkpoint also holds the EMA copy and optimiser moments, which this does not widen
        sys.exit(f"{src}: widen needs a meta model (a release file), this is a {kind}")
    cfg, t = load(src)
    if cfg["embed_layers"] != 2:
        sys.exit(f"{src}: widen handles a 2-layer E, this one has {cfg['embed_layers']}")
    h0, w0 = cfg["embed_width"], cfg["w_dim"]
    if width < max(h0, w0):
        sys.exit(f"{src}: WIDTH {width} is below the current widths ({h0}, {w0})")
    rng = np.random.default_rng(seed)
    m = cfg["embed_lr_mult"]
    init_std = 1.0 / m  # stored weights start N(0, 1/lr_mult^2) (runtime W = V lr_mult / sqrt(in))
    out = dict(t)
    v0, b0 = t["G.embed.fc0.weight"], t["G.embed.fc0.bias"]      # [h0, n]
    fc0 = rng.normal(0.0, init_std, (width, v0.shape[1])).astype(np.float32)
    fc0[:h0] = v0
    out["G.embed.fc0.weight"] = fc0
    out["G.embed.fc0.bias"] = np.concatenate([b0, np.zeros(width - h0, np.float32)])
    v1, b1 = t["G.embed.fc1.weight"], t["G.embed.fc1.bias"]      # [w0, h0]
    fc1 = rng.normal(0.0, init_std, (width, width)).astype(np.float32)
    fc1[:w0, :] = 0.0
    fc1[:w0, :h0] = v1 * np.float32(np.sqrt(width / h0))         # fan-in h0 -> width
    out["G.embed.fc1.weight"] = fc1
    out["G.embed.fc1.bias"] = np.concatenate([b1, np.zeros(width - w0, np.float32)])
    for name, v in t.items():
        if name.endswith(".affine.weight"):                       # [C_in, w0]
            a = (rng.normal(0.0, affine_std, (v.shape[0], width)) if affine_std > 0 else np.zeros((v.shape[0], width))).astype(np.float32)
            a[:, :w0] = v * np.float32(np.sqrt(width / w0))       # fan-in w0 -> width
            out[name] = a
    cfg["embed_width"], cfg["w_dim"] = width, width
    write_tensors(src, dst, out, cfg)
    cfg2, t2 = load(dst)
    c = np.random.default_rng(1).integers(0, 2, cfg["fingerprint_bits"]).astype(np.float32)
    s_old = ref.dense(ref.embed(t, load(src)[0], c), t["G.b4.conv0.affine.weight"], t["G.b4.conv0.affine.bias"])
    s_new = ref.dense(ref.embed(t2, cfg2, c), t2["G.b4.conv0.affine.weight"], t2["G.b4.conv0.affine.bias"])
    print(f"{dst}: embed_width = w_dim = {width}; largest change of a style: {np.abs(s_new - s_old).max():.2e}")


def load(path):
    meta, t = ref.load_safetensors(path)
    return json.loads(meta["sgf.config"]), t


def analyse(model, eval_json):
    cfg, t = load(model)
    acc = np.array(json.load(open(eval_json))["per_bit_accuracy_png"])
    s = sensitivity(t, cfg)
    col = np.linalg.norm(t["G.embed.fc0.weight"], axis=0)
    rank = lambda v: np.argsort(np.argsort(v))
    print(f"per-bit accuracy (PNG): mean {acc.mean():.4f}, {acc.min():.3f} .. {acc.max():.3f}")
    print(f"S_k (relative change of w per flipped bit): {s.min():.4f} .. {s.max():.4f} (median {np.median(s):.4f})")
    print(f"E.fc0 column norms: {col.min():.1f} .. {col.max():.1f} (median {np.median(col):.1f})")
    for name, v in (("S_k", s), ("column norm", col)):
        print(f"correlation of per-bit accuracy with {name}: Pearson {np.corrcoef(acc, v)[0, 1]:.3f}, "
              f"Spearman {np.corrcoef(rank(acc), rank(v))[0, 1]:.3f}")


def equalise(src, dst, target="median", power=1.0):
    cfg, t = load(src)
    s = sensitivity(t, cfg, trials=30)
    g = ((s.max() if target == "max" else np.median(s)) / s) ** power
    m = cfg["embed_lr_mult"]
    v, b = t["G.embed.fc0.weight"], t["G.embed.fc0.bias"]
    w_eff = v * m / np.sqrt(v.shape[1])
    # column k scaled about the bit's mean value 1/2: pre = W (c - 1/2) g + (b m + W/2 summed over bits)
    b_new = b + (0.5 * (w_eff * (1 - g)[None, :]).sum(axis=1)) / m
    rewrite(src, dst, {"G.embed.fc0.weight": v * g[None, :], "G.embed.fc0.bias": b_new})
    cfg2, t2 = load(dst)
    s2 = sensitivity(t2, cfg2, trials=30)
    print(f"{dst}: g {g.min():.2f} .. {g.max():.2f}; S_k {s.min():.4f} .. {s.max():.4f} -> {s2.min():.4f} .. {s2.max():.4f}")


def embed_lr(src, dst, mult):
    cfg, t = load(src)
    scale = np.float32(cfg["embed_lr_mult"] / mult)
    changes = {k: v * scale for k, v in t.items() if k.startswith("G.embed.")}
    cfg["embed_lr_mult"] = mult
    rewrite(src, dst, changes, cfg)
    print(f"{dst}: embed_lr_mult {mult}")


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "analyse":
        analyse(a[1], a[2])
    elif len(a) >= 3 and a[0] == "equalise":
        equalise(a[1], a[2], a[3] if len(a) > 3 else "median", float(a[4]) if len(a) > 4 else 1.0)
    elif len(a) == 4 and a[0] == "embed-lr":
        embed_lr(a[1], a[2], float(a[3]))
    elif len(a) in (2, 3) and a[0] == "conditioning":
        conditioning(a[1], a[2] if len(a) > 2 else None)
    elif len(a) in (4, 5) and a[0] == "conditioning-fresh":
        conditioning_fresh(int(a[1]), int(a[2]), int(a[3]), int(a[4]) if len(a) > 4 else 128)
    elif len(a) in (4, 5, 6) and a[0] == "widen":
        widen(a[1], a[2], int(a[3]), int(a[4]) if len(a) > 4 else 34, float(a[5]) if len(a) > 5 else 0.0)
    else:
        sys.exit(__doc__)
