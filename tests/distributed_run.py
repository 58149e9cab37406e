"""Run under torchrun by test_distributed.py: `KIND DATA_FREE MICRO UNTIL CKPT RESUME` trains `test_distributed.make`'s
Distiller to iteration UNTIL in the launched processes (gloo), resuming from CKPT if RESUME is 1, and writes CKPT."""
import gc
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from test_distributed import make  # noqa: E402

torch.set_num_threads(1)
kind, data_free, micro, until, ckpt, resume = sys.argv[1], sys.argv[2] == '1', int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6] == '1'
dist.init_process_group('gloo')
try:
    d = make(kind, data_free, micro)
    if resume: d.load(ckpt)
    d.run(until=until, ckpt=ckpt, progress=False)
    del d                                   # the DDP wrapper, which holds the process group, goes before the group
finally:
    gc.collect()
    dist.destroy_process_group()
