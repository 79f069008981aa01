"""Robust evaluation benchmark: our AutoAttack-style suite against torchattacks and the reference AutoAttack.

On one model, the same points and the same radii, in one run:
  - ours: robustclip_nb.attacks.AutoAttack (APGD-CE, then APGD-T on the top-9 other classes, 100 iterations each,
    1 restart; points leave the batch once fooled), as `robustclip eval --attack aa` and the `fare` protocol run it;
  - torchattacks: APGD (CE) then APGDT (9 targets), 100 iterations each, chained with MultiAttack (each attack on the
    points still robust);
  - the reference AutoAttack (fra31/auto-attack, version 'custom' with apgd-ce and apgd-t), when --reference names a
    checkout of it (it is not on PyPI); the script says when it is absent.
For each implementation and radius: the robust accuracy after APGD-CE and after the whole suite, the wall time, the
points that it breaks and ours does not (and the reverse), and the time ratio against ours. Per radius also an upper bound on the speed-up that
any full-strength implementation can have over the reference at equal cost per forward-backward pass: the points that
stay robust must go through every iteration of APGD-CE and of each APGD-T target wherever they run, so the reference's
work (APGD-CE on every clean-correct point, each target on at most the APGD-CE survivors) divided by that minimum.

With --fab, FAB-T alone (9 target classes, --steps iterations each, 1 restart) on the same points: ours
(robustclip_nb.attacks.FAB, which stops on a point once it is broken within eps) against the reference's FABAttack_PT
(targeted) and torchattacks' FAB (multi-targeted); records carry suite='fab-t' and after_apgd_ce is empty.

The model is the offline base CLIP trained by this project (a 9.9M-parameter model, not a paper model) as a zero-shot
classifier on Fashion-MNIST test images.

Usage:
  python benchmarks/bench_eval.py --reference /tmp/auto-attack --out figures/benchmarks/bench_eval_cpu.json
  python benchmarks/bench_eval.py --n 64 --steps 10          # a quick plumbing check
"""
import os, sys, json, time, argparse, logging, platform, contextlib, io
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch

def parse():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=None, help='write the JSON records here')
    p.add_argument('--reference', default=None, help='path of a checkout of fra31/auto-attack (the folder that holds autoattack/)')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads (1: the quietest timings)')
    p.add_argument('--eps', default='2/255,4/255,8/255', help='L-inf radii, comma-separated')
    p.add_argument('--n', type=int, default=500, help='Fashion-MNIST test points')
    p.add_argument('--batch', type=int, default=250)
    p.add_argument('--steps', type=int, default=100, help='iterations of each APGD run')
    p.add_argument('--skip-torchattacks', action='store_true')
    p.add_argument('--fab', action='store_true', help='also compare FAB-T alone (ours, the reference, torchattacks)')
    p.add_argument('--fab-only', action='store_true', help='compare FAB-T alone, not the APGD-CE + APGD-T suite')
    return p.parse_args()

def robust_flags(model, x_adv, y, batch):
    with torch.no_grad():
        return torch.cat([model(x_adv[i:i + batch]).argmax(1) == y[i:i + batch] for i in range(0, len(y), batch)])

def timed(fn):
    t = time.perf_counter(); out = fn(); return out, time.perf_counter() - t

def ours(model, x, y, eps, steps, batch):
    from robustclip_nb.attacks import AutoAttack
    after_ce, advs = [], []
    for i in range(0, len(y), batch):
        aa = AutoAttack(model, eps=eps, steps=steps, seed=0)
        advs.append(aa(x[i:i + batch], y[i:i + batch]))
        after_ce.append(aa.stages.get('apgd-ce', aa.stages['clean']))
    return torch.cat(advs), torch.cat(after_ce)

def torchattacks_suite(model, x, y, eps, steps, batch):
    import torchattacks
    ce = torchattacks.APGD(model, norm='Linf', eps=eps, steps=steps, n_restarts=1, loss='ce', seed=0)
    t = torchattacks.APGDT(model, norm='Linf', eps=eps, steps=steps, n_restarts=1, n_classes=int(model(x[:1]).shape[1]), seed=0)
    suite = torchattacks.MultiAttack([ce, t])
    adv_ce = torch.cat([ce(x[i:i + batch], y[i:i + batch]) for i in range(0, len(y), batch)])
    return adv_ce, suite

def reference_suite(model, eps, steps, path):
    sys.path.insert(0, os.path.abspath(path))
    from autoattack import AutoAttack as RefAA
    ref = RefAA(model, norm='Linf', eps=eps, version='custom', attacks_to_run=['apgd-ce', 'apgd-t'], seed=0, verbose=False, device='cpu')
    ref.apgd.n_iter = steps; ref.apgd.n_restarts = 1
    ref.apgd_targeted.n_iter = steps; ref.apgd_targeted.n_restarts = 1; ref.apgd_targeted.n_target_classes = 9
    return ref

def fab_runs(model, x, y, eps, steps, batch, a, ref_ok, n_classes):
    "FAB-T alone: {implementation: (robust flags, seconds)}."
    from robustclip_nb.attacks import FAB
    out = {}
    def per_batch(make):
        return torch.cat([make()(x[i:i + batch], y[i:i + batch]) for i in range(0, len(y), batch)])
    adv, dt = timed(lambda: per_batch(lambda: FAB(model, eps=eps, steps=steps, n_target_classes=9, seed=0)))
    out['robustclip_nb'] = (robust_flags(model, adv, y, batch), dt)
    if ref_ok:
        from autoattack.fab_pt import FABAttack_PT
        mk = lambda: FABAttack_PT(model, norm='Linf', n_restarts=1, n_iter=steps, eps=eps, seed=0, targeted=True, n_target_classes=9, device='cpu').perturb
        adv, dt = timed(lambda: per_batch(mk))
        out['reference AutoAttack'] = (robust_flags(model, adv, y, batch), dt)
    if not a.skip_torchattacks:
        import torchattacks
        torch.manual_seed(0)
        mk = lambda: torchattacks.FAB(model, norm='Linf', eps=eps, steps=steps, n_restarts=1, multi_targeted=True, n_classes=n_classes, seed=0)
        adv, dt = timed(lambda: per_batch(mk))
        out['torchattacks'] = (robust_flags(model, adv, y, batch), dt)
    return out

def main():
    a = parse()
    torch.set_num_threads(a.threads)
    logging.disable(logging.WARNING)
    from robustclip_nb.core import parse_eps
    from robustclip_nb.zoo import load_model
    from robustclip_nb.data import load_dataset, to_tensors
    from robustclip_nb.clip import zero_shot_classifier
    base = load_model('offline-base', progress=False).eval()
    ds = load_dataset('fashion-mnist', 'test', image_size=base.image_size, n=a.n)
    x, y = to_tensors(ds)
    model = zero_shot_classifier(base, ds.classnames, ds.templates).eval()
    for p_ in model.parameters(): p_.requires_grad_(False)
    clean = robust_flags(model, x, y, a.batch)
    ref_ok = False
    if a.reference:
        try: reference_suite(model, 1/255, a.steps, a.reference); ref_ok = True
        except Exception as e: print(f'reference AutoAttack not importable from {a.reference}: {type(e).__name__}: {e}')
    else: print('reference AutoAttack absent (pass --reference PATH to a checkout of fra31/auto-attack): compared with torchattacks only')
    print(f"offline-base (trained here, 9.9M parameters) zero-shot on Fashion-MNIST: n={len(y)}, clean accuracy {clean.float().mean():.3f}; "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, {a.steps} iterations")
    records = []
    for e in [parse_eps(s) for s in a.eps.split(',') if s]:
        if not a.fab_only:
            res = {}
            (adv, after_ce), dt = timed(lambda: ours(model, x, y, e, a.steps, a.batch))
            res['robustclip_nb'] = (robust_flags(model, adv, y, a.batch), after_ce & clean, dt)
            if not a.skip_torchattacks:
                torch.manual_seed(0)
                (adv_ce, suite), _ = timed(lambda: torchattacks_suite(model, x, y, e, a.steps, a.batch))
                adv, dt = timed(lambda: torch.cat([suite(x[i:i + a.batch], y[i:i + a.batch]) for i in range(0, len(y), a.batch)]))
                res['torchattacks'] = (robust_flags(model, adv, y, a.batch), robust_flags(model, adv_ce, y, a.batch) & clean, dt)
            if ref_ok:
                ref = reference_suite(model, e, a.steps, a.reference)
                with contextlib.redirect_stdout(io.StringIO()):
                    adv, dt = timed(lambda: ref.run_standard_evaluation(x, y, bs=a.batch))
                ce_only = reference_suite(model, e, a.steps, a.reference); ce_only.attacks_to_run = ['apgd-ce']
                with contextlib.redirect_stdout(io.StringIO()): adv_ce = ce_only.run_standard_evaluation(x, y, bs=a.batch)
                res['reference AutoAttack'] = (robust_flags(model, adv, y, a.batch), robust_flags(model, adv_ce, y, a.batch) & clean, dt)
            mine, mine_ce, t_mine = res['robustclip_nb']
            C = int(model(x[:1]).shape[1]); T = min(9, C - 1) if C > 2 else 0   # APGD-T targets (none on 2-class sets, as in the reference)
            ref_work = int(clean.sum()) * (a.steps + 1) + T * int(mine_ce.sum()) * (a.steps + 1)   # reference: APGD-CE on every clean-correct point, each target on at most the APGD-CE survivors
            min_work = int(mine.sum()) * a.steps * (1 + T)    # any full-strength suite: every stage in full on each point that stays robust
            bound = round(ref_work / min_work, 3) if min_work else None
            for impl, (ok, ok_ce, dt) in res.items():
                records.append(dict(suite='apgd-ce+apgd-t', eps=round(e, 8), eps_255=round(e * 255, 3), impl=impl, n=len(y), steps=a.steps,
                                    clean=round(clean.float().mean().item(), 4), after_apgd_ce=round(ok_ce.float().mean().item(), 4),
                                    robust=round(ok.float().mean().item(), 4), seconds=round(dt, 2),
                                    time_vs_ours=round(dt / t_mine, 3),
                                    they_break_we_do_not=int((mine & ~ok).sum()), we_break_they_do_not=int((ok & ~mine).sum()),
                                    max_speedup_full_strength=bound))
        if a.fab or a.fab_only:
            fr = fab_runs(model, x, y, e, a.steps, a.batch, a, ref_ok, int(model(x[:1]).shape[1]))
            mine, t_mine = fr['robustclip_nb']
            for impl, (ok, dt) in fr.items():
                records.append(dict(suite='fab-t', eps=round(e, 8), eps_255=round(e * 255, 3), impl=impl, n=len(y), steps=a.steps,
                                    clean=round(clean.float().mean().item(), 4), after_apgd_ce=None,
                                    robust=round(ok.float().mean().item(), 4), seconds=round(dt, 2), time_vs_ours=round(dt / t_mine, 3),
                                    they_break_we_do_not=int((mine & ~ok).sum()), we_break_they_do_not=int((ok & ~mine).sum())))
    hdr = f"{'suite':15} {'eps':>7} {'implementation':22} {'clean':>6} {'APGD-CE':>8} {'suite':>6} {'seconds':>8} {'time/ours':>9} {'they break, we not':>19} {'we break, they not':>19}"
    print(hdr)
    for r in records:
        ce = f"{r['after_apgd_ce']:8.3f}" if r['after_apgd_ce'] is not None else f"{'-':>8}"
        print(f"{r['suite']:15} {r['eps_255']:>5g}/255 {r['impl']:22} {r['clean']:6.3f} {ce} {r['robust']:6.3f} {r['seconds']:8.1f} "
              f"{r['time_vs_ours']:9.2f} {r['they_break_we_do_not']:19d} {r['we_break_they_do_not']:19d}")
    for r in records:
        if r.get('max_speedup_full_strength') and r['impl'] == 'robustclip_nb':
            print(f"{r['eps_255']:g}/255: no implementation that runs APGD-CE and every APGD-T target in full on the points that stay robust "
                  f"can be more than {r['max_speedup_full_strength']:.2f}x faster than the reference at equal cost per pass")
    if a.out:
        import importlib.metadata as md
        vers = {}
        for pkg in ('robustclip_nb', 'torch', 'torchattacks', 'open_clip_torch'):
            try: vers[pkg] = md.version(pkg)
            except md.PackageNotFoundError: pass
        meta = dict(model='offline-base (CLIP trained by robustclip_nb, 9.9M parameters, 32 px)', data='fashion-mnist test',
                    threads=torch.get_num_threads(), reference=bool(ref_ok), versions=vers, platform=platform.platform(),
                    date_utc=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), args=vars(a))
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, 'w') as f: json.dump(dict(meta=meta, records=records), f, indent=1)
        print(f'wrote {a.out}')

if __name__ == '__main__':
    main()
