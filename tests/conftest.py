"""Test-session settings.

The tests simulate small populations: long chains of tiny tensor operations that torch's intra-op
threads cannot speed up, and whose spin-waiting on a busy 2-core machine made them several times
slower. One thread keeps the suite's wall time stable (results do not depend on it)."""
import torch

torch.set_num_threads(1)
