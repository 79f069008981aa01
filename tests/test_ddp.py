"""Multi-process training through PyTorch DDP (torchrun, gloo on the CPU): two ranks, each on half of every batch,
end with the same weights as one process on whole batches; only rank 0 writes the log and checkpoints."""
import json, os, subprocess, sys, textwrap
from pathlib import Path
import torch
from safetensors.torch import load_file

JOB = textwrap.dedent('''
    import sys, torch, torch.nn as nn
    from robustclip_nb.train import TrainConfig, fit
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    g = torch.Generator().manual_seed(1)
    X = torch.randn(256, 8, generator=g); Y = X.sum(1, keepdim=True).sin()
    def loss(m, b): return ((m(b[0]) - b[1]) ** 2).mean(), {'y_mean': b[1].mean()}
    fit(model, loss, torch.utils.data.TensorDataset(X, Y), TrainConfig(steps=12, lr=1e-2, ckpt_every=4, seed=0), sys.argv[1], batch_size=32, progress=False)
''')

def _run(out, nproc, tmp):
    script = tmp / 'job.py'; script.write_text(JOB)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    for k in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'): env.pop(k, None)
    cmd = [sys.executable, str(script), str(out)] if nproc == 1 else \
          [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}', str(script), str(out)]
    subprocess.run(cmd, env=env, check=True, timeout=300, stdout=subprocess.DEVNULL)

def test_two_ranks_match_one_process(tmp_path):
    _run(tmp_path / 'one', 1, tmp_path); _run(tmp_path / 'two', 2, tmp_path)
    a = load_file(tmp_path / 'one/checkpoints/step_0000012/model.safetensors')
    b = load_file(tmp_path / 'two/checkpoints/step_0000012/model.safetensors')
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    la = [json.loads(l) for l in (tmp_path / 'one/metrics.jsonl').read_text().splitlines()]
    lb = [json.loads(l) for l in (tmp_path / 'two/metrics.jsonl').read_text().splitlines()]
    assert [r['step'] for r in lb] == list(range(1, 13))                 # one row per step: rank 0 only
    assert all(abs(x['loss'] - y['loss']) < 1e-5 and abs(x['y_mean'] - y['y_mean']) < 1e-6 for x, y in zip(la, lb))   # losses averaged over ranks
