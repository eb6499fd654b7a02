"""Paired comparison of training runs that share a seed (docs/training-log.md, session 34): the mean
bit accuracy of the training batches (log.csv's bit_accuracy, logged every 10th step) over the steps
every run has logged, in blocks of B steps.

  python3 compare_logs.py B RUN_DIR [RUN_DIR ...]
      one column per run, and the last run minus the first
"""
import csv
import os
import sys


def main(block, runs):
    acc = {}
    for r in runs:
        with open(os.path.join(r, "log.csv")) as fh:
            acc[r] = {int(row["step"]): float(row["bit_accuracy"]) for row in csv.DictReader(fh)}
    common = sorted(set.intersection(*(set(a) for a in acc.values())))
    if not common:
        sys.exit("compare_logs.py: the runs have no logged step in common")
    blocks = {}
    for s in common:
        blocks.setdefault((s - 1) // block, []).append(s)
    names = [os.path.basename(os.path.normpath(r)) for r in runs]
    print("| steps | " + " | ".join(names) + f" | {names[-1]} - {names[0]} |")
    print("|---" * (len(runs) + 2) + "|")
    for b, steps in sorted(blocks.items()):
        m = [sum(acc[r][s] for s in steps) / len(steps) for r in runs]
        print(f"| {b * block + 1:,}-{max(steps):,} | " + " | ".join(f"{x:.4f}" for x in m) + f" | {m[-1] - m[0]:+.4f} |")


if __name__ == "__main__":
    if len(sys.argv) < 3 or not sys.argv[1].isdigit() or int(sys.argv[1]) < 1:
        sys.exit(__doc__)
    main(int(sys.argv[1]), sys.argv[2:])
