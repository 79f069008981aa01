"""Benchmark robustclip_nb.attacks against torchattacks: strength (robust accuracy) and speed (images/s).

Same model, same data, same settings, one run each:
  1. the offline base model (`robustclip_nb.zoo.load_model('offline-base')`) as a zero-shot classifier on a
     Fashion-MNIST test subset: our PGD-10 and APGD-CE (100 it) vs torchattacks.PGD / torchattacks.APGD.
     Ours must be at least as strong (robust accuracy <= torchattacks').
  2. ViT-S-32 (random init, 224 px) on a few random images: speed only (accuracy of a random model is meaningless).
     With --device cuda the speed model defaults to ViT-B-32 at batch 256; --bf16 runs both libraries under bf16 autocast.

Usage:
  python benchmarks/bench_attacks.py --out bench_attacks.json                  # CPU defaults (~5-10 min on 2 cores)
  python benchmarks/bench_attacks.py --n 200 --batch 100 --skip-speed-model    # quicker
  python benchmarks/bench_attacks.py --device cuda --bf16 --out gpu.json       # on a GPU

Prints a table and writes JSON records (one per model x attack x implementation, plus ours/theirs ratios).
"""
import os, sys, json, time, argparse, logging, platform
os.environ.setdefault('HF_HUB_OFFLINE', '1')
from contextlib import nullcontext
import torch

def parse():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=None, help='write JSON results here')
    p.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    p.add_argument('--bf16', action='store_true', help='run the model under bf16 autocast (GPU)')
    p.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    p.add_argument('--eps', default='4/255', help='L-inf radius')
    p.add_argument('--n', type=int, default=500, help='Fashion-MNIST test images for the base-model part')
    p.add_argument('--batch', type=int, default=250, help='batch size of the base-model part')
    p.add_argument('--pgd-steps', type=int, default=10)
    p.add_argument('--apgd-steps', type=int, default=100)
    p.add_argument('--skip-base-model', action='store_true')
    p.add_argument('--skip-speed-model', action='store_true')
    p.add_argument('--speed-model', default=None, help='open_clip architecture for the speed part (default ViT-S-32 on CPU, ViT-B-32 on GPU)')
    p.add_argument('--speed-n', type=int, default=None, help='images for the speed part (default 8 on CPU, 1024 on GPU)')
    p.add_argument('--speed-batch', type=int, default=None, help='batch of the speed part (default 8 on CPU, 256 on GPU)')
    p.add_argument('--speed-steps', type=int, default=10, help='iterations of PGD and APGD in the speed part')
    return p.parse_args()

def sync(device):
    if str(device).startswith('cuda'): torch.cuda.synchronize()

def run_attack(make, model, x, y, batch, device, amp):
    "Attack all of x in batches; returns (robust accuracy, seconds)."
    atk = make()
    sync(device); t = time.perf_counter()
    advs = []
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch].to(device), y[i:i + batch].to(device)
        with amp(): advs.append(atk(xb, yb).detach())
    sync(device); dt = time.perf_counter() - t
    correct = 0
    with torch.no_grad(), amp():
        for i, a in zip(range(0, len(x), batch), advs):
            correct += (model(a).argmax(1) == y[i:i + batch].to(device)).sum().item()
    return correct / len(x), dt

def compare(label, model, x, y, batch, device, amp, eps, pgd_steps, apgd_steps, records, with_acc=True):
    import torchattacks
    from robustclip_nb.attacks import PGD, APGD
    def ours_pgd(): return PGD(model, eps=eps, steps=pgd_steps, step_size=eps / 4, seed=0)
    def theirs_pgd(): torch.manual_seed(0); return torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=pgd_steps, random_start=True)
    def ours_apgd(): return APGD(model, eps=eps, steps=apgd_steps, objective='ce', restarts=1, seed=0)
    def theirs_apgd(): return torchattacks.APGD(model, norm='Linf', eps=eps, steps=apgd_steps, n_restarts=1, loss='ce', seed=0)
    with torch.no_grad(), amp():
        clean = sum((model(x[i:i + batch].to(device)).argmax(1) == y[i:i + batch].to(device)).sum().item() for i in range(0, len(x), batch)) / len(x)
    rows = []
    for attack, steps, mine, theirs in [(f'PGD-{pgd_steps}', pgd_steps, ours_pgd, theirs_pgd), (f'APGD-CE-{apgd_steps}', apgd_steps, ours_apgd, theirs_apgd)]:
        res = {}
        for impl, make in [('robustclip_nb', mine), ('torchattacks', theirs)]:
            acc, dt = run_attack(make, model, x, y, batch, device, amp)
            res[impl] = (acc, dt)
            rec = dict(model=label, attack=attack, impl=impl, steps=steps, eps=eps, n=len(x), batch=batch, clean_acc=clean if with_acc else None,
                       robust_acc=acc if with_acc else None, seconds=round(dt, 3), img_per_s=round(len(x) / dt, 2))
            records.append(rec); rows.append(rec)
            print(f"  {label:22} {attack:14} {impl:14} robust_acc={acc if with_acc else float('nan'):.3f}  {dt:7.1f} s  {len(x) / dt:8.1f} img/s", flush=True)
        (a0, t0), (a1, t1) = res['robustclip_nb'], res['torchattacks']
        records.append(dict(model=label, attack=attack, impl='ratio ours/theirs', steps=steps, eps=eps, n=len(x),
                            robust_acc_ratio=(a0 / a1 if a1 else None) if with_acc else None,
                            at_least_as_strong=(a0 <= a1) if with_acc else None, speed_ratio=round(t1 / t0, 3)))
    return clean

def main():
    a = parse()
    torch.set_num_threads(a.threads)
    logging.disable(logging.WARNING)
    from robustclip_nb.core import parse_eps
    from robustclip_nb.clip import load_clip, zero_shot_classifier
    eps, device = parse_eps(a.eps), torch.device(a.device)
    if device.type == 'cuda' and not torch.cuda.is_available(): sys.exit('--device cuda given but no GPU is available')
    amp = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if a.bf16 else nullcontext
    records, notes = [], []
    t_all = time.perf_counter()
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, bf16 {a.bf16}, eps {a.eps}")

    if not a.skip_base_model:
        try:
            from robustclip_nb.zoo import load_model
            from robustclip_nb.data import load_dataset, to_tensors
            base = load_model('offline-base').to(device).eval()
            ds = load_dataset('fashion-mnist', 'test', image_size=base.image_size, n=a.n)
            x, y = to_tensors(ds)
            model = zero_shot_classifier(base, ds.classnames, ds.templates).eval()
            print(f"[1] offline-base zero-shot on fashion-mnist test, n={len(x)}, batch={a.batch}")
            clean = compare('offline-base/fmnist', model, x, y, a.batch, device, amp, eps, a.pgd_steps, a.apgd_steps, records)
            print(f"  clean accuracy {clean:.3f}")
        except Exception as e:   # the zoo model may not exist yet (it is trained by the zoo notebook)
            msg = f"base-model part skipped: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
            print('[1] ' + msg); notes.append(msg)

    if not a.skip_speed_model:
        cuda = device.type == 'cuda'
        name = a.speed_model or ('ViT-B-32' if cuda else 'ViT-S-32')
        n, batch = a.speed_n or (1024 if cuda else 8), a.speed_batch or (256 if cuda else 8)
        clip = load_clip(name, device=device).eval()
        model = zero_shot_classifier(clip, [f'class {i}' for i in range(10)]).eval()
        g = torch.Generator().manual_seed(0)
        x = torch.rand(n, 3, clip.image_size, clip.image_size, generator=g)
        with torch.no_grad(), amp(): y = torch.cat([model(x[i:i + batch].to(device)).argmax(1).cpu() for i in range(0, n, batch)])
        print(f"[2] {name} random init at {clip.image_size} px, speed only: n={n}, batch={batch}, steps={a.speed_steps}")
        compare(f'{name}-random/{clip.image_size}px', model, x, y, batch, device, amp, eps, a.speed_steps, a.speed_steps, records, with_acc=False)

    total = time.perf_counter() - t_all
    print('\nsummary (ours / torchattacks):')
    print(f"  {'model':24} {'attack':14} {'robust acc ours':>15} {'theirs':>8} {'ours img/s':>11} {'theirs img/s':>13} {'speed ratio':>11}")
    by = {(r['model'], r['attack'], r['impl']): r for r in records}
    for r in records:
        if r['impl'] != 'ratio ours/theirs': continue
        o, t = by[(r['model'], r['attack'], 'robustclip_nb')], by[(r['model'], r['attack'], 'torchattacks')]
        fa = lambda v: '-' if v is None else f'{v:.3f}'
        print(f"  {r['model']:24} {r['attack']:14} {fa(o['robust_acc']):>15} {fa(t['robust_acc']):>8} {o['img_per_s']:>11.1f} {t['img_per_s']:>13.1f} {r['speed_ratio']:>11.2f}")
    print(f"total {total:.0f} s")
    if a.out:
        meta = dict(torch=torch.__version__, device=str(device), threads=torch.get_num_threads(), bf16=a.bf16, eps=a.eps,
                    platform=platform.platform(), total_seconds=round(total, 1), notes=notes, args=vars(a))
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, 'w') as f: json.dump(dict(meta=meta, records=records), f, indent=1)
        print(f"wrote {a.out}")

if __name__ == '__main__':
    main()
