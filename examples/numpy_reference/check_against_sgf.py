"""Checks sgf_numpy.py (written from docs/model-format.md and docs/architecture.md) against the sgf tool.

    python3 check_against_sgf.py SGF_BINARY META_MODEL WORK_DIR

WORK_DIR is emptied first. Issues a fingerprint, bakes it (`sgf instantiate`), generates 8
images from the baked file and 40 from the meta model with that fingerprint (`sgf generate`, two
batches of 32), decodes them (`sgf decode`, also with an exported decoder file), and compares every
8-bit pixel and every logit with this numpy implementation. Exit 0 when they agree, 1 when not, 77
(ctest's skip code) when numpy is missing.
"""
import json
import os
import shutil
import subprocess
import sys

try:
    import numpy as np

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import sgf_numpy as ref
except ImportError as e:
    print(f"SKIPPED: numpy is not installed for {sys.executable} ({e}); apt-get install python3-numpy")
    sys.exit(77)


def main():
    sgf, model, work = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
    shutil.rmtree(work, ignore_errors=True)  # a fresh registry and output folders every run
    os.makedirs(work)
    run = lambda *args: subprocess.run([sgf, "--threads", "1", *args], check=True, capture_output=True, text=True, cwd=work).stdout
    meta, t = ref.load_safetensors(model)
    cfg = json.loads(meta["sgf.config"])
    if cfg["image_channels"] != 1:
        print("SKIPPED: this checker reads 1-channel models only")
        return 77
    bits = cfg["fingerprint_bits"]
    issued = json.loads(run("--json", "issue", "--registry", "registry.db", "--label", "alice", "--bits", str(bits)))
    hex_fp = issued["issued"][0]["fingerprint"]
    run("instantiate", "--model", model, "--registry", "registry.db", "--label", "alice", "--out", "alice.safetensors")
    run("export-decoder", "--model", model, "--out", "decoder.safetensors")
    cases = [("baked", "alice.safetensors", 7, 8, []), ("meta", model, 12345678901234567890, 40, ["--fingerprint", hex_fp])]
    failures, pngs = [], []
    for name, gen_model, seed, count, extra in cases:
        run("generate", "--model", gen_model, "--seed", str(seed), "--count", str(count), "--out", name, *extra)
        gm, gt = ref.load_safetensors(gen_model if os.path.isabs(gen_model) else os.path.join(work, gen_model))
        w = None if gm["sgf.kind"] == "baked-generator" else ref.embed(gt, cfg, ref.fingerprint_bits(hex_fp, bits))
        mine = []
        for first in range(0, count, 32):  # generate's batches of 32
            z, noise_seed = ref.generate_inputs(cfg, seed, first, min(32, count - first))
            mine.append(ref.generator(gt, cfg, z, noise_seed, w))
        mine = ref.to_u8(np.concatenate(mine)[:, 0])
        theirs = np.stack([ref.read_png_gray8(os.path.join(work, name, f"{i:05d}.png")) for i in range(count)])
        diff = np.abs(mine.astype(int) - theirs.astype(int))
        differing = int((diff > 0).sum())
        # float rounding may move a value across a .5 step of the 8-bit grid; anything more is an error
        ok = diff.max() <= 1 and differing <= diff.size // 200
        print(f"generate ({name}, {count} images, seed {seed}): {differing} of {diff.size} pixels differ, at most by "
              f"{diff.max()} -> {'ok' if ok else 'MISMATCH'}")
        if not ok:
            failures.append(f"generate {name}")
        pngs += [os.path.join(name, f"{i:05d}.png") for i in range(min(count, 8))]
    images = np.stack([ref.from_u8(ref.read_png_gray8(os.path.join(work, p)))[None] for p in pngs])
    for decoder_file in (model, os.path.join(work, "decoder.safetensors")):
        sgf_out = json.loads(run("--json", "decode", "--model", decoder_file, *pngs))
        _, dt = ref.load_safetensors(decoder_file)
        mine = ref.decoder(dt, cfg, images)[:, cfg["z_dim"]:]
        worst_rel, flipped = 0.0, 0
        for i, r in enumerate(sgf_out["results"]):
            logits = np.array(r["logits"], np.float32)
            worst_rel = max(worst_rel, float(np.linalg.norm(logits - mine[i]) / np.linalg.norm(logits)))
            rms = float(np.sqrt(np.mean(logits.astype(np.float64) ** 2)))
            # a bit may differ only where its logit is within rounding of 0
            flipped += int((((logits > 0) != (mine[i] > 0)) & (np.abs(logits) > 1e-3 * rms)).sum())
        ok = worst_rel < 1e-4 and flipped == 0
        print(f"decode ({os.path.basename(decoder_file)}, {len(pngs)} images): worst relative L2 difference of the logits "
              f"{worst_rel:.2e}, {flipped} bits differ -> {'ok' if ok else 'MISMATCH'}")
        if not ok:
            failures.append(f"decode {os.path.basename(decoder_file)}")
    print("numpy reference vs sgf:", "agree" if not failures else "DISAGREE on " + ", ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
