"""GPU benchmark: attack and training throughput of robustclip_nb at the papers' shapes, in one short prepared run.

Everything runs at 224 px on randomly initialised open_clip models of the real architectures (no weights can be
downloaded on the benchmark machine), so accuracies here say nothing about robustness: they only compare attack
strength between implementations on the same model and points. Sections, in the order they run (each one is
skipped, and says so, once the time budget `--budget` is spent; JSON is rewritten after every section, so a run
cut short keeps what it measured):

  peak      bf16 and fp32 matmul rate of this device (8192^3 products), the denominator of every MFU below.
  train     one optimizer step of the real training loop (`train.train_step` on each `Method`'s loss) with 10-step
            PGD inside: FARE, TeCoA (= full adversarial fine-tuning), AdvLoRA (peft) on ViT-L-14 at the papers' batch
            128; TeCoA and AdvLoRA on ViT-B-16 (AdvLoRA's backbone) at batch 128, with and without activation
            checkpointing; AdvPT on ViT-B-16 at batch 32 (its embedding bank: PGD-10 KL, and a prompt step over 1000
            classes). Images/s, peak memory (torch.cuda.max_memory_allocated), MFU from the FLOP counts below.
  attacks   PGD-10 and APGD-100 on ViT-B-32 and ViT-L-14: ours vs torchattacks on the same model, batch and points,
            fp32 and bf16 autocast, images/s and robust accuracy.
  autoattack  ours (APGD-CE + APGD-T, 100 iterations: the FARE protocol) vs torchattacks.AutoAttack('standard') as
            users run it (APGD-CE, APGD-T, FAB-T at 10 iterations each, Square 5000 queries), stage by stage.
  sdpa      ours PGD-10 (bf16, ViT-L-14) with PyTorch's fused attention kernels vs the plain math kernel.
  compile   ours PGD-10 bf16 on ViT-B-32 with the image encoder under torch.compile (compile time reported apart).

FLOP counts (`vit_flops`, 1 multiply-add = 2 FLOP; matmuls only, layer norms and activations left out): per block
of width d with N tokens, 24*N*d^2 for the qkv/out projections and a 4x MLP (general: (8 + 4*mlp_ratio)*N*d^2) and
4*N^2*d for the attention products; patch embedding 2*N_patch*3*p^2*d; the projection 2*d*D on one token. F = one
forward of one image. Per training image (model FLOPs; recomputation under checkpointing is not counted):
  attack step with frozen weights = forward + input-gradient backward = 2F
  FARE   = 10 attack steps + reference forward on the frozen original + forward/backward with weight gradients
         = 20F + F + 3F = 24F
  TeCoA  = 20F + 3F = 23F (class embeddings are computed once, not per step)
  AdvLoRA = 20F + 2F = 22F (base weights frozen: no weight-gradient matmuls; the rank-r products are negligible)
  AdvPT bank = clean reference F + 10 attack steps 20F + final embedding F = 22F per image;
  AdvPT prompt step = 2 * T * C (forward and input-gradient backward of the text tower over C class prompts; T = one
         prompt's forward), independent of the batch of 32 bank embeddings.
MFU = FLOPs per step / step time / the bf16 matmul rate measured in `peak`.

Usage:
  python benchmarks/gpu.py --out figures/benchmarks/gpu_h200.json   # on a GPU: about 5 minutes on an H200
  python benchmarks/gpu.py --cpu --out /tmp/gpu_cpu.json           # CPU mode: tiny shapes, same code (the tests run it)
"""
import os, sys, json, time, copy, math, argparse, platform, tempfile, traceback, subprocess
from pathlib import Path
from contextlib import nullcontext
os.environ.setdefault('HF_HUB_OFFLINE', '1')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch

SECTIONS = ('peak', 'train', 'attacks', 'autoattack', 'sdpa', 'compile')

def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=None, help='write JSON results here (rewritten after every section)')
    p.add_argument('--cpu', action='store_true', help='CPU mode: tiny model and shapes, same code paths (for the tests)')
    p.add_argument('--budget', type=float, default=None, help='seconds after which remaining sections are skipped (default 330 GPU, 600 CPU)')
    p.add_argument('--sections', default=','.join(SECTIONS), help=f'comma-separated subset of {SECTIONS}')
    p.add_argument('--attack-eps', default='0.25/255', help="L-inf radius of the attack comparisons (random networks have tiny margins: at 1/255 PGD fools every point in 3 steps)")
    p.add_argument('--train-eps', default='4/255', help='training radius of the training-step measurements')
    p.add_argument('--pgd-steps', type=int, default=None, help='PGD iterations (default 10; 2 in CPU mode)')
    p.add_argument('--apgd-steps', type=int, default=None, help='APGD iterations (default 100; 4 in CPU mode)')
    p.add_argument('--timed-steps', type=int, default=None, help='timed training steps after one warm-up (default 3; 1 in CPU mode)')
    p.add_argument('--train-plan', default='paper', choices=['paper', 'memory'], help="'paper': the papers' batch sizes; 'memory': TeCoA vs AdvLoRA memory at batch 32 and with checkpointing at 128")
    p.add_argument('--threads', type=int, default=2, help='torch CPU threads in CPU mode')
    a = p.parse_args(argv)
    a.sections = [s.strip() for s in a.sections.split(',') if s.strip()]
    bad = [s for s in a.sections if s not in SECTIONS]
    if bad: p.error(f"unknown section(s) {bad}; choose from {SECTIONS}")
    if a.budget is None: a.budget = 600.0 if a.cpu else 330.0
    a.pgd_steps = a.pgd_steps or (2 if a.cpu else 10)
    a.apgd_steps = a.apgd_steps or (4 if a.cpu else 100)
    a.timed_steps = a.timed_steps or (1 if a.cpu else 3)
    return a

# ---------------------------------------------------------------------------------------------------------------- FLOPs
def _tower_flops(width, layers, tokens, mlp_ratio=4.0, in_flops=0.0, out_flops=0.0):
    per_block = (8 + 4 * mlp_ratio) * tokens * width**2 + 4 * tokens**2 * width
    return in_flops + layers * per_block + out_flops

def vit_flops(arch:str) -> float:
    "FLOPs of one image-encoder forward of open_clip architecture `arch` (matmuls only)."
    import open_clip, robustclip_nb.clip  # noqa: F401 (registers this project's configs)
    cfg = open_clip.get_model_config(arch)
    v = cfg['vision_cfg']; d, p, s = v['width'], v['patch_size'], v['image_size']
    n_patch = (s // p) ** 2
    return _tower_flops(d, v['layers'], n_patch + 1, v.get('mlp_ratio', 4.0),
                        in_flops=2 * n_patch * 3 * p * p * d, out_flops=2 * d * cfg['embed_dim'])

def text_flops(arch:str) -> float:
    "FLOPs of one prompt's text-encoder forward (full context length)."
    import open_clip, robustclip_nb.clip  # noqa: F401
    cfg = open_clip.get_model_config(arch)
    t = cfg['text_cfg']
    return _tower_flops(t['width'], t['layers'], t['context_length'], t.get('mlp_ratio', 4.0), out_flops=2 * t['width'] * cfg['embed_dim'])

TRAIN_FLOPS = {'fare': 24, 'tecoa': 23, 'advlora': 22}   # forwards F per training image (see the module docstring)

# ---------------------------------------------------------------------------------------------------------------- helpers
class Bench:
    "Holds the device, the budget and the records; writes JSON after every section."
    def __init__(self, a):
        self.a, self.t0 = a, time.perf_counter()
        self.dev = torch.device('cpu' if a.cpu else 'cuda')
        self.cuda = self.dev.type == 'cuda'
        self.records, self.skipped, self.errors = [], [], []
        self.meta = dict(date_utc=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), mode='cpu' if a.cpu else 'gpu', args=vars(a))
    def left(self): return self.a.budget - (time.perf_counter() - self.t0)
    def sync(self):
        if self.cuda: torch.cuda.synchronize()
    def amp(self, bf16): return torch.autocast(self.dev.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    def add(self, section, **rec):
        rec = {'section': section, **rec}
        self.records.append(rec)
        print('  ' + '  '.join(f"{k}={_fmt(v)}" for k, v in rec.items() if k != 'section'), flush=True)
    def want(self, section, need_s=0.0, what=None):
        "Whether to run `section` (or one part of it), given the remaining budget."
        if section not in self.a.sections: return False
        if self.left() < need_s:
            msg = f"{what or section}: skipped, {self.left():.0f} s of the {self.a.budget:.0f} s budget left (needs ~{need_s:.0f} s)"
            print('  ' + msg, flush=True); self.skipped.append(msg); return False
        return True
    def write(self):
        if not self.a.out: return
        self.meta['total_seconds'] = round(time.perf_counter() - self.t0, 1)
        out = Path(self.a.out); out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + '.tmp')
        tmp.write_text(json.dumps(dict(meta=self.meta, records=self.records, skipped=self.skipped, errors=self.errors), indent=1, default=str))
        os.replace(tmp, out)

def sig(v:float, n:int=4) -> float:
    "`v` rounded to `n` significant digits."
    return float(f"{v:.{n}g}")

def _fmt(v):
    if isinstance(v, float): return f"{v:.4g}"
    return str(v)

def environment(b:Bench) -> dict:
    import importlib.metadata as md
    vers = {}
    for pkg in ('torch', 'torchvision', 'open_clip_torch', 'peft', 'torchattacks', 'numpy'):
        try: vers[pkg] = md.version(pkg)
        except md.PackageNotFoundError: vers[pkg] = None
    commit = os.environ.get('GIT_COMMIT')     # set it where the tree travels without (or with a stale) .git
    if not commit:
        try: commit = subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True, timeout=10, cwd=Path(__file__).parent).stdout.strip() or None
        except Exception: commit = None
    env = dict(versions=vers, python=platform.python_version(), git_commit=commit, cuda=torch.version.cuda,
               device=torch.cuda.get_device_name(0) if b.cuda else f'cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)')
    if b.cuda:
        pr = torch.cuda.get_device_properties(0)
        env.update(sm_count=pr.multi_processor_count, memory_gb=round(pr.total_memory / 2**30, 1), capability=f'{pr.major}.{pr.minor}')
    return env

def timeit(b:Bench, fn, reps:int=1) -> float:
    "Seconds of one call of `fn` (median of `reps`), synchronised."
    ts = []
    for _ in range(reps):
        b.sync(); t = time.perf_counter(); fn(); b.sync(); ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]

_MODELS = {}
def load(b:Bench, arch:str, cached:bool=True):
    "A random-init `CLIP` of `arch` on the device, frozen (seeded: the same weights in every section)."
    from robustclip_nb.clip import load_clip
    import logging; logging.disable(logging.WARNING)      # open_clip's "no pretrained weights" warning
    if cached and arch in _MODELS: return _MODELS[arch]
    torch.manual_seed(0)
    clip = load_clip(arch, device=b.dev).eval().requires_grad_(False)
    if cached: _MODELS[arch] = clip
    return clip

def classifier(clip, n_classes:int=10):
    from robustclip_nb.clip import zero_shot_classifier
    return zero_shot_classifier(clip, [f'class {i}' for i in range(n_classes)]).eval()

def points(b:Bench, model, n:int, size:int, batch:int):
    "n random images and, as labels, the model's own clean predictions (clean accuracy 1 by construction)."
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)).to(b.dev)
    with torch.no_grad(): y = torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, n, batch)])
    return x, y

def robust_acc(b:Bench, model, xa, y, batch:int) -> float:
    "Accuracy of the fp32 model on `xa` (whatever precision crafted it)."
    with torch.no_grad(): return sum((model(xa[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item() for i in range(0, len(xa), batch)) / len(xa)

# ---------------------------------------------------------------------------------------------------------------- sections
def sec_peak(b:Bench):
    print('[peak] matmul rate', flush=True)
    n = 512 if b.a.cpu else 8192
    for dt in (torch.bfloat16, torch.float32):
        x = torch.randn(n, n, device=b.dev, dtype=dt); w = torch.randn(n, n, device=b.dev, dtype=dt)
        for _ in range(3): x @ w
        reps = 3 if b.a.cpu else 10
        t = timeit(b, lambda: [x @ w for _ in range(reps)]) / reps
        b.add('peak', dtype=str(dt).split('.')[-1], n=n, tflops=sig(2 * n**3 / t / 1e12))
        del x, w
    b.peak_tflops = next(r['tflops'] for r in b.records if r['section'] == 'peak' and r['dtype'] == 'bfloat16')

def _train_data(n:int, size:int, classes:int, batch:int):
    from robustclip_nb.train import StepBatches, TrainData
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    names, templates = [f'class {i}' for i in range(classes)], ['a photo of a {c}.']
    return TrainData('synthetic', StepBatches(x, y, batch, seed=0), names, templates, [t.format(c=c) for c in names for t in templates], n)

def _to(v, dev):
    if isinstance(v, torch.Tensor): return v.to(dev, non_blocking=True)
    if isinstance(v, (tuple, list)): return type(v)(_to(u, dev) for u in v)
    return v

def train_case(b:Bench, base, arch:str, method:str, batch:int, classes:int, ckpt:bool=False, **hp):
    "Time `timed_steps` steps (after one warm-up) of `method` on a copy of `base`, as `train_method` runs them."
    from robustclip_nb.core import parse_eps
    from robustclip_nb.methods import get_method
    from robustclip_nb.train import TrainConfig, make_optimizer, train_step, set_grad_checkpointing
    steps_attack = 2 if b.a.cpu else 10
    m = get_method(method, **({} if method == 'advpt' else dict(attack_steps=steps_attack, attack_step_size='1/255')), **hp)
    m.eps, m.seed = (parse_eps(b.a.train_eps) if m.adversarial else 0.0), 0
    if method == 'advpt': m.eps = parse_eps('8/255')
    n_steps = 1 + b.a.timed_steps
    data = _train_data(batch * n_steps, base.image_size, classes, batch)
    if b.cuda: torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(); mem0 = torch.cuda.memory_allocated()
    model = m.setup(copy.deepcopy(base), data, m.eps).to(b.dev)
    rec = dict(model=arch, method=method, batch=batch, classes=classes, grad_checkpointing=ckpt, attack_steps=None if method == 'advpt' else steps_attack,
               trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad))
    if method == 'advpt':    # the bank: PGD-10 KL on every training image, built once before training
        with tempfile.TemporaryDirectory() as d, b.amp(True):
            t = timeit(b, lambda: m.prepare(model, data, d))
        n_img = len(m.subset)
        rec.update(bank_images=n_img, bank_img_per_s=round(n_img / t, 1),
                   bank_mfu=round(22 * vit_flops(arch) * n_img / t / 1e12 / b.peak_tflops, 4) if b.cuda else None)
    cfg = TrainConfig(**{**m.train_defaults, 'lr': 1e-5})
    opt = make_optimizer(model.parameters(), cfg)
    if ckpt: set_grad_checkpointing(model, True)
    model.train()
    times = []
    for k in range(n_steps):
        m.step = k
        bt = _to(m.batch(data, k), b.dev)
        if k == 1 and b.cuda: base_mem = torch.cuda.memory_allocated(); torch.cuda.reset_peak_memory_stats()
        times.append(timeit(b, lambda: train_step(model, m.loss, bt, opt, amp=True)))
    t = sorted(times[1:])[len(times[1:]) // 2]
    rec.update(step_s=round(t, 4), img_per_s=round(batch / t, 1))
    if method == 'advpt':
        flops = 2 * text_flops(arch) * classes
    else:
        flops = TRAIN_FLOPS[method] * vit_flops(arch) * batch
    rec.update(tflop_per_step=sig(flops / 1e12), tflops=sig(flops / t / 1e12))
    if b.cuda:
        # peak_mem_gb: what this training needs on top of what was resident before it (other sections' frozen models):
        # its model copy (and FARE's frozen original), gradients, optimizer state and activations
        peak = torch.cuda.max_memory_allocated()
        rec.update(mfu=round(flops / t / 1e12 / b.peak_tflops, 4), peak_mem_gb=round((peak - mem0) / 2**30, 2),
                   resident_mem_gb=round((base_mem - mem0) / 2**30, 2), peak_total_gb=round(peak / 2**30, 2))
    b.add('train', **rec)
    del model, opt, m
    if b.cuda: torch.cuda.empty_cache()

def sec_train(b:Bench):
    print('[train] one training step with PGD inside (bf16 autocast, as the training loop on a GPU)', flush=True)
    if b.a.cpu: plan = [('robustclip-vit-nano', 8, 10, [('fare', False), ('tecoa', False), ('advlora', False), ('tecoa', True), ('advlora', True), ('advpt', False)])]
    elif b.a.train_plan == 'memory':
        plan = [('ViT-L-14', 32, 1000, [('tecoa', False), ('advlora', False)]),
                ('ViT-L-14', 128, 1000, [('tecoa', True), ('advlora', True)]),
                ('ViT-B-16', 32, 1000, [('tecoa', False), ('advlora', False)])]
    else: plan = [('ViT-L-14', 128, 1000, [('fare', False), ('tecoa', False), ('advlora', False)]),
                  ('ViT-B-16', 128, 1000, [('tecoa', False), ('advlora', False), ('tecoa', True), ('advlora', True)]),
                  ('ViT-B-16', 32, 1000, [('advpt', False)])]
    for arch, batch, classes, cases in plan:
        if not b.want('train', 40, f'train {arch}'): continue
        base = load(b, arch)
        for method, ckpt in cases:
            bs = batch
            if method == 'advpt' and not b.a.cpu: bs = 32
            if not b.want('train', 15, f'train {arch} {method}'): break
            try: train_case(b, base, arch, method, bs, classes, ckpt, **({'shots': None, 'n_ctx': 8 if b.a.cpu else 32, 'init': 'random'} if method == 'advpt' else {}))
            except Exception as e: _error(b, f'train {arch} {method} ckpt={ckpt}', e)
        if b.cuda: torch.cuda.empty_cache()

def _error(b, what, e):
    msg = f"{what}: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
    print('  ERROR ' + msg, flush=True); traceback.print_exc(limit=3)
    b.errors.append(msg)
    if b.cuda: torch.cuda.empty_cache()

def _ours(kind, model, eps, steps):
    from robustclip_nb.attacks import PGD, APGD
    if kind == 'pgd': return PGD(model, eps=eps, steps=steps, step_size=eps / 4, seed=0)
    return APGD(model, eps=eps, steps=steps, objective='ce', restarts=1, seed=0)

def _theirs(kind, model, eps, steps):
    import torchattacks
    if kind == 'pgd':
        torch.manual_seed(0); return torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=steps, random_start=True)
    return torchattacks.APGD(model, norm='Linf', eps=eps, steps=steps, n_restarts=1, loss='ce', seed=0)

def attack_case(b:Bench, model, x, y, arch, kind, steps, impl, bf16, batch, label=None, ctx=nullcontext):
    from robustclip_nb.core import parse_eps
    eps = parse_eps(b.a.attack_eps)
    atk = (_ours if impl == 'robustclip_nb' else _theirs)(kind, model, eps, steps)
    advs = []
    def run():
        advs.clear()
        with ctx():
            for i in range(0, len(x), batch):
                with b.amp(bf16): advs.append(atk(x[i:i + batch], y[i:i + batch]).detach())
    t = timeit(b, run)
    acc = robust_acc(b, model, torch.cat(advs), y, batch)
    rec = dict(model=arch, attack=f"{kind.upper()}-{steps}", impl=label or impl, precision='bf16' if bf16 else 'fp32', n=len(x), batch=batch,
               eps=b.a.attack_eps, seconds=round(t, 3), img_per_s=round(len(x) / t, 1), robust_acc=round(acc, 4))
    b.add('attacks', **rec)
    return rec

def sec_attacks(b:Bench):
    print('[attacks] ours vs torchattacks on the same model, batch and points', flush=True)
    if b.a.cpu: plan = [('robustclip-vit-nano', 16, 8, 8)]
    else: plan = [('ViT-B-32', 256, 1024, 256), ('ViT-L-14', 128, 128, 32)]
    for arch, batch, n_pgd, n_apgd in plan:
        if not b.want('attacks', 30, f'attacks {arch}'): continue
        clip = load(b, arch); model = classifier(clip)
        x, y = points(b, model, max(n_pgd, n_apgd), clip.image_size, batch)
        # warm-up (kernels, autotuning) outside the timings
        with b.amp(True): _ours('pgd', model, 1 / 255, 1)(x[:batch], y[:batch])
        for kind, steps, n in (('pgd', b.a.pgd_steps, n_pgd), ('apgd', b.a.apgd_steps, n_apgd)):
            for bf16 in (False, True):
                for impl in ('robustclip_nb', 'torchattacks'):
                    if not b.want('attacks', 10, f'attacks {arch} {kind} {impl} bf16={bf16}'): continue
                    try: attack_case(b, model, x[:n], y[:n], arch, kind, steps, impl, bf16, min(batch, n))
                    except Exception as e: _error(b, f'attacks {arch} {kind} {impl} bf16={bf16}', e)
        del model, x, y
        if b.cuda: torch.cuda.empty_cache()

def sec_sdpa(b:Bench):
    from torch.nn.attention import sdpa_kernel, SDPBackend
    print('[sdpa] fused attention kernels vs the math kernel (ours, PGD, bf16)', flush=True)
    arch, batch, n = ('robustclip-vit-nano', 8, 8) if b.a.cpu else ('ViT-L-14', 128, 256)
    if not b.want('sdpa', 40): return
    clip = load(b, arch); model = classifier(clip)
    x, y = points(b, model, n, clip.image_size, batch)
    for label, ctx in (('robustclip_nb (default kernels)', nullcontext), ('robustclip_nb (math attention)', lambda: sdpa_kernel([SDPBackend.MATH]))):
        try:
            r = attack_case(b, model, x, y, arch, 'pgd', b.a.pgd_steps, 'robustclip_nb', True, batch, label=label, ctx=ctx)
            b.records[-1]['section'] = 'sdpa'
        except Exception as e: _error(b, f'sdpa {label}', e)

def sec_autoattack(b:Bench):
    import torchattacks
    from robustclip_nb.core import parse_eps
    from robustclip_nb.attacks import AutoAttack
    print("[autoattack] ours (APGD-CE + APGD-T) vs torchattacks.AutoAttack('standard'), stage by stage", flush=True)
    arch, n = ('robustclip-vit-nano', 8) if b.a.cpu else ('ViT-B-32', 128)
    if not b.want('autoattack', 60): return
    eps = parse_eps(b.a.attack_eps)
    clip = load(b, arch); model = classifier(clip)
    x, y = points(b, model, n, clip.image_size, n)
    def ours(bf16):
        if not b.want('autoattack', 30, f'autoattack ours bf16={bf16}'): return
        try:
            aa = AutoAttack(model, eps=eps, steps=b.a.apgd_steps, version='standard-lite', seed=0)
            with b.amp(bf16):
                t = timeit(b, lambda: aa(x, y))
            b.add('autoattack', model=arch, impl='robustclip_nb', version=f'standard-lite ({b.a.apgd_steps} it.)', precision='bf16' if bf16 else 'fp32',
                  n=n, eps=b.a.attack_eps, seconds=round(t, 2), img_per_s=round(n / t, 1), stages={k: round(v, 4) for k, v in aa.log}, robust_acc=round(aa.log[-1][1], 4))
        except Exception as e: _error(b, f'autoattack ours bf16={bf16}', e)
    ours(True)
    theirs(b, model, x, y, arch, n, eps)
    ours(False)

def theirs(b:Bench, model, x, y, arch, n, eps):
    import torchattacks
    if not b.want('autoattack', 30, 'autoattack torchattacks'): return
    try:    # torchattacks' own MultiAttack semantics, stage by stage: each attack runs on the points still robust
        ta = torchattacks.AutoAttack(model, norm='Linf', eps=eps, version='standard', n_classes=10, seed=0)
        robust = torch.ones(n, dtype=torch.bool, device=b.dev); stages, total = {'clean': 1.0}, 0.0
        for atk in ta._autoattack.attacks:
            name = type(atk).__name__ + ('-T' if getattr(atk, 'multi_targeted', False) else '')
            idx = robust.nonzero().squeeze(1)
            if idx.numel() == 0: stages[name] = 0.0; continue
            if not b.want('autoattack', 20, f'autoattack torchattacks {name}'): stages[name] = None; break
            out = {}
            t = timeit(b, lambda: out.__setitem__('a', atk(x[idx], y[idx])))
            total += t
            with torch.no_grad(): robust[idx[model(out['a']).argmax(1) != y[idx]]] = False
            stages[name] = round(robust.float().mean().item(), 4)
            stages[name + '_seconds'] = round(t, 2)
        b.add('autoattack', model=arch, impl='torchattacks', version='standard (10 it. APGD/APGD-T/FAB-T, Square 5000)', precision='fp32', n=n,
              eps=b.a.attack_eps, seconds=round(total, 2), img_per_s=round(n / total, 1), stages=stages, robust_acc=round(robust.float().mean().item(), 4))
    except Exception as e: _error(b, 'autoattack torchattacks', e)

def sec_compile(b:Bench):
    if b.a.cpu:     # compiling takes minutes on 2 cores; the CPU mode runs everything else
        msg = 'compile: skipped in CPU mode'; print('  ' + msg); b.skipped.append(msg); return
    if not b.want('compile', 90): return
    print('[compile] ours PGD bf16 with the image encoder under torch.compile', flush=True)
    arch, batch, n = 'ViT-B-32', 256, 1024
    clip = load(b, arch, cached=False); model = classifier(clip)
    x, y = points(b, model, n, clip.image_size, batch)
    try:
        clip.model.visual = torch.compile(clip.model.visual)
        with b.amp(True): t = timeit(b, lambda: _ours('pgd', model, 1 / 255, 1)(x[:batch], y[:batch]))
        b.add('compile', model=arch, what='torch.compile + first bf16 attack call', seconds=round(t, 1))
        attack_case(b, model, x, y, arch, 'pgd', b.a.pgd_steps, 'robustclip_nb', True, batch, label='robustclip_nb (torch.compile)')
        b.records[-1]['section'] = 'compile'
    except Exception as e: _error(b, 'compile', e)

# ---------------------------------------------------------------------------------------------------------------- report
def summary(b:Bench) -> str:
    R = b.records; lines = []
    def rows(sec): return [r for r in R if r['section'] == sec]
    if rows('peak'): lines.append('matmul rate: ' + ', '.join(f"{r['dtype']} {r['tflops']} TFLOP/s" for r in rows('peak')))
    if rows('train'):
        lines.append(f"\n{'training step':48} {'img/s':>8} {'step s':>7} {'TFLOP/s':>8} {'MFU':>6} {'peak GB':>8}")
        for r in rows('train'):
            name = f"{r['model']} {r['method']} b{r['batch']}" + (' ckpt' if r['grad_checkpointing'] else '')
            mfu = f"{r['mfu']:.1%}" if r.get('mfu') is not None else '-'
            lines.append(f"{name:48} {r['img_per_s']:>8} {r['step_s']:>7} {r['tflops']:>8} {mfu:>6} {r.get('peak_mem_gb', '-'):>8}")
        for arch, bs, ck in sorted({(r['model'], r['batch'], r['grad_checkpointing']) for r in rows('train')}):
            pick = lambda m: [r for r in rows('train') if (r['model'], r['batch'], r['grad_checkpointing'], r['method']) == (arch, bs, ck, m) and 'peak_mem_gb' in r]
            full, lora = pick('tecoa'), pick('advlora')
            if full and lora:
                lines.append(f"  {arch} b{bs}{' ckpt' if ck else ''}: AdvLoRA peak memory / full fine-tuning (TeCoA) = {lora[0]['peak_mem_gb'] / full[0]['peak_mem_gb']:.2f}")
    if rows('attacks') or rows('sdpa') or rows('compile'):
        lines.append(f"\n{'attack':60} {'img/s':>9} {'robust acc':>10}")
        for r in rows('attacks') + rows('sdpa') + rows('compile'):
            if 'img_per_s' not in r: continue
            lines.append(f"{r['model'] + ' ' + r['attack'] + ' ' + r['impl'] + ' ' + r['precision']:60} {r['img_per_s']:>9} {r['robust_acc']:>10}")
        by = {(r['model'], r['attack'], r['impl'], r['precision']): r for r in rows('attacks')}
        for (m, atk, impl, prec), r in by.items():
            t = by.get((m, atk, 'torchattacks', 'fp32'))
            if impl == 'robustclip_nb' and t:
                lines.append(f"  {m} {atk} ours {prec} / torchattacks fp32: {r['img_per_s'] / t['img_per_s']:.2f}x img/s, robust acc {r['robust_acc']} vs {t['robust_acc']}")
    for r in rows('autoattack'):
        lines.append(f"autoattack {r['model']} {r['impl']} {r['version']} {r['precision']}: {r['seconds']} s, robust acc {r['robust_acc']}, stages {r['stages']}")
    if b.skipped: lines.append('\nskipped: ' + '; '.join(b.skipped))
    if b.errors: lines.append('errors: ' + '; '.join(b.errors))
    return '\n'.join(lines)

def main(argv=None):
    a = parse(argv)
    if not a.cpu and not torch.cuda.is_available(): sys.exit('no GPU is available: run with --cpu for the CPU mode')
    if a.cpu: torch.set_num_threads(a.threads)
    else: torch.backends.cuda.matmul.allow_tf32 = False    # fp32 as torch's default (and torchattacks' users) run it
    b = Bench(a)
    b.meta['environment'] = environment(b); b.peak_tflops = None
    print(f"robustclip_nb GPU benchmark, {b.meta['environment']['device']}, torch {torch.__version__}, budget {a.budget:.0f} s", flush=True)
    for name in SECTIONS:
        if name not in a.sections: continue
        if name != 'peak' and b.peak_tflops is None and 'peak' not in a.sections: b.peak_tflops = float('nan')
        try: globals()[f'sec_{name}'](b)
        except Exception as e: _error(b, name, e)
        b.write()
    s = summary(b)
    print('\n' + s)
    b.meta['summary'] = s; b.write()
    if a.out: print(f"wrote {a.out} ({b.meta['total_seconds']} s)")
    return b

if __name__ == '__main__':
    main()
