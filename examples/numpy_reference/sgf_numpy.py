"""sgf's networks in plain numpy, written from docs/model-format.md and docs/architecture.md alone.

An independent reader of sgf's model files: it loads a meta model, a baked generator or a decoder
file (safetensors) without sgf and computes
  - the decoder F (fingerprint logits and z_hat) of 8-bit grayscale images, and
  - the generator G: a baked generator, or the meta generator for one fingerprint, with the z and
    noise that `sgf generate --seed S` draws (Philox4x32-10, docs/architecture.md "Random numbers").
check_against_sgf.py compares it with the `sgf` tool; ctest runs that as `docs.numpy_reference`.
Only 1-channel models and 8-bit grayscale, non-interlaced PNGs (what `sgf generate` writes for them)
are handled: enough to check the documents, not a general image reader.
"""
import json
import struct
import zlib

import numpy as np

SQRT2 = np.float32(np.sqrt(2.0))
FIR = np.array([1, 3, 3, 1], np.float32) / np.float32(8)  # [1,3,3,1] / 8, used as its outer product


# ------------------------------------------------------------------------------------ files
def load_safetensors(path):
    """(metadata dict, {name: float32 array}); checks sgf's crc32 checksum of the data area."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    if "sgf.checksum" in meta and meta["sgf.checksum"] != "crc32:%08x" % zlib.crc32(data):
        raise ValueError(f"{path}: checksum mismatch")
    tensors = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {e['dtype']}, expected F32")
        b, end = e["data_offsets"]
        tensors[name] = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"]).astype(np.float32)
    return meta, tensors


def read_png_gray8(path):
    """An 8-bit grayscale, non-interlaced PNG as a [H, W] uint8 array (all five row filters)."""
    raw = open(path, "rb").read()
    if raw[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos:pos + 4])
        kind, body = raw[pos + 4:pos + 8], raw[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if (depth, colour, interlace) != (8, 0, 0):
                raise ValueError(f"{path}: only 8-bit gray, non-interlaced PNGs are read here")
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    d = zlib.decompress(idat)
    out = np.zeros((h, w), np.uint8)
    prev = np.zeros(w, np.int32)
    for y in range(h):
        kind = d[y * (w + 1)]
        line = np.frombuffer(d[y * (w + 1) + 1:(y + 1) * (w + 1)], np.uint8).astype(np.int32)
        cur = np.zeros(w, np.int32)
        for x in range(w):
            a = cur[x - 1] if x > 0 else 0
            b = prev[x]
            c = prev[x - 1] if x > 0 else 0
            if kind == 0:
                p = 0
            elif kind == 1:
                p = a
            elif kind == 2:
                p = b
            elif kind == 3:
                p = (a + b) // 2
            elif kind == 4:  # Paeth
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            else:
                raise ValueError(f"{path}: row filter {kind}")
            cur[x] = (line[x] + p) & 255
        out[y], prev = cur, cur
    return out


def from_u8(u):
    """uint8 pixels to the networks' [-1, 1] floats: u / 127.5 - 1."""
    return (u.astype(np.float32) / np.float32(127.5) - np.float32(1.0)).astype(np.float32)


def to_u8(x):
    """[-1, 1] floats to uint8 as an image file stores them: lround((x + 1) 127.5), clamped; NaN -> 0."""
    v = ((x.astype(np.float32) + np.float32(1.0)) * np.float32(127.5)).astype(np.float64)
    r = np.where(v >= 0, np.floor(v + 0.5), np.ceil(v - 0.5))  # halves away from zero
    r = np.where(np.isnan(v), 0, r)
    return np.clip(r, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ layers
def lrelu(t):
    return (np.where(t > 0, t, np.float32(0.2) * t) * SQRT2).astype(np.float32)


def conv2d(x, w, stride=1, pad=0):
    """Cross-correlation of x [N, C, H, W] with w [O, C, k, k], zero padding."""
    n, c, _, _ = x.shape
    o, _, k, _ = w.shape
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (x.shape[2] - k) // stride + 1, (x.shape[3] - k) // stride + 1
    cols = np.empty((n, c, k, k, ho, wo), np.float32)
    for ky in range(k):
        for kx in range(k):
            cols[:, :, ky, kx] = x[:, :, ky:ky + stride * (ho - 1) + 1:stride, kx:kx + stride * (wo - 1) + 1:stride]
    y = np.einsum("ok,nkp->nop", w.reshape(o, -1), cols.reshape(n, c * k * k, ho * wo), optimize=True)
    return y.reshape(n, o, ho, wo).astype(np.float32)


def conv_transpose2d_stride2(x, w):
    """x [N, C_in, H, W], w [C_in, C_out, 3, 3]: stride 2, no padding, output 2H + 1."""
    n, _, h, wd = x.shape
    _, co, k, _ = w.shape
    out = np.zeros((n, co, 2 * (h - 1) + k, 2 * (wd - 1) + k), np.float32)
    for ky in range(k):
        for kx in range(k):
            out[:, :, ky:ky + 2 * h:2, kx:kx + 2 * wd:2] += np.einsum("nchw,co->nohw", x, w[:, :, ky, kx])
    return out


def upfirdn(x, up, down, pad0, pad1, gain):
    """Zero-insertion upsampling by `up`, padding, the 4x4 FIR (outer product of FIR, times gain), then
    keeping every `down`-th sample."""
    n, c, h, w = x.shape
    if up > 1:
        z = np.zeros((n, c, h * up, w * up), np.float32)
        z[:, :, ::up, ::up] = x
        x = z
    x = np.pad(x, ((0, 0), (0, 0), (pad0, pad1), (pad0, pad1)))
    k = (np.float32(gain) * np.outer(FIR, FIR)).astype(np.float32)
    ho, wo = x.shape[2] - 3, x.shape[3] - 3
    y = np.zeros((n, c, ho, wo), np.float32)
    for a in range(4):
        for b in range(4):
            y += k[a, b] * x[:, :, a:a + ho, b:b + wo]
    return y[:, :, ::down, ::down]


def dense(x, weight, bias, lr_mult=1.0):
    """Equalised dense layer: W lr_mult / sqrt(in), bias lr_mult."""
    w = (weight * np.float32(lr_mult / np.sqrt(weight.shape[1]))).astype(np.float32)
    return (x @ w.T + bias * np.float32(lr_mult)).astype(np.float32)


def conv_gain(w):
    """The equalised conv's run-time factor 1 / sqrt(C_in k k), applied to w [O, C_in, k, k]."""
    return (w * np.float32(1.0 / np.sqrt(w.shape[1] * w.shape[2] * w.shape[3]))).astype(np.float32)


# ------------------------------------------------------------------------------------ decoder F
def decoder(tensors, cfg, images, prefix="F"):
    """F's outputs [N, z_dim + bits] for images [N, 1, R, R] in [-1, 1]; bit k reads 1 iff out[z_dim + k] > 0."""
    t = lambda name: tensors[f"{prefix}.{name}"]
    bias = lambda name: t(name)[None, :, None, None]
    x = lrelu(conv2d(images.astype(np.float32), conv_gain(t("fromrgb.weight"))) + bias("fromrgb.bias"))
    r = cfg["resolution"]
    while r >= 8:  # residual blocks down to 4x4
        a = lrelu(conv2d(x, conv_gain(t(f"b{r}.conv0.weight")), pad=1) + bias(f"b{r}.conv0.bias"))
        a = upfirdn(a, 1, 1, 2, 2, 1)  # blur, then the stride-2 3x3 conv
        a = lrelu(conv2d(a, conv_gain(t(f"b{r}.conv1.weight")), stride=2) + bias(f"b{r}.conv1.bias"))
        s = conv2d(upfirdn(x, 1, 2, 1, 1, 1), conv_gain(t(f"b{r}.skip.weight")))  # blur-downsample, 1x1
        x = ((a + s) / SQRT2).astype(np.float32)
        r //= 2
    x = lrelu(conv2d(x, conv_gain(t("b4.conv.weight")), pad=1) + bias("b4.conv.bias"))
    x = lrelu(dense(x.reshape(x.shape[0], -1), t("b4.fc.weight"), t("b4.fc.bias")))
    return dense(x, t("b4.out.weight"), t("b4.out.bias"))


# ------------------------------------------------------------------------------------ random numbers
_M32 = 0xFFFFFFFF


def philox(seed, stream, offset, idx):
    """Philox4x32-10 with key (seed lo, seed hi) and counter (offset + idx, stream), vectorised over idx."""
    c = np.uint64(offset) + idx.astype(np.uint64)
    c0, c1 = c & np.uint64(_M32), c >> np.uint64(32)
    c2 = np.full_like(c0, stream & _M32)
    c3 = np.full_like(c0, (stream >> 32) & _M32)
    k0, k1 = seed & _M32, (seed >> 32) & _M32
    for _ in range(10):
        p0, p1 = np.uint64(0xD2511F53) * c0, np.uint64(0xCD9E8D57) * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & np.uint64(_M32)
        hi1, lo1 = p1 >> np.uint64(32), p1 & np.uint64(_M32)
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
        k0, k1 = (k0 + 0x9E3779B9) & _M32, (k1 + 0xBB67AE85) & _M32
    return c0, c1, c2, c3


def normal(seed, stream, offset, idx):
    """N(0, 1) draws by Box-Muller in double from the first two words."""
    r0, r1, _, _ = philox(seed, stream, offset, idx)
    u0, u1 = (r0.astype(np.float64) + 0.5) * 2.0 ** -32, (r1.astype(np.float64) + 0.5) * 2.0 ** -32
    return np.sqrt(-2.0 * np.log(u0)) * np.cos(2 * np.pi * u1)


def generate_inputs(cfg, seed, first, n):
    """The z [n, z_dim] and the noise seed of `sgf generate --seed seed` for its images first..first+n-1
    (generate works in batches of 32: first = 0, 32, 64, ...)."""
    z = normal(seed, 1000 + first, 0, np.arange(n * cfg["z_dim"], dtype=np.uint64)).astype(np.float32)
    return z.reshape(n, cfg["z_dim"]), (seed ^ (0x9E37 + first)) & (2 ** 64 - 1)


# ------------------------------------------------------------------------------------ generator G
def channels(cfg, r):
    return max(1, min(cfg["channel_base"] // r, cfg["channel_max"]))


def embed(tensors, cfg, bits):
    """E: the fingerprint's bits (0/1 floats, [bits]) to w [1, w_dim]."""
    h = bits.astype(np.float32)[None]
    for i in range(cfg["embed_layers"]):
        h = lrelu(dense(h, tensors[f"G.embed.fc{i}.weight"], tensors[f"G.embed.fc{i}.bias"], cfg["embed_lr_mult"]))
    return h


def modulated_layer(tensors, name, x, w, up, demodulate, noise_seed, layer_index, activate):
    """One modulated conv of G (w None: a baked generator, whose stored weight is already W'')."""
    v = tensors[f"{name}.weight"]
    if up:
        v = v.transpose(1, 0, 2, 3)  # an up layer stores [C_in, C_out, k, k]
    _, c_in, k, _ = v.shape
    if w is None:
        weight = v
    else:
        s = dense(w, tensors[f"{name}.affine.weight"], tensors[f"{name}.affine.bias"])[0]  # style [C_in]
        weight = (v / np.float32(np.sqrt(c_in * k * k))) * s[None, :, None, None]
        if demodulate:
            d = 1.0 / np.sqrt((weight.astype(np.float64) ** 2).sum(axis=(1, 2, 3)) + 1e-8)
            weight = weight * d.astype(np.float32)[:, None, None, None]
        weight = weight.astype(np.float32)
    if up:
        u = upfirdn(conv_transpose2d_stride2(x, weight.transpose(1, 0, 2, 3)), 1, 1, 1, 1, 4)
    else:
        u = conv2d(x, weight, pad=k // 2)
    if noise_seed is not None:  # N(0,1) of the layer's output size, key (noise seed, layer index)
        n, _, h, wd = u.shape
        noise = normal(noise_seed, layer_index, 0, np.arange(n * h * wd, dtype=np.uint64)).astype(np.float32)
        u = u + tensors[f"{name}.noise_strength"][0] * noise.reshape(n, 1, h, wd)
    u = u + tensors[f"{name}.bias"][None, :, None, None]
    return lrelu(u) if activate else u.astype(np.float32)


def generator(tensors, cfg, z, noise_seed, w=None):
    """Images [N, C, R, R] (linear output, not clamped) for z [N, z_dim]; w from embed() for a meta
    model, None for a baked generator."""
    x = lrelu(dense(z, tensors["G.input.weight"], tensors["G.input.bias"])).reshape(z.shape[0], channels(cfg, 4), 4, 4)
    layer = 0
    x = modulated_layer(tensors, "G.b4.conv0", x, w, False, True, noise_seed, layer, True)
    layer += 1
    rgb = modulated_layer(tensors, "G.b4.torgb", x, w, False, False, None, None, False)
    r = 8
    while r <= cfg["resolution"]:
        x = modulated_layer(tensors, f"G.b{r}.conv0", x, w, True, True, noise_seed, layer, True)
        x = modulated_layer(tensors, f"G.b{r}.conv1", x, w, False, True, noise_seed, layer + 1, True)
        layer += 2
        rgb = upfirdn(rgb, 2, 1, 2, 1, 4) + modulated_layer(tensors, f"G.b{r}.torgb", x, w, False, False, None, None, False)
        r *= 2
    return rgb


def fingerprint_bits(hex_text, bits):
    """The 0/1 bits of a fingerprint's hex text: bit k is bit k of the number the text spells."""
    v = int(hex_text, 16)
    return np.array([(v >> k) & 1 for k in range(bits)], np.float32)
