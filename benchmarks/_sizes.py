"""The workload size options every W1-sized benchmark takes (``--neurons --batch --steps
--repeats``, defaults 4096 x 32 x 1000, 5 repeats)."""
import argparse


def parser(**kw) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(**kw)
    ap.add_argument("--neurons", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    return ap
