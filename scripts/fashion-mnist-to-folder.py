#!/usr/bin/env python3
"""Writes Fashion-MNIST images as PNG files in one sub-folder per class (the image-folder layout that
`sgf train --data DIR` and `sgf eval --real-dir DIR` read), padded from 28x28 to 32x32 with 2 px of
background exactly as sgf's built-in loader pads them. Standard library only.

    scripts/fashion-mnist-to-folder.py OUT [--split test|train] [--count N]

Files are OUT/<class name>/<index, 5 digits>.png for the first N images of the split (default: all).
The dataset folder is $SGF_FASHION_MNIST_DIR or Debian's /usr/share/datasets/fashion-mnist.
"""
import argparse, gzip, os, struct, sys, zlib

CLASSES = ['tshirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'boot']


def png_gray(width, height, pixels):
    rows = b''.join(b'\x00' + pixels[y * width:(y + 1) * width] for y in range(height))
    def chunk(kind, body):
        return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body) & 0xffffffff)
    header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(rows, 9)) + chunk(b'IEND', b'')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('out')
    ap.add_argument('--split', choices=['test', 'train'], default='test')
    ap.add_argument('--count', type=int, default=0, help='first N images (0: all)')
    a = ap.parse_args()
    src = os.environ.get('SGF_FASHION_MNIST_DIR') or '/usr/share/datasets/fashion-mnist'
    stem = 't10k' if a.split == 'test' else 'train'
    try:
        images = gzip.open(os.path.join(src, stem + '-images-idx3-ubyte.gz')).read()
        labels = gzip.open(os.path.join(src, stem + '-labels-idx1-ubyte.gz')).read()
    except OSError as e:
        sys.exit(f'{e.filename}: {e.strerror} (install dataset-fashion-mnist or set SGF_FASHION_MNIST_DIR)')
    if struct.unpack('>I', images[:4])[0] != 0x803 or struct.unpack('>I', labels[:4])[0] != 0x801:
        sys.exit(f'{src}: not IDX files')
    n = struct.unpack('>I', images[4:8])[0]
    count = n if a.count <= 0 else min(a.count, n)
    for i in range(count):
        px = images[16 + i * 784:16 + (i + 1) * 784]
        rows = [bytes(32)] * 2 + [bytes(2) + px[y * 28:(y + 1) * 28] + bytes(2) for y in range(28)] + [bytes(32)] * 2
        folder = os.path.join(a.out, CLASSES[labels[8 + i]])
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f'{i:05d}.png'), 'wb') as f:
            f.write(png_gray(32, 32, b''.join(rows)))
    print(f'{count} {a.split} images in {len(CLASSES)} class folders under {a.out}')


if __name__ == '__main__':
    main()
