"""Run under torchrun by test_t2i.py: `RECIPE FSDP UNTIL CKPT RESUME` trains the text-to-image recipe's Distiller
(`t2i.t2i_setup`) to iteration UNTIL in the launched processes (gloo), with FSDP2 if FSDP is 1 (else DDP), resuming
from CKPT if RESUME is 1, and writes CKPT. The teacher is called once before training (the student must stay FSDP's root)."""
import gc
import sys

import torch
import torch.distributed as dist

from piflow_ref.recipes import get_recipe
from piflow_ref.t2i import t2i_setup

torch.set_num_threads(1)
if sys.argv[1] == 'cli':
    from piflow_ref.cli import main
    sys.exit(main(sys.argv[2:]))
name, fsdp, until, ckpt, resume = sys.argv[1], sys.argv[2] == '1', int(sys.argv[3]), sys.argv[4], sys.argv[5] == '1'
dist.init_process_group('gloo')
try:
    make, _ = t2i_setup(get_recipe(name), train={'iters': until, 'fsdp': fsdp})
    d = make()
    with torch.no_grad(): d.teacher(torch.randn(2, *d.student.sample_shape), torch.tensor([0.9, 0.4]), torch.tensor([0, 1]))
    if resume: d.load(ckpt)
    d.run(until=until, ckpt=ckpt, progress=False)
    del d
finally:
    gc.collect()
    dist.destroy_process_group()
