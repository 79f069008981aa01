"""What a full rerun of a profile (default `paper`) costs: FLOPs, GPU-hours, and the memory each training step needs.

Pure arithmetic on the FLOP model of `benchmarks/gpu.py` (imported, not copied: `vit_flops`, `text_flops`, `TRAIN_FLOPS`)
and on the shipped profile (`robustclip_nb.runner.load_profile`), merged over the experiment notebooks' own parameter
defaults exactly as `run_experiments` merges them; where both are silent the methods' defaults (`Method.train_defaults`,
`Method.batch_size`, `Method.hparams`) apply, as `train_method` applies them. Nothing is hard-coded from the profile.

FLOP conventions (gpu.py's module docstring): 1 multiply-add = 2 FLOP, matmuls only; F = one image forward, T = one
prompt's text forward at the full context length. Attack step with frozen weights = 2F; forward + backward with weight
gradients = 3F (TeCoA 23F = 10 steps + 3F; FARE 24F adds the frozen original's forward; AdvLoRA 22F = 10 steps + 2F);
AdvPT bank = 22F per image; AdvPT prompt step = 2*T*C. The same ratios are applied to the text tower (3T for a text
forward/backward with weight gradients). Evaluation passes are counted from the evaluation code (robust_correct, PGD with
track_best, APGD's initial gradient, AutoAttack's target and fooled checks): an UPPER bound attacks every point at every
stage, a LOWER bound counts only the clean pass (no point is correctly classified, so nothing is attacked).

Memory: measured GPU peaks from figures/benchmarks/gpu_h200*.json where they exist (H200, bf16 autocast); otherwise,
with --measure-cpu, the real training step (`train.train_step` on the method's loss, as gpu.py's `train_case` runs it)
is measured on the CPU (fp32, `train.PeakMemory` = sampled RSS increase, each case in a forked child) at a few reduced
batches and extrapolated linearly in the batch. Without --measure-cpu, earlier CPU measurements are read from
<out>/cpu_memory.json when present.

Usage:
  python benchmarks/paper_cost.py                              # seconds: tables + figures/paper-dryrun/cost/{cost.json,cost.md}
  python benchmarks/paper_cost.py --measure-cpu                # + CPU memory measurements (minutes; --archs/--methods limit it)
  python benchmarks/paper_cost.py --mfu 0.4 --peak-tflops 989 --gpus 8
"""
from __future__ import annotations
import os, sys, ast, json, math, time, copy, argparse, platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _p in (str(ROOT), str(Path(__file__).resolve().parent)):
    if _p not in sys.path: sys.path.insert(0, _p)
os.environ.setdefault('HF_HUB_OFFLINE', '1')

import gpu                                        # benchmarks/gpu.py: the FLOP model, reused
from gpu import vit_flops, text_flops, TRAIN_FLOPS, sig

DEFAULT_OUT = ROOT/'figures'/'paper-dryrun'/'cost'
GPU_JSONS = [ROOT/'figures'/'benchmarks'/'gpu_h200.json', ROOT/'figures'/'benchmarks'/'gpu_h200_memory.json']
EXPERIMENTS = ('fare_tecoa', 'advpt', 'mmcoa', 'advlora')

# ---------------------------------------------------------------------------------------------------- FLOP model (gpu.py)
GPU_ATTACK_STEPS = 10       # TRAIN_FLOPS count 10 attack steps inside training (gpu.py docstring)
ATTACK_STEP = 2             # F per attack step: forward + input-gradient backward, frozen weights (gpu.py docstring)
WEIGHT_FB = TRAIN_FLOPS['tecoa'] - ATTACK_STEP * GPU_ATTACK_STEPS     # 3: forward + backward with weight gradients
FROZEN_FB = TRAIN_FLOPS['advlora'] - ATTACK_STEP * GPU_ATTACK_STEPS   # 2: forward + backward through frozen weights (LoRA)
REF_FWD = TRAIN_FLOPS['fare'] - TRAIN_FLOPS['tecoa']                  # 1: FARE's forward of the frozen original
ADVPT_BANK_F = 22           # F per bank image at 10 attack steps (gpu.py docstring: "AdvPT bank = ... = 22F per image")
PROMPT_STEP_T = 2           # an AdvPT prompt step = 2 * T * C (gpu.py docstring)
CAPTIONS_PER_IMAGE = 5      # MS-COCO Karpathy test: 25,010 captions for 5,000 images
BERT = dict(width=768, layers=12, vocab=30522)   # bert-base-uncased, MMCoA's masked LM (BERT-Attack candidates)

def train_image_passes(method:str, hp:dict) -> float:
    "Image forwards F per training image of one step of `method` with hyper-parameters `hp` (mmcoa: 'mode' in hp)."
    k = hp.get('attack_steps', GPU_ATTACK_STEPS)
    if method in TRAIN_FLOPS:
        f = TRAIN_FLOPS[method] + ATTACK_STEP * (k - GPU_ATTACK_STEPS)
        if method == 'advlora' and hp.get('adaptive'): f += 1            # the clean no-grad forward of the loss ratio
        return f
    if method == 'clean-ft': return WEIGHT_FB
    if method == 'clean-lora': return FROZEN_FB
    if method == 'mmcoa':
        mode = hp.get('mode', 'multimodal')
        img_term = ATTACK_STEP * k + WEIGHT_FB          # PGD on the images, then phi(x_adv) with weight gradients
        txt_term = WEIGHT_FB                            # phi(x) with weight gradients
        return {'image': img_term, 'text': txt_term, 'multimodal': img_term + txt_term}[mode]
    raise ValueError(f'no per-image training factor for {method}')

# ---------------------------------------------------------------------------------------------------- profile and datasets
def notebook_defaults(experiment:str, nbs_dir=None) -> dict:
    "The parameter defaults of an experiment notebook (its cell tagged `parameters`), as Python values."
    from robustclip_nb.runner import experiments_dir
    nb = json.loads((experiments_dir(nbs_dir)/f'{experiment}.ipynb').read_text())
    cell = next(c for c in nb['cells'] if c['cell_type'] == 'code' and 'parameters' in c.get('metadata', {}).get('tags', []))
    out = {}
    for node in ast.parse(''.join(cell['source'])).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out

def experiment_params(profile:dict, experiment:str, nbs_dir=None) -> dict:
    "The parameters papermill hands the notebook: its defaults, overridden by the profile's defaults and experiment entry."
    return {**notebook_defaults(experiment, nbs_dir), **profile['defaults'], **(profile['experiments'][experiment] or {})}

def n_classes(name:str) -> int|None:
    import robustclip_nb.paper_data  # noqa: F401 (registers the paper datasets)
    from robustclip_nb.data import DATASETS
    return DATASETS[name]['n_classes']

def templates_for(name:str) -> list:
    "The prompt templates the dataset's loader attaches (paper_data: TEMPLATES, CIFAR's shared list, ImageNet's 80)."
    from robustclip_nb.paper_data import TEMPLATES, imagenet_templates
    if name in TEMPLATES: return TEMPLATES[name]
    if name.startswith('cifar'): return TEMPLATES['cifar']
    if name.startswith('imagenet'): return imagenet_templates()
    raise KeyError(f'no templates known for {name}')

def classnames_for(name:str) -> list|None:
    "Class names where the package knows them without the data (else None)."
    import robustclip_nb.paper_data as pd_
    known = {'cifar10': pd_.CIFAR10_CLASSES, 'cifar100': pd_.CIFAR100_CLASSES, 'stl10': pd_.STL10_CLASSES,
             'flowers102': pd_.FLOWERS102_CLASSES, 'caltech101': pd_.CALTECH101_CLASSES,
             'eurosat': list(pd_.EUROSAT_CLASSES.values()), 'pcam': pd_.PCAM_CLASSES}
    if name in known: return list(known[name])
    try:
        if name in ('imagenet', 'imagenet-sketch'): return pd_.imagenet_classnames()
        if name == 'imagenet-r':
            alln, allw = pd_.imagenet_classnames(), pd_.imagenet_wnids('imagenet')
            return [alln[allw.index(w)] for w in pd_.imagenet_wnids('imagenet_r')]
    except Exception: return None
    return None

def _eligible_words(text:str) -> tuple[int, int]:
    "(words the text attack may substitute, words) of `text`, by the text attack's own rule."
    from robustclip_nb.text_attacks import STOP_WORDS, _eligible, _split_word
    words = text.split()
    return sum(_eligible(_split_word(w)[1], STOP_WORDS) for w in words), len(words)

_CLASS_W = {}
def prompt_words(name:str, all_templates:bool, k:int|None=None) -> dict:
    "Mean eligible words W and words L of the dataset's prompts (first template only unless `all_templates`)."
    ts = templates_for(name) if all_templates else templates_for(name)[:1]
    cn = classnames_for(name)
    if cn is not None and k is not None: cn = cn[:k]
    if cn is None:    # class names come with the data: the template's words + the mean class name of the sets known here
        if not _CLASS_W:
            per = [_eligible_words(c) for d in ('cifar100', 'stl10', 'flowers102', 'caltech101', 'eurosat', 'imagenet') for c in (classnames_for(d) or [])]
            _CLASS_W.update(w=sum(p[0] for p in per) / len(per), l=sum(p[1] for p in per) / len(per))
        tw = [_eligible_words(t.replace('{c}', '')) for t in ts]
        return dict(W=sum(w for w, _ in tw) / len(tw) + _CLASS_W['w'], L=sum(l for _, l in tw) / len(tw) + _CLASS_W['l'], classnames='estimated')
    per = [_eligible_words(t.format(c=c)) for c in cn for t in ts]
    return dict(W=sum(p[0] for p in per) / len(per), L=sum(p[1] for p in per) / len(per), classnames='known')

def bert_flops(words:float) -> float:
    "One masked-LM forward of bert-base on a prompt of `words` words (one word piece per word + [CLS], [SEP]; gpu.py's tower model + MLM head)."
    L = words + 2
    return gpu._tower_flops(BERT['width'], BERT['layers'], L, out_flops=2 * L * BERT['width'] ** 2 + 2 * L * BERT['width'] * BERT['vocab'])

def text_attack_cost(W:float, L:float, top_k:int, budget:int, masked_lm:bool) -> dict:
    "Text forwards T (and masked-LM FLOPs) per attacked text of `TextAttack` (word importance by deletion, top-k candidates)."
    b = max(min(budget, W), 0)
    # reference/prepare 1 + current 1 + W deletions; low: the first b ranked words each take top_k candidates and are kept (+1 update);
    # high: every eligible word is tried and none is kept
    lo = 2 + W + b * (top_k + 1); hi = 2 + W + W * top_k
    return dict(T_lo=lo, T_hi=max(hi, lo), lm_lo=(b * bert_flops(L) if masked_lm else 0.0), lm_hi=(W * bert_flops(L) if masked_lm else 0.0))

def expected_unique(pool:int, draws:int) -> float:
    "Expected distinct items among `draws` uniform draws from `pool`."
    return pool * (1 - (1 - 1 / pool) ** draws)

# ---------------------------------------------------------------------------------------------------- training runs
def make_run(experiment, method, arch, dataset, eps, steps, batch, hp, **extra) -> dict:
    "A training run as `train_method` resolves it (method defaults where the arguments are None)."
    from robustclip_nb.methods import get_method
    from robustclip_nb.core import parse_eps
    m = get_method(method, **(hp or {}))
    e = parse_eps(eps, 'linf') if m.adversarial else 0.0
    lr = extra.pop('lr', None)
    run = dict(experiment=experiment, method=method, arch=arch, dataset=dataset, eps=e, eps_255=round(e * 255, 3),
               lr=lr if lr is not None else m.train_defaults['lr'], lr_from='profile' if lr is not None else f'{method} default',
               steps=int(steps if steps is not None else m.train_defaults['steps']),
               batch=int(batch if batch is not None else m.batch_size), hp=dict(m.hp),
               steps_from='profile' if steps is not None else f'{method} default', batch_from='profile' if batch is not None else f'{method} default', **extra)
    run['key'] = json.dumps([method, arch, dataset, round(e, 10), run['steps'], run['batch'], run['hp'], run['lr']], sort_keys=True, default=str)
    label = method + (f" eps={run['eps_255']:g}/255" if m.adversarial else '')
    label += ''.join(f' {k}={v}' for k, v in (hp or {}).items() if k in ('rank', 'init', 'adaptive', 'mode') and (v != m.hparams.get(k) or k == 'mode'))
    if experiment == 'advpt': label += f' on {dataset}'
    run['label'] = label
    return run

def _dedupe(runs):
    out = {}
    for r in runs: out.setdefault(r['key'], r)
    return list(out.values())

def training_runs(profile:dict, experiment:str, nbs_dir=None) -> tuple[list, dict]:
    "(unique training runs, params) of one experiment, enumerated as its notebook enumerates them."
    from robustclip_nb.methods import get_method
    p = experiment_params(profile, experiment, nbs_dir)
    arch = p['model']
    if experiment == 'fare_tecoa':
        runs = [make_run(experiment, m, arch, p['train_dataset'], e, p['steps'], p['batch_size'], p['hparams'], lr=p['lr'])
                for m in p['methods'] for e in p['train_eps']]
    elif experiment == 'advpt':
        hp_for = lambda m: {k: v for k, v in p['hparams'].items() if k in get_method(m).hparams}
        def steps_for(m, d):   # train_method's epochs rule: full batches of the few-shot subset (shots x classes) per epoch
            if p['steps'] is not None or not p.get('epochs'): return p['steps']
            shots = hp_for(m).get('shots', get_method(m).hparams.get('shots'))
            B = p['batch_size'] or get_method(m).batch_size
            return math.ceil(p['epochs'] * max(1, shots * n_classes(d) // B))
        runs = [make_run(experiment, m, arch, d, p['bank_eps'], steps_for(m, d), p['batch_size'], hp_for(m), lr=p['lr'])
                for d in p['datasets'] for m in p['methods']]
    elif experiment == 'mmcoa':
        runs = [make_run(experiment, 'mmcoa', arch, p['train_dataset'], p['train_eps'], p['steps'], p['batch_size'],
                         {**p['hparams'], 'mode': mode}, lr=p['lr']) for mode in p['modes']]
    elif experiment == 'advlora':
        runs = [e[2] for e in advlora_entries(p) if e[2] is not None]
    else: raise KeyError(experiment)
    return _dedupe(runs), p

def advlora_entries(p:dict) -> list:
    "(group, label, run or None) in the advlora notebook's order (cell 'entries')."
    arch, ds = p['model'], p['train_dataset']
    def train(method, eps=None, **hp):
        if method in ('advlora', 'clean-lora'): hp = {**p['lora_hparams'], **hp}
        return make_run('advlora', method, arch, ds, eps if eps is not None else p['train_eps'], p['method_steps'].get(method),
                        p['batch_size'], hp, lr=p['lr'])
    e = [('adaptation', 'vanilla', None)]
    for name, (clean_m, adv_m) in p['adaptations'].items():
        e += [('adaptation', f'{name} (clean)', train(clean_m)), ('adaptation', f'{name} (adversarial)', train(adv_m))]
    e += [('rank', f'AdvLoRA r={r}', train('advlora', rank=r)) for r in p['ranks']]
    e += [('eps', f'AdvLoRA eps={x}', train('advlora', eps=x)) for x in p['sweep_eps']]
    e += [('variant', v, train('advlora', **hp)) for v, hp in p['variants'].items()]
    return e

def run_cost(run:dict) -> dict:
    "FLOPs of one training run: image side, text side (low/high where the text attack makes it an estimate), and what they count."
    F, T = vit_flops(run['arch']), text_flops(run['arch'])
    m, hp, S, B = run['method'], run['hp'], run['steps'], run['batch']
    C = n_classes(run['dataset'])                      # None: a caption set (the retrieval objective)
    nt = len(templates_for(run['dataset'])) if C is not None else 0
    parts = []   # (name, side, flops_lo, flops_hi, formula)
    if m in ('advpt', 'clean-pt'):
        shots = hp.get('shots')
        n_bank = shots * C if shots else None
        if n_bank is None: raise ValueError('AdvPT without shots: the bank is the whole training set (size unknown here)')
        k = hp.get('attack_steps', GPU_ATTACK_STEPS)
        per = (ADVPT_BANK_F + ATTACK_STEP * (k - GPU_ATTACK_STEPS)) if m == 'advpt' else 1
        parts.append(('bank', 'image', n_bank * per * F, n_bank * per * F, f'{shots} shots x {C} classes = {n_bank:,} images x {per}F'))
        parts.append(('prompt steps', 'text', S * PROMPT_STEP_T * T * C, S * PROMPT_STEP_T * T * C, f'{S} steps x {PROMPT_STEP_T}T x {C} classes'))
        run.update(images=n_bank, f_per_image=per)
    elif m == 'mmcoa':
        per = train_image_passes(m, hp)
        parts.append(('image side', 'image', S * B * per * F, S * B * per * F, f'{S} steps x {B} x {per}F'))
        mode = hp.get('mode', 'multimodal')
        n_txt = B if not hp.get('multi_positive', True) else expected_unique(C * nt, B)
        pw = prompt_words(run['dataset'], all_templates=True)
        ta = text_attack_cost(pw['W'], pw['L'], hp.get('text_top_k', 10), hp.get('text_budget', 1), hp.get('text_generator') == 'masked-lm')
        t_fixed = (1 + WEIGHT_FB if mode in ('image', 'multimodal') else 0) + (WEIGHT_FB if mode in ('text', 'multimodal') else 0)
        parts.append(('text tower (ref + fwd/bwd)', 'text', S * n_txt * t_fixed * T, S * n_txt * t_fixed * T, f'{S} steps x {n_txt:g} texts x {t_fixed}T'))
        if mode in ('text', 'multimodal'):
            parts.append(('text attack (estimate)', 'text', S * n_txt * (ta['T_lo'] * T + ta['lm_lo']), S * n_txt * (ta['T_hi'] * T + ta['lm_hi']),
                          f"{S} steps x {n_txt:g} texts x {ta['T_lo']:.1f}-{ta['T_hi']:.1f}T (W={pw['W']:.2f} eligible words) + masked-LM forwards"))
        run.update(images=S * B, f_per_image=per, text_attack=ta if mode != 'image' else None, texts_per_step=n_txt)
    else:
        per = train_image_passes(m, hp)
        parts.append(('steps', 'image', S * B * per * F, S * B * per * F, f'{S} steps x {B} x {per}F'))
        run.update(images=S * B, f_per_image=per)
    if m in ('tecoa', 'clean-ft', 'advlora', 'clean-lora'):
        if C is not None:                                  # setup: the frozen class-prompt head of the training set
            parts.append(('class prompts (setup)', 'text', C * nt * T, C * nt * T, f'{C} classes x {nt} templates x T'))
        else:                                              # every step: the batch's captions through the frozen text tower (at most B distinct)
            parts.append(('captions (per step)', 'text', S * B * T, S * B * T, f'{S} steps x {B} captions x T'))
    run['parts'] = [dict(name=a, side=s, flops_lo=lo, flops_hi=hi, formula=f) for a, s, lo, hi, f in parts]
    for side in ('image', 'text'):
        run[f'{side}_flops_lo'] = sum(x['flops_lo'] for x in run['parts'] if x['side'] == side)
        run[f'{side}_flops_hi'] = sum(x['flops_hi'] for x in run['parts'] if x['side'] == side)
    return run

# ---------------------------------------------------------------------------------------------------- evaluation
def _ta_defaults():
    import inspect
    from robustclip_nb.attacks import AutoAttack
    from robustclip_nb.text_attacks import TextAttack
    sa, st = inspect.signature(AutoAttack.__init__).parameters, inspect.signature(TextAttack.__init__).parameters
    return sa['n_target_classes'].default, st['top_k'].default

def attack_passes(attack:str, steps:int|None, C:int) -> tuple[float, float, str]:
    "(low, high) image forwards F per test point of one `evaluate_classification` call, and how they are counted."
    from robustclip_nb.evaluate import IMAGE_ATTACKS
    if attack == 'none': return 1, 1, 'clean forward'
    k = steps if steps is not None else IMAGE_ATTACKS[attack]
    if attack == 'pgd':       # robust_correct's clean pass + k gradient steps + PGD's final eval (track_best) + the check
        return 1, 1 + ATTACK_STEP * k + 1 + 1, f'PGD-{k}: 1 + {ATTACK_STEP}x{k} + 2'
    if attack == 'apgd-ce':   # + APGD's skip-successful eval, initial gradient and k steps
        return 1, 1 + 1 + ATTACK_STEP * (k + 1) + 1, f'APGD-CE-{k}: 1 + 1 + {ATTACK_STEP}x{k + 1} + 1'
    if attack in ('aa', 'apgd-t'):
        n_t, _ = _ta_defaults()
        t = min(n_t, C - 1) if C > 2 else 0     # AutoAttack: APGD-T on the top-(C-1) targets, skipped on 2 classes
        ce = (ATTACK_STEP * (k + 1) + 1) if attack == 'aa' else 0
        hi = 1 + 1 + ce + t * (1 + ATTACK_STEP * (k + 1) + 1) + 1
        return 1, hi, f'AA-{k}: 2 + APGD-CE {ATTACK_STEP}x{k + 1}+1 + {t} targets x ({ATTACK_STEP}x{k + 1}+2) + 1'
    raise KeyError(attack)

class Ledger:
    "Evaluation items: (experiment, group, side, what) with low/high FLOPs; aggregated for the tables."
    def __init__(self): self.items = []
    def add(self, experiment, group, side, what, lo, hi=None, **info):
        self.items.append(dict(experiment=experiment, group=group, side=side, what=what, flops_lo=float(lo), flops_hi=float(lo if hi is None else hi), **info))

def _head_T(C, nt, T): return C * nt * T

def _clf(L:Ledger, exp, model, arch, ds, n, attack, steps, eps_list, head:str|None, group, F, T, head_templates=None):
    "One `evaluate_defence`-style classification evaluation: head, clean pass, then each eps under `attack`."
    C = n_classes(ds); nt = len(templates_for(ds)) if head_templates is None else head_templates
    if head: L.add(exp, 'class prompts', 'text', head, _head_T(C, nt, T), model=model, dataset=ds, count=C * nt)
    L.add(exp, group, 'image', 'clean', n * F, model=model, dataset=ds, count=n, passes_lo=1, passes_hi=1)
    for e in eps_list:
        lo, hi, how = attack_passes(attack, steps, C)
        L.add(exp, group, 'image', how, n * lo * F, n * hi * F, model=model, dataset=ds, eps=e, count=n, passes_lo=lo, passes_hi=hi)

# METHODS.md (RobustVLM README, ViT-L/14, average zero-shot accuracy in %): clean, robust at eps 2/255, robust at eps 4/255
REF_ACC = {('base', 0): (73.1, 0.0, 0.0), ('tecoa', 2): (60.0, 43.6, 27.0), ('fare', 2): (67.0, 43.1, 20.5),
           ('tecoa', 4): (54.2, 42.3, 31.9), ('fare', 4): (61.1, 45.9, 32.4)}

def ref_acc_passes(k:int, C:int, clean:float, robust:float) -> float:
    "AutoAttack-k passes per test point when a fraction `clean` is attacked and a fraction `robust` survives APGD-CE (to every APGD-T target)."
    n_t, _ = _ta_defaults()
    t = min(n_t, C - 1) if C > 2 else 0
    return 1 + clean * (1 + ATTACK_STEP * (k + 1) + 1 + 1) + robust * t * (ATTACK_STEP * (k + 1) + 2)

def eval_fare_tecoa(p, runs, L):
    arch = p['model']; F, T = vit_flops(arch), text_flops(arch)
    for model, run in [('base', None)] + [(r['label'], r) for r in runs]:
        ref = REF_ACC.get(('base', 0) if run is None else (run['method'], round(run['eps_255'])))
        for d in p['eval_datasets']:
            start = len(L.items)
            _clf(L, 'fare_tecoa', model, arch, d, p['n'], p['attack'], p['attack_steps'], p['eval_eps'], 'hand-crafted head (C x templates)',
                 f"{p['attack']} x {len(p['eval_eps'])} eps", F, T)
            for it in L.items[start:]:     # an estimate with the papers' average accuracies (where METHODS.md gives them)
                it['flops_est'] = it['flops_lo']
                e255 = round(parse_eps_255(it['eps'])) if 'eps' in it else None
                if ref and p['attack'] == 'aa' and e255 in (2, 4):
                    k = p['attack_steps'] or 100
                    it['flops_est'] = it['count'] * ref_acc_passes(k, n_classes(d), ref[0] / 100, ref[1 if e255 == 2 else 2] / 100) * F
                elif 'eps' in it: it['flops_est'] = None

def parse_eps_255(e) -> float:
    from robustclip_nb.core import parse_eps
    return parse_eps(e, 'linf') * 255

def eval_advpt(p, runs, L):
    arch = p['model']; F, T = vit_flops(arch), text_flops(arch); k = p['attack_steps']
    for d in p['datasets']:
        C, nt = n_classes(d), len(templates_for(d))
        _clf(L, 'advpt', 'hand-crafted', arch, d, p['n'], p['attack'], k, p['eval_eps'], 'hand-crafted head (C x templates)', 'hand-crafted prompts', F, T)
        for m in p['methods']:
            _clf(L, 'advpt', m, arch, d, p['n'], p['attack'], k, p['eval_eps'], 'learned prompts (C)', f'{m} adaptive', F, T, head_templates=1)
            L.add('advpt', 'class prompts', 'text', 'transfer source head (C x templates)', _head_T(C, nt, T), model=m, dataset=d, count=C * nt)
            for e in p['eval_eps']:     # transfer: clean pass on the learned head, PGD crafted on the base model, check
                lo, hi, how = attack_passes(p['attack'], k, C)
                L.add('advpt', f'{m} transfer', 'image', how, p['n'] * lo * F, p['n'] * hi * F, model=m, dataset=d, eps=e, count=p['n'], passes_lo=lo, passes_hi=hi)
    d, n = p['synergy_dataset'], p['synergy_n']; C, nt = n_classes(d), len(templates_for(d))
    heads = ['hand-crafted', *p['methods']]; defs = ['none', *[x for x in p['defences'] if x != 'none']]
    L.add('advpt', 'class prompts', 'text', 'synergy heads', _head_T(C, nt, T) + len(p['methods']) * C * T, model='all heads', dataset=d, count=C * nt + len(p['methods']) * C)
    ks = p['attack_steps'] or 10
    lo, hi, how = attack_passes('pgd', ks, C)
    for h in heads:
        for x in defs:
            L.add('advpt', 'synergy', 'image', 'clean', n * F, model=h, dataset=d, defence=x, count=n)
            for proto in ('adaptive (BPDA)', 'transfer'):
                L.add('advpt', 'synergy', 'image', f'{proto} {how}', n * lo * F, n * hi * F, model=h, dataset=d, defence=x, count=n, passes_lo=lo, passes_hi=hi)

def _text_eval(L, exp, model, ds, C, T, budget, generator, k=None, group='text attack on class prompts'):
    "attack_prompts: the C prompts of the first template rewritten once for the set (ZeroShotPromptCE), then the new head."
    _, top_k = _ta_defaults()
    pw = prompt_words(ds, all_templates=False, k=k)
    ta = text_attack_cost(pw['W'], pw['L'], top_k, budget, generator == 'masked-lm')
    L.add(exp, group, 'text', f"C prompts x (2 + W + {budget}({top_k}+1) to 2 + W + {top_k}W)T + masked-LM + C T head" if generator == 'masked-lm'
          else f"C prompts x (2 + W + {budget}({top_k}+1) to 2 + W + {top_k}W)T + C T head",
          C * (ta['T_lo'] * T + ta['lm_lo']) + C * T, C * (ta['T_hi'] * T + ta['lm_hi']) + C * T, model=model, dataset=ds if k is None else f'{ds}[:{k}]',
          count=C, W=pw['W'], T_per_prompt=[ta['T_lo'], ta['T_hi']])

def eval_mmcoa(p, runs, L):
    arch = p['model']; F, T = vit_flops(arch), text_flops(arch)
    models = ['vanilla'] + [r['label'] for r in runs]
    eps = p['eval_eps'] if isinstance(p['eval_eps'], (list, tuple)) else [p['eval_eps']]
    def four(model, d, n, C, kcls=None):
        dl = d if kcls is None else f'{d}[:{kcls}]'
        L.add('mmcoa', 'class prompts', 'text', 'one-template heads (none, pgd): 2 C T', 2 * C * T, model=model, dataset=dl, count=2 * C)
        L.add('mmcoa', 'clean', 'image', 'clean', n * F, model=model, dataset=dl, count=n)
        for e in eps:
            lo, hi, how = attack_passes('pgd', p['attack_steps'], C)
            L.add('mmcoa', 'image attack (PGD)', 'image', how, n * lo * F, n * hi * F, model=model, dataset=dl, eps=e, count=n, passes_lo=lo, passes_hi=hi)
        # text: embed the n images (F), attack the prompts, then the clean pass on the new head
        L.add('mmcoa', 'text attack', 'image', 'embed + clean pass', 2 * n * F, model=model, dataset=dl, count=n)
        _text_eval(L, 'mmcoa', model, d, C, T, p['text_budget'], p['text_generator'], kcls)
        for e in eps:   # multimodal: the same text step, then PGD on the attacked head
            lo, hi, how = attack_passes('pgd', p['attack_steps'], C)
            L.add('mmcoa', 'multimodal attack', 'image', f'embed + {how}', n * (1 + lo) * F, n * (1 + hi) * F, model=model, dataset=dl, eps=e, count=n, passes_lo=1 + lo, passes_hi=1 + hi)
            _text_eval(L, 'mmcoa', model, d, C, T, p['text_budget'], p['text_generator'], kcls, group='multimodal: text step')
    for model in models:
        for d in p['eval_datasets']: four(model, d, p['n'], n_classes(d))
    Cs = n_classes(p['class_sweep_dataset'])
    for kc in p['class_sweep']:   # vanilla only, the first k classes: n*k/C of the n test images (expected)
        four('vanilla', p['class_sweep_dataset'], p['n'] * kc / Cs, kc, kcls=kc)

def eval_advlora(p, runs, L):
    arch = p['model']; F, T = vit_flops(arch), text_flops(arch)
    seen = set()
    for g, label, run in advlora_entries(p):
        retrieval_training = n_classes(p['train_dataset']) is None       # the notebook scores every model on the retrieval set then
        dsets = [p['eval_dataset']] + ([p['retrieval_dataset']] if g in ('adaptation', 'variant') or retrieval_training else [])
        eps_list = p['sensitivity_eval_eps'] if g == 'eps' else p['eval_eps']
        key = (run['key'] if run else 'vanilla', tuple(dsets), tuple(eps_list))
        if key in seen: continue                       # the notebook's evaluate_once cache
        seen.add(key)
        model = run['label'] if run else 'vanilla'
        learned = run is not None and run['method'] in ('advpt', 'clean-pt')
        for d in dsets:
            if n_classes(d) is None:                    # retrieval: every image is attacked (exact, no bound)
                n, cap = p['n'], CAPTIONS_PER_IMAGE
                from robustclip_nb.evaluate import IMAGE_ATTACKS
                k = p['attack_steps'] if p['attack_steps'] is not None else IMAGE_ATTACKS['pgd']
                for e in [0.0, *eps_list]:
                    L.add('advlora', 'retrieval captions', 'text', f'{n * cap:,} captions', n * cap * T, model=model, dataset=d, eps=e, count=n * cap)
                    passes = 1 if e == 0 else 1 + ATTACK_STEP * k + 1 + 1
                    L.add('advlora', f'retrieval ({g})', 'image', 'embed' if e == 0 else f'embed + PGD-{k} + embed', n * passes * F, model=model, dataset=d, eps=e, count=n, passes_lo=passes, passes_hi=passes)
            else:
                _clf(L, 'advlora', model, arch, d, p['n'], p['attack'], p['attack_steps'], eps_list,
                     'learned prompts (C)' if learned else 'hand-crafted head (C x templates)', f'classification ({g})', F, T, head_templates=1 if learned else None)

EVALS = {'fare_tecoa': eval_fare_tecoa, 'advpt': eval_advpt, 'mmcoa': eval_mmcoa, 'advlora': eval_advlora}

# ---------------------------------------------------------------------------------------------------- measured GPU records
def gpu_records(paths=GPU_JSONS) -> list:
    "Training-step records of the GPU benchmark files, with each file's device and measured bf16 matmul rate."
    out = []
    for p in paths:
        p = Path(p)
        if not p.exists(): continue
        d = json.loads(p.read_text())
        peak = next((r['tflops'] for r in d['records'] if r['section'] == 'peak' and r.get('dtype') == 'bfloat16'), None)
        dev = d['meta'].get('environment', {}).get('device', '?')
        out += [{**r, 'file': str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p), 'device': dev, 'peak_bf16_tflops': peak}
                for r in d['records'] if r['section'] == 'train']
    return out

def measured_rate(recs, arch, method, batch, what='step') -> dict|None:
    "Achieved TFLOP/s of gpu.py's measurement of `method` on `arch` (no checkpointing): at `batch`, else interpolated linearly in log(batch) between the measured batches around it, else the nearest."
    def one(r):
        if what == 'bank':
            if r.get('bank_mfu') is None: return None
            return dict(tflops=r['bank_mfu'] * r['peak_bf16_tflops'], mfu=r['bank_mfu'], batch=str(r['batch']), device=r['device'], file=r['file'], peak=r['peak_bf16_tflops'])
        return dict(tflops=r['tflops'], mfu=r['mfu'], batch=str(r['batch']), device=r['device'], file=r['file'], peak=r['peak_bf16_tflops'])
    cands = {}
    for r in recs:
        if r['model'] == arch and r['method'] == method and not r['grad_checkpointing'] and r.get('mfu') is not None: cands.setdefault(r['batch'], r)
    if not cands: return None
    bs = sorted(cands)
    if batch in cands or batch < bs[0] or batch > bs[-1]:
        return one(cands[min(bs, key=lambda b: abs(math.log(b / batch)))])
    lo, hi = max(b for b in bs if b < batch), min(b for b in bs if b > batch)
    a, b = one(cands[lo]), one(cands[hi])
    if a is None or b is None: return a or b
    w = math.log(batch / lo) / math.log(hi / lo)
    tf = a['tflops'] + w * (b['tflops'] - a['tflops'])
    return dict(tflops=tf, mfu=tf / ((a['peak'] + b['peak']) / 2), batch=f'{lo}-{hi} interpolated', device=a['device'],
                file=sorted({a['file'], b['file']}), peak=(a['peak'] + b['peak']) / 2)

# ---------------------------------------------------------------------------------------------------- costing
def hours(flops, tflops_per_s): return flops / (tflops_per_s * 1e12) / 3600

def cost(profile:dict|str='paper', mfu:float=0.35, peak_tflops:float=989.0, gpus:int=8, gpu_jsons=GPU_JSONS, nbs_dir=None) -> dict:
    "Everything but the memory section: FLOPs per arch, training runs, evaluation items, GPU-hours per experiment."
    from robustclip_nb.runner import load_profile
    prof = load_profile(profile)
    rate = mfu * peak_tflops
    recs = gpu_records(gpu_jsons)
    res = dict(profile=prof.get('name'), mfu=mfu, peak_tflops=peak_tflops, gpus=gpus, assumed_tflops=rate, archs={}, experiments={})
    for name in EXPERIMENTS:
        if name not in prof['experiments']: continue
        runs, p = training_runs(prof, name, nbs_dir)
        arch = p['model']
        res['archs'][arch] = dict(image_forward_F=vit_flops(arch), text_forward_T=text_flops(arch))
        for r in runs:
            run_cost(r)
            r['gpu_hours'] = hours(r['image_flops_lo'] + r['text_flops_lo'], rate), hours(r['image_flops_hi'] + r['text_flops_hi'], rate)
            # at the MFU measured for this method's step (H200), where gpu.py measured one; the rest at --mfu
            meas = None
            if r['method'] in TRAIN_FLOPS: meas = {'step': measured_rate(recs, arch, r['method'], r['batch'])}
            elif r['method'] == 'advpt': meas = {'bank': measured_rate(recs, arch, 'advpt', r['batch'], 'bank'), 'prompt': measured_rate(recs, arch, 'advpt', r['batch'])}
            if meas and all(meas.values()):
                h = 0.0
                for part in r['parts']:
                    k = 'step' if 'step' in meas and part['side'] == 'image' else 'bank' if part['name'] == 'bank' else 'prompt' if part['name'] == 'prompt steps' else None
                    h += hours(part['flops_hi'], meas[k]['tflops'] if k else rate)
                r['measured'] = {k: dict(v, mfu_of_nominal=v['tflops'] / peak_tflops) for k, v in meas.items()}
                r['gpu_hours_measured'] = h
            else: r['measured'], r['gpu_hours_measured'] = None, None
        L = Ledger(); EVALS[name](p, runs, L)
        tr_lo = sum(r['image_flops_lo'] + r['text_flops_lo'] for r in runs); tr_hi = sum(r['image_flops_hi'] + r['text_flops_hi'] for r in runs)
        ev_lo = sum(i['flops_lo'] for i in L.items); ev_hi = sum(i['flops_hi'] for i in L.items)
        text_lo = sum(r['text_flops_lo'] for r in runs) + sum(i['flops_lo'] for i in L.items if i['side'] == 'text')
        text_hi = sum(r['text_flops_hi'] for r in runs) + sum(i['flops_hi'] for i in L.items if i['side'] == 'text')
        tot_lo, tot_hi = tr_lo + ev_lo, tr_hi + ev_hi
        meas_h = sum(r['gpu_hours_measured'] if r['gpu_hours_measured'] is not None else hours(r['image_flops_hi'] + r['text_flops_hi'], rate) for r in runs)
        res['experiments'][name] = dict(
            arch=arch, params={k: v for k, v in p.items() if k != 'out_dir'}, runs=runs, eval_items=L.items,
            eval_groups=_groups(L.items),
            flops=dict(train_lo=tr_lo, train_hi=tr_hi, eval_lo=ev_lo, eval_hi=ev_hi, text_lo=text_lo, text_hi=text_hi, total_lo=tot_lo, total_hi=tot_hi),
            gpu_hours_1=dict(train_lo=hours(tr_lo, rate), train_hi=hours(tr_hi, rate), eval_lo=hours(ev_lo, rate), eval_hi=hours(ev_hi, rate),
                             total_lo=hours(tot_lo, rate), total_hi=hours(tot_hi, rate)),
            gpu_hours_measured_train=meas_h,
            eval_estimate_ref_acc=(sum(i['flops_est'] for i in L.items) if L.items and all(i.get('flops_est') is not None for i in L.items) else None),
            gpu_hours_measured_total_hi=meas_h + hours(ev_hi, rate), gpu_hours_measured_total_lo=meas_h + hours(ev_lo, rate))
        res['experiments'][name][f'gpu_hours_{gpus}'] = {k: v / gpus for k, v in res['experiments'][name]['gpu_hours_1'].items()}
    E = res['experiments'].values()
    tot = {k: sum(e['flops'][k] for e in E) for k in ('train_lo', 'train_hi', 'eval_lo', 'eval_hi', 'text_lo', 'text_hi', 'total_lo', 'total_hi')}
    keys = ('train_lo', 'train_hi', 'eval_lo', 'eval_hi', 'total_lo', 'total_hi')
    res['total'] = dict(flops=tot, gpu_hours_1={k: sum(e['gpu_hours_1'][k] for e in E) for k in keys},
                        gpu_hours_measured_total_lo=sum(e['gpu_hours_measured_total_lo'] for e in E),
                        gpu_hours_measured_total_hi=sum(e['gpu_hours_measured_total_hi'] for e in E))
    res['total'][f'gpu_hours_{gpus}'] = {k: v / gpus for k, v in res['total']['gpu_hours_1'].items()}
    return res

def _groups(items) -> list:
    "Evaluation items summed by (group, side, what)."
    g = {}
    for i in items:
        k = (i['group'], i['side'], i['what'])
        a = g.setdefault(k, dict(group=k[0], side=k[1], what=k[2], items=0, points=0.0, flops_lo=0.0, flops_hi=0.0,
                                 models=set(), datasets=set()))
        a['items'] += 1; a['points'] += i.get('count', 0); a['flops_lo'] += i['flops_lo']; a['flops_hi'] += i['flops_hi']
        if 'model' in i: a['models'].add(i['model'])
        if 'dataset' in i: a['datasets'].add(i['dataset'])
    out = []
    for a in g.values(): out.append({**a, 'models': len(a['models']), 'datasets': len(a['datasets'])})
    return out

# ---------------------------------------------------------------------------------------------------- memory
def memory_targets(res:dict) -> list:
    "The training steps whose memory matters: each profile run's (arch, method, batch), plus FARE/TeCoA/AdvLoRA at batch 128 on every arch."
    rows, seen = [], set()
    for name, e in res['experiments'].items():
        pt = {}
        for r in e['runs']:
            m = r['method']
            if m == 'mmcoa': m = f"mmcoa:{r['hp'].get('mode', 'multimodal')}"
            if m in ('advpt', 'clean-pt'):     # one prompt step for both; it grows with the classes: the largest two C
                pt.setdefault((r['arch'], r['batch']), set()).add(n_classes(r['dataset'])); continue
            key = (r['arch'], m, r['batch'], None)
            if key in seen: continue
            seen.add(key); rows.append(dict(experiment=name, arch=r['arch'], method=m, batch=r['batch'], classes=None, why='profile run'))
        for (arch, b), cs in pt.items():
            for c in sorted(cs, reverse=True)[:2]:
                rows.append(dict(experiment=name, arch=arch, method='advpt / clean-pt prompt step', batch=b, classes=c, why='profile run'))
    for arch in ('ViT-L-14', 'ViT-B-16', 'ViT-B-32'):
        for m in ('fare', 'tecoa', 'advlora'):
            if (arch, m, 128, None) not in seen:
                seen.add((arch, m, 128, None)); rows.append(dict(experiment='(papers\' shape)', arch=arch, method=m, batch=128, classes=None, why="FARE's batch 128"))
    return rows

def fit_line(xs, ys) -> dict:
    "Least-squares y = a + b x, with R^2 and the largest residual."
    n = len(xs); mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    a = my - b * mx
    res = [y - (a + b * x) for x, y in zip(xs, ys)]
    ss = sum((y - my) ** 2 for y in ys)
    return dict(intercept=a, slope=b, r2=1 - sum(r * r for r in res) / ss if ss else 1.0, max_residual=max(abs(r) for r in res), points=list(zip(xs, ys)))

def _same_method(m):   # the measured method whose step bounds an unmeasured sibling
    return {'clean-ft': 'tecoa', 'clean-lora': 'advlora', 'clean-pt': 'advpt', 'mmcoa:text': 'mmcoa:multimodal'}.get(m)

def cpu_fits(cpu:dict|None) -> dict:
    "(arch, method, axis) -> fit of peak GB over the batch (or classes) from CPU measurements."
    fits = {}
    if not cpu: return fits
    by = {}
    for c in cpu.get('cases', []):
        if c.get('peak_mb') is None: continue
        by.setdefault((c['arch'], c['method'], c['axis']), []).append((c[c['axis']], c['peak_mb'] / 1024))
    for k, pts in by.items():
        pts = sorted(pts)
        if len({x for x, _ in pts}) >= 2: fits[k] = fit_line([x for x, _ in pts], [y for _, y in pts])
    return fits

def memory_rows(res:dict, cpu:dict|None, gpu_jsons=GPU_JSONS) -> dict:
    "The memory table: measured (H200), computed from H200 measurements, extrapolated from the CPU, or missing."
    recs = [r for r in gpu_records(gpu_jsons) if r.get('peak_mem_gb') is not None]
    fits = cpu_fits(cpu)
    # calibration: CPU fp32 slope vs H200 bf16 slope of the same step (ViT-B-16 TeCoA), when both exist
    calib = None
    g = sorted({(r['batch'], r['peak_mem_gb']) for r in recs if r['model'] == 'ViT-B-16' and r['method'] == 'tecoa' and not r['grad_checkpointing']})
    f = fits.get(('ViT-B-16', 'tecoa', 'batch'))
    if len(g) >= 2 and f:
        gf = fit_line([b for b, _ in g], [m for _, m in g])
        calib = dict(arch='ViT-B-16', method='tecoa', gpu_slope_gb=gf['slope'], gpu_intercept_gb=gf['intercept'], gpu_points=g,
                     cpu_slope_gb=f['slope'], cpu_intercept_gb=f['intercept'], ratio=gf['slope'] / f['slope'] if f['slope'] > 0 else None)
    rows = []
    for t in memory_targets(res):
        arch, m, B, C = t['arch'], t['method'], t['batch'], t['classes']
        row = dict(t, source='not measured', peak_gb=None, detail='')
        gm = 'advpt' if C is not None else m
        if C is None and not any(r['model'] == arch and r['method'] == m for r in recs) and _same_method(m): gm = _same_method(m)
        bound = ' (bound: the clean sibling of this step, without the attack)' if gm != m and C is None else ''
        exact = [r for r in recs if r['model'] == arch and r['method'] == gm and r['batch'] == B and not r['grad_checkpointing']
                 and (C is None or r['classes'] == C)]
        same = sorted({(r['batch'], r['peak_mem_gb']) for r in recs if r['model'] == arch and r['method'] == gm and not r['grad_checkpointing'] and C is None})
        if exact:
            r = exact[0]
            row.update(source='measured on H200, bf16 autocast' + (f' ({gm})' if bound else ''), peak_gb=r['peak_mem_gb'],
                       detail=f"{r['file']}" + (f" (AdvPT, {r['classes']} classes)" if C is not None else '') + bound)
        elif len(same) >= 2:
            lf = fit_line([b for b, _ in same], [v for _, v in same])
            row.update(source='computed: linear in batch through H200 measurements' + (f' ({gm})' if bound else ''), peak_gb=lf['intercept'] + lf['slope'] * B,
                       detail=f"H200 points {same}: {lf['intercept']:.2f} GB + {lf['slope'] * 1024:.1f} MB x batch" + bound)
        elif gm == 'advpt' and C is not None:
            r = next((r for r in recs if r['model'] == arch and r['method'] == 'advpt'), None)
            cf = fits.get((arch, 'advpt', 'classes'))
            if r and cf:
                # scale the measured H200 peak by the CPU fit's shape in C (the prompt step's activations grow with the classes)
                est = r['peak_mem_gb'] * (cf['intercept'] + cf['slope'] * C) / (cf['intercept'] + cf['slope'] * r['classes'])
                row.update(source='computed: H200 measurement scaled by the CPU fit in classes', peak_gb=est,
                           detail=f"H200 {r['peak_mem_gb']} GB at {r['classes']} classes x CPU-fit ratio ({cf['intercept']:.2f} + {cf['slope'] * 1024:.1f} MB x C)")
            elif r:
                row.update(source='bound: <= the H200 measurement at more classes', peak_gb=r['peak_mem_gb'] if C <= r['classes'] else None,
                           detail=f"H200 {r['peak_mem_gb']} GB at {r['classes']} classes (the step's activations grow with C)")
        if row['peak_gb'] is None and C is None:
            fm = m if (arch, m, 'batch') in fits else _same_method(m)
            f = fits.get((arch, fm, 'batch')) if fm else None
            if f:
                est = f['intercept'] + f['slope'] * B
                row.update(source='extrapolated from CPU fp32 (linear in batch)', peak_gb=est, fit=f,
                           detail=f"{f['intercept']:.2f} GB + {f['slope'] * 1024:.1f} MB x batch, fit on batches {[x for x, _ in f['points']]} (R^2 {f['r2']:.3f})"
                                  + (f'; {m} bounded by {fm}' if fm != m else ''))
                if calib and calib['ratio']:
                    row['peak_gb_bf16_est'] = f['intercept'] + f['slope'] * calib['ratio'] * B
        rows.append(row)
    return dict(rows=rows, calibration=calib, cpu_fits={f'{a} {m} ({ax})': v for (a, m, ax), v in fits.items()}, cpu_meta=(cpu or {}).get('meta'))

# ---------------------------------------------------------------------------------------------------- CPU measurement
# (arch, method, axis, values): what gpu_h200*.json does not cover, plus one calibration case. The peak of a step is about
# resident + max(activations x batch, gradients): during backward the activations are freed as the gradients are allocated.
# A linear fit is only valid where the activations dominate, so the batches start above G / A (trainable fp32 gradients over
# the activations of one image: ViT-B-32 ~350 MB / ~30 MB, MMCoA both towers ~600 MB / ~120 MB (multimodal), ViT-B-16 ~340 / ~115 MB;
# LoRA and prompt steps have almost no gradients).
DEFAULT_CPU_PLAN = [
    ('ViT-B-32', 'mmcoa:multimodal', 'batch', (8, 16)),
    ('ViT-B-32', 'tecoa', 'batch', (16, 32)),
    ('ViT-B-32', 'fare', 'batch', (16, 32)),
    ('ViT-B-32', 'advlora', 'batch', (4, 8)),
    ('ViT-B-32', 'mmcoa:image', 'batch', (12, 24)),
    ('ViT-B-16', 'fare', 'batch', (4, 8)),
    ('ViT-B-16', 'tecoa', 'batch', (4, 8)),           # calibration: the same step is measured on the H200 at 32 and 128
    ('ViT-B-16', 'advpt', 'classes', (8, 16, 32)),    # the prompt step at batch 32 grows with the classes
    ('ViT-L-14', 'fare', 'batch', (2, 4)),            # only with --archs ViT-L-14 (measured on the H200 already)
    ('ViT-L-14', 'tecoa', 'batch', (2, 4)),
    ('ViT-L-14', 'advlora', 'batch', (2, 4)),
]
DEFAULT_CPU_ARCHS = ('ViT-B-32', 'ViT-B-16')

def _measure_case(base, arch:str, method:str, batch:int, classes:int, attack_steps:int=1, steps:int=2) -> dict:
    "Peak RSS increase (MB) of `steps` real training steps of `method` on a copy of `base` (fp32, CPU; the first on one sample), setup included."
    from robustclip_nb.core import parse_eps
    from robustclip_nb.methods import get_method
    from robustclip_nb.train import TrainConfig, make_optimizer, train_step, PeakMemory
    import torch
    name, _, mode = method.partition(':')
    hp = {}
    if name in ('fare', 'tecoa', 'advlora', 'mmcoa'): hp = dict(attack_steps=attack_steps, attack_step_size='1/255')
    if name == 'mmcoa': hp.update(mode=mode or 'multimodal', text_generator='embedding', multi_positive=False)
    if name == 'advpt': hp = dict(shots=None, n_ctx=32, init='random')
    m = get_method(name, **hp)
    m.eps, m.seed = parse_eps({'mmcoa': '1/255', 'advpt': '8/255'}.get(name, '4/255')), 0
    data = gpu._train_data(batch * steps, base.image_size, classes, batch)
    t0 = time.perf_counter()
    with PeakMemory(torch.device('cpu')) as pm:
        model = m.setup(copy.deepcopy(base), data, m.eps)
        if name == 'advpt':   # the bank: random embeddings stand in (its values do not change the prompt step's memory)
            n = len(data.batches)
            m.subset, m.sampler = torch.arange(n), data.batches.sampler
            m.bank = torch.randn(n, base.model.text_projection.shape[1], generator=torch.Generator().manual_seed(0))
        cfg = TrainConfig(**{**m.train_defaults, 'lr': 1e-5})
        opt = make_optimizer(model.parameters(), cfg)
        model.train()
        for k in range(steps):   # the first step on one sample: it only has to allocate the AdamW state the later steps hold
            m.step = k
            bt = gpu._to(m.batch(data, k), torch.device('cpu'))
            if k == 0 and steps > 1: bt = tuple(t[:1] for t in bt)
            train_step(model, m.loss, bt, opt, amp=False)
    return dict(peak_mb=round(pm.peak_mb, 1), seconds=round(time.perf_counter() - t0, 1),
                trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad))

def _rss_high_water() -> bool:
    "glibc only: release free heap pages, serve allocations < 32 MB from the heap and never trim it, so that RSS only grows: the sampled RSS is then the high-water mark of what the case allocates (freed blocks would otherwise go back to the OS between samples, and inherited free pages would be reused unseen)."
    try:
        import ctypes
        libc = ctypes.CDLL('libc.so.6')
        libc.malloc_trim(0)
        return bool(libc.mallopt(-3, 32 << 20)) and bool(libc.mallopt(-1, 2**31 - 1))   # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    except (OSError, AttributeError): return False

def _child(conn, base, spec):
    try:
        hw = _rss_high_water()
        conn.send(dict(ok=True, rss_high_water=hw, **_measure_case(base, **spec)))
    except Exception as e: conn.send(dict(ok=False, error=f'{type(e).__name__}: {str(e)[:300]}'))
    finally: conn.close()

def measure_cpu(archs, methods, budget_s:float, threads:int=1, classes:int=10, attack_steps:int=1, steps:int=2, batches=None, previous=None) -> dict:
    "Run the CPU plan, each case in a forked child of a process that loaded the model once; merge with `previous` cases."
    import multiprocessing as mp, types, torch
    torch.set_num_threads(threads)
    ctx = mp.get_context('fork')
    t0, cases, skipped = time.perf_counter(), [], []
    dev = types.SimpleNamespace(dev=torch.device('cpu'))
    for arch in dict.fromkeys(a for a, *_ in DEFAULT_CPU_PLAN):
        if arch not in archs: continue
        plan = [(m, ax, vals) for a, m, ax, vals in DEFAULT_CPU_PLAN if a == arch and (methods is None or m in methods or m.split(':')[0] in methods)]
        if not plan: continue
        print(f'[cpu] {arch}: loading a random-init model', flush=True)
        base = gpu.load(dev, arch).float()
        for m, ax, vals in plan:
            if batches and ax == 'batch': vals = batches
            for v in vals:
                left = budget_s - (time.perf_counter() - t0)
                if left < 20: skipped.append(f'{arch} {m} {ax}={v}: CPU budget spent'); print('  skipped', skipped[-1], flush=True); continue
                spec = dict(arch=arch, method=m, batch=v if ax == 'batch' else 32, classes=v if ax == 'classes' else classes,
                            attack_steps=attack_steps, steps=steps)
                a, b = ctx.Pipe(duplex=False)
                pr = ctx.Process(target=_child, args=(b, base, spec)); pr.start(); b.close()
                out = a.recv() if a.poll(left) else dict(ok=False, error=f'timed out after {left:.0f} s')
                pr.join(5)
                if pr.is_alive(): pr.kill(); pr.join()
                rec = dict(spec, axis=ax, **{k: out.get(k) for k in ('peak_mb', 'seconds', 'trainable_params', 'rss_high_water', 'error') if k in out})
                cases.append(rec)
                print(f"  {arch} {m} {ax}={v}: " + (f"peak {out['peak_mb']:.0f} MB in {out['seconds']} s" if out.get('ok') else out['error']), flush=True)
        gpu._MODELS.pop(arch, None); del base
    new = {(c['arch'], c['method'], c['axis']) for c in cases}    # a re-measured case replaces all its earlier points
    old = [c for c in (previous or {}).get('cases', []) if (c['arch'], c['method'], c['axis']) not in new]
    meta = dict(date_utc=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), seconds=round(time.perf_counter() - t0, 1), threads=threads,
                torch=torch.__version__, python=platform.python_version(), cpu=platform.processor() or platform.machine(),
                precision='fp32', attack_steps_inside=attack_steps, steps_per_case=steps, first_step_batch=1, synthetic_classes=classes,
                how='train.train_step on the method loss (as gpu.py train_case), train.PeakMemory (RSS increase, sampled every 20 ms) '
                    'around setup (model copy, FARE original) + optimizer + steps; each case in a forked child of a process holding the base model',
                skipped=skipped, measured=sorted({f"{c['arch']} {c['method']}" for c in cases}))
    if previous and previous.get('meta'):    # earlier invocations whose cases were kept
        pm = dict(previous['meta']); meta['earlier'] = pm.pop('earlier', []) + [pm]
    return dict(meta=meta, cases=old + cases)

# ---------------------------------------------------------------------------------------------------- report
def _pf(v):
    "FLOPs in PFLOP, readable."
    x = v / 1e15
    return f'{x:,.0f}' if x >= 100 else f'{x:.1f}' if x >= 1 else f'{x:.3g}'

def _h(v): return '-' if v is None else f'{v:,.0f}' if v >= 100 else f'{v:.1f}' if v >= 1 else f'{v:.2f}'
def _rng(lo, hi, f): return f(lo) if abs(hi - lo) <= 1e-9 * max(abs(hi), 1) else f'{f(lo)} - {f(hi)}'

def md_table(head, rows) -> str:
    return '\n'.join(['| ' + ' | '.join(head) + ' |', '|' + '|'.join('---' for _ in head) + '|'] + ['| ' + ' | '.join(str(c) for c in r) + ' |' for r in rows])

def assumptions(res) -> list:
    g = res['gpus']
    return [
        f"FLOP model: benchmarks/gpu.py (`vit_flops`, `text_flops`, `TRAIN_FLOPS` = {TRAIN_FLOPS}), imported; matmuls only, 1 multiply-add = 2 FLOP; "
        "T is one prompt at the full 77-token context (open_clip always runs the full context).",
        f"Attack step = {ATTACK_STEP}F; TRAIN_FLOPS assume {GPU_ATTACK_STEPS} attack steps, other step counts shift them by {ATTACK_STEP}F per step. "
        f"Derived from TRAIN_FLOPS: forward+backward with weight gradients {WEIGHT_FB}F (clean-ft), through frozen weights {FROZEN_FB}F (clean-lora), "
        f"FARE's reference forward {REF_FWD}F; AdvLoRA with adaptive scaling +1F (clean no-grad forward); text tower with weight gradients 3T (MMCoA).",
        "Parameters: notebook parameter defaults, overridden by the profile's `defaults` and experiment entry (as `run_experiments` merges them); "
        "steps/batch/hyper-parameters left None fall back to the method's `train_defaults`, `batch_size`, `hparams` (as `train_method`).",
        "Runs and evaluations that the notebooks reuse (train_method's argument hash, the advlora notebook's `evaluate_once` cache) are counted once; "
        "everything else is counted as run from scratch (no cached runs or evaluations).",
        "Every test split holds at least `n` images (true for all the profile's datasets); the MMCoA class sweep uses the expected n*k/C images of the first k classes.",
        "Evaluation passes follow the code: PGD-k = 1 clean + 2k + 1 (track_best) + 1 check; AutoAttack-k = 2 + APGD-CE (2(k+1) + 1) + "
        f"t targets x (2(k+1) + 2) + 1 with t = min({_ta_defaults()[0]}, C-1), APGD-T skipped on 2 classes (pcam). UPPER bound: every point reaches every stage; "
        "LOWER bound: only the clean pass (nothing correctly classified). Retrieval attacks hit every image (exact).",
        f"Class-prompt heads: classes x templates x T per model and dataset (paper_data.TEMPLATES, imagenet_templates() = 80); learned prompts C x T. "
        f"Retrieval: {CAPTIONS_PER_IMAGE} captions per image.",
        "AdvPT bank: shots x classes images (each class has >= shots training images), 22F each at 10 steps (clean-pt: 1F, no attack); "
        f"prompt step {PROMPT_STEP_T}*T*C (C = the dataset's classes).",
        "MMCoA text attack (an ESTIMATE): per text 2 + W + b(top_k + 1) text forwards (low: the first b ranked words are accepted) to 2 + W + W*top_k "
        "(high: every eligible word tried, none kept), W = mean eligible words of the prompts by the attack's own stop-word rule (class names where the "
        "package knows them; else the mean of the known sets), plus one bert-base forward per word tried for the masked-LM generator. "
        "With multi_positive False every one of the batch's texts is attacked (duplicates included).",
        f"GPU-hours: FLOPs / (MFU x peak) with MFU {res['mfu']:.0%} of {res['peak_tflops']:g} TFLOP/s (H100 SXM dense bf16) = {res['assumed_tflops']:.0f} TFLOP/s; "
        f"{g} GPUs = 1-GPU hours / {g} (ideal scaling: no communication, no idle GPUs, evaluation split evenly).",
        "'Measured MFU' column: the achieved TFLOP/s of gpu.py's measurement of that method's step on an H200 (figures/benchmarks/gpu_h200*.json, "
        "bf16 autocast, 10-step PGD; at the run's batch, else interpolated linearly in log(batch) between measured batches, else the nearest); gpu.py's `mfu` is relative to the H200's measured 8192^3 bf16 matmul rate, not to the "
        "989 nominal: the table gives both. Parts without a measurement stay at --mfu.",
    ]

def notes(res) -> list:
    out = []
    E = res['experiments']
    ms = [(r['label'], v) for e in E.values() for r in e['runs'] for k, v in (r.get('measured') or {}).items() if k == 'step' and r['arch'] == 'ViT-L-14']
    if ms:
        lo, hi = min(v['tflops'] for _, v in ms), max(v['tflops'] for _, v in ms)
        out.append(f"MFU baseline: gpu.py's `mfu` divides by the H200's measured bf16 matmul rate ({ms[0][1]['peak']:.0f} TFLOP/s), not by 989. The ViT-L-14 "
                   f"training steps it measured achieve {lo:.0f}-{hi:.0f} TFLOP/s ({lo / res['peak_tflops']:.0%}-{hi / res['peak_tflops']:.0%} of {res['peak_tflops']:g}), "
                   f"so the default {res['mfu']:.0%} of {res['peak_tflops']:g} ({res['assumed_tflops']:.0f} TFLOP/s) is about {res['assumed_tflops'] / hi:.2f}x optimistic "
                   "for them; the measured-MFU column uses the achieved rates. Small-batch steps measure far lower (ViT-B-16 at batch 32: 5-9%).")
    if 'fare_tecoa' in E:
        p = E['fare_tecoa']['params']
        if 'imagenet' not in p['eval_datasets']:
            out.append("fare_tecoa: METHODS.md lists ImageNet with the FARE zero-shot datasets ('plus ImageNet'); the profile's `eval_datasets` leave it out "
                       f"({len(p['eval_datasets'])} sets). METHODS.md says FARE/TeCoA evaluate eps 1, 2, 4/255; the profile evaluates {p['eval_eps']} (RobustVLM's README columns).")
    if 'advlora' in E:
        p = E['advlora']['params']; runs = E['advlora']['runs']
        t = next((r for r in runs if r['method'] == 'tecoa'), None); a = next((r for r in runs if r['method'] == 'advlora'), None)
        pt = next((r for r in runs if r['method'] == 'advpt'), None)
        if t and a:
            out.append(f"advlora: the profile sets no batch_size or lr, so every run uses its method's offline defaults: TeCoA/clean-ft at batch {t['batch']} "
                       f"(lr {t['lr']:g}), AdvLoRA/clean-LoRA {a['steps']} steps at batch {a['batch']} ({a['steps'] * a['batch']:,} images: "
                       f"{a['steps'] * a['batch'] / 1.28e6:.2%} of an ImageNet epoch) against {t['steps']:,} x {t['batch']} for full fine-tuning, "
                       "so the LoRA vs full-FT comparison is not at matched budgets (METHODS.md/the profile note say AdvLoRA's steps are not given).")
            if t['hp'].get('attack_steps') != a['hp'].get('attack_steps'):
                out.append(f"advlora: `lora_hparams` (attack_steps {a['hp'].get('attack_steps')}) reach only advlora/clean-lora; the TeCoA (full FT) run "
                           f"keeps TeCoA's offline default of {t['hp'].get('attack_steps')} PGD steps, not the papers' 10.")
        if pt:
            out.append(f"advlora: its prompt-tuning pair (advpt/clean-pt) gets no hyper-parameters: shots {pt['hp'].get('shots')} (AdvPT's protocol: 16), "
                       f"init {pt['hp'].get('init')!r} (n_ctx {pt['hp'].get('n_ctx')}), bank eps {pt['eps_255']:g}/255 = train_eps (AdvPT: 8/255): "
                       f"a bank of {pt['images']:,} ImageNet images.")
        out.append("advlora: runs evaluated in two groups (the adaptation AdvLoRA = rank 8 = eps 4/255 run) are evaluated again on ImageNet, "
                   "because `evaluate_once` and `evaluate_defence`'s cache key include the dataset list; counted as the notebook does it.")
    if 'advpt' in E:
        p = E['advpt']['params']; r0 = E['advpt']['runs'][0]
        per = [(r['dataset'], r['images']) for r in E['advpt']['runs'] if r['method'] == 'advpt']
        ep = ', '.join(f"{d} {r0['steps'] * r0['batch'] / n:.1f}" for d, n in per[:3] + per[-2:])
        out.append(f"advpt: the profile gives no prompt-training steps; AdvPT's default {r0['steps']} steps x batch {r0['batch']} apply to every dataset, "
                   f"i.e. very different epochs over the {p['hparams'].get('shots')}-shot bank (epochs: {ep}, ...); METHODS.md gives no epoch count for AdvPT. "
                   "METHODS.md's AdvPT datasets also include ucf101, which the profile (and the registry) lacks.")
    if 'mmcoa' in E:
        p = E['mmcoa']['params']
        out.append(f"mmcoa: {p['steps']} steps x {p['batch_size']} = {p['steps'] * p['batch_size'] / 50000:.2f} epochs of CIFAR-100's 50k images (METHODS.md: 30) - consistent.")
        out.append("mmcoa: the masked-LM text attack (MaskedLMCandidates, device=None) keeps bert-base on the CPU and attacks the texts one by one with "
                   "small text-tower batches; its FLOPs are small, but its wall time (CPU LM forwards, many tiny GPU launches per step) is not "
                   "captured by an MFU model and will dominate MMCoA's text and multimodal training.")
    return out

def to_markdown(res, mem) -> str:
    g = res['gpus']; L = []
    L.append(f"# Cost of a full `{res['profile']}` profile rerun\n")
    L.append(f"Generated by `benchmarks/paper_cost.py` ({res.get('date_utc', '')}). Assumed rate: {res['mfu']:.0%} MFU of {res['peak_tflops']:g} TFLOP/s "
             f"= {res['assumed_tflops']:.0f} TFLOP/s per GPU (H100-class, bf16); {g} GPUs: ideal scaling. FLOPs in PFLOP (1e15). Ranges are lower - upper bounds.\n")
    L.append('## FLOPs per image and per prompt\n')
    L.append(md_table(['architecture (224 px)', 'image forward F (GFLOP)', 'text forward T (GFLOP, 77 tokens)', 'used by'],
                      [[a, f"{v['image_forward_F'] / 1e9:.2f}", f"{v['text_forward_T'] / 1e9:.2f}",
                        ', '.join(n for n, e in res['experiments'].items() if e['arch'] == a)] for a, v in res['archs'].items()]))
    L.append(f"\nPer training image: TeCoA {TRAIN_FLOPS['tecoa']}F, FARE {TRAIN_FLOPS['fare']}F, AdvLoRA {TRAIN_FLOPS['advlora']}F at 10 PGD steps "
             f"(gpu.py); AdvPT bank {ADVPT_BANK_F}F per image, prompt step {PROMPT_STEP_T}*T*C.\n")
    L.append('## Summary\n')
    rows = []
    for n, e in list(res['experiments'].items()) + [('**all**', res['total'])]:
        f, h = e['flops'], e['gpu_hours_1']; h8 = e[f'gpu_hours_{g}']
        mh = (e.get('gpu_hours_measured_total_lo'), e.get('gpu_hours_measured_total_hi'))
        rows.append([n, _pf(f['train_hi']) if f['train_lo'] == f['train_hi'] else _rng(f['train_lo'], f['train_hi'], _pf), _rng(f['eval_lo'], f['eval_hi'], _pf),
                     _rng(f['text_lo'], f['text_hi'], _pf), _rng(f['total_lo'], f['total_hi'], _pf), _rng(h['total_lo'], h['total_hi'], _h),
                     _rng(h8['total_lo'], h8['total_hi'], _h), _rng(mh[0], mh[1], _h)])
    L.append(md_table(['experiment', 'training PFLOP', 'evaluation PFLOP', 'of which text side', 'total PFLOP', f"GPU-h, 1 GPU @ {res['mfu']:.0%}",
                       f'wall-clock h on {g} GPUs (= 1-GPU h / {g})', f"GPU-h, 1 GPU, training at the measured H200 MFU (rest @ {res['mfu']:.0%})"], rows))
    for n, e in res['experiments'].items():
        if e.get('eval_estimate_ref_acc') is not None:
            est = e['eval_estimate_ref_acc']; tr = e['flops']['train_hi']
            L.append(f"\n{n}: with METHODS.md's reference average accuracies (CLIP, TeCoA/FARE at 2 and 4/255: APGD-CE on the clean-correct share, "
                     f"APGD-T on the robust share, every dataset at the average) the evaluation is about {_pf(est)} PFLOP, the total about "
                     f"{_pf(tr + est)} PFLOP = {_h(hours(tr + est, res['assumed_tflops']))} GPU-h on 1 GPU at {res['mfu']:.0%} "
                     f"({_h(hours(tr + est, res['assumed_tflops']) / g)} h on {g}).")
    L.append(f"\nThe evaluation lower bound counts only the clean passes; the upper bound attacks every point at every stage. "
             f"Text side = class-prompt heads, AdvPT prompt steps, MMCoA's text tower and text attack (estimate), retrieval captions; it is included in the totals.\n")
    L.append('## Training runs\n')
    for n, e in res['experiments'].items():
        L.append(f"### {n} ({e['arch']})\n")
        groups = {}
        for r in e['runs']:   # AdvPT trains per dataset: one row per method, summed over the datasets
            groups.setdefault(r['label'].split(' on ')[0] if n == 'advpt' else r['key'], []).append(r)
        rows = []
        for rs in groups.values():
            r = rs[0]
            ms = r.get('measured') or {}
            mtxt = '; '.join(f"{k} {v['mfu']:.1%} of H200 {v['peak']:.0f} = {v['mfu_of_nominal']:.1%} of {res['peak_tflops']:g} (b{v['batch']})" for k, v in ms.items()) or '-'
            tot = lambda k: sum(x[k] for x in rs)
            gh = (sum(x['gpu_hours'][0] for x in rs), sum(x['gpu_hours'][1] for x in rs))
            gm = sum(x['gpu_hours_measured'] for x in rs) if all(x['gpu_hours_measured'] is not None for x in rs) else None
            label = r['label'].split(' on ')[0] + (f' ({len(rs)} datasets)' if len(rs) > 1 else '')
            rows.append([label, r['dataset'] if len(rs) == 1 else f"{len(rs)} sets", f"{r['steps']:,}" + ('' if r['steps_from'] == 'profile' else '*'),
                         str(r['batch']) + ('' if r['batch_from'] == 'profile' else '*'), f"{r['lr']:g}" + ('' if r['lr_from'] == 'profile' else '*'),
                         r['hp'].get('attack_steps', '-') if r['method'] not in ('clean-ft', 'clean-lora', 'clean-pt') and r['hp'].get('mode') != 'text' else '-',
                         f"{tot('images'):,.0f}", f"{r['f_per_image']:g}F", _pf(tot('image_flops_hi')), _rng(tot('text_flops_lo'), tot('text_flops_hi'), _pf),
                         _rng(*gh, _h), mtxt, _h(gm)])
        L.append(md_table(['run', 'train set', 'steps', 'batch', 'lr', 'PGD steps', 'images', 'per image', 'image PFLOP', 'text PFLOP',
                           f"GPU-h @ {res['mfu']:.0%}", 'measured MFU (H200)', 'GPU-h @ measured'], rows))
        forms = {}
        for r in e['runs']:
            for x in r['parts']:
                if x['side'] == 'text': forms.setdefault((r['method'], x['name']), x['formula'])
        L.append('\n\\* the method\'s default (the profile is silent). Text side (first run of each kind): ' + '; '.join(f'{m} {k}: {f}' for (m, k), f in forms.items()) + '.\n')
    L.append('## Evaluation\n')
    for n, e in res['experiments'].items():
        L.append(f"### {n}\n")
        p = e['params']
        rows = []
        for a in sorted(e['eval_groups'], key=lambda a: -a['flops_hi']):
            rows.append([a['group'], a['side'], a['what'], a['models'], a['datasets'], f"{a['points']:,.0f}", _rng(a['flops_lo'], a['flops_hi'], _pf)])
        L.append(md_table(['group', 'side', 'what (passes per point)', 'models', 'datasets', 'points x eps (or prompts)', 'PFLOP'], rows))
        L.append('')
    L.append('## Memory of each training step\n')
    rows = []
    for r in mem['rows']:
        bf = r.get('peak_gb_bf16_est')
        rows.append([r['experiment'], r['arch'], r['method'] + (f" ({r['classes']} classes)" if r['classes'] else ''), r['batch'],
                     '-' if r['peak_gb'] is None else f"{r['peak_gb']:.1f}", '-' if bf is None else f'{bf:.1f}', r['source'], r['detail']])
    L.append(md_table(['experiment', 'arch', 'method', 'batch', 'peak GB', 'bf16 estimate GB', 'source', 'detail'], rows))
    c = mem.get('calibration')
    L.append('\nH200 figures: `peak_mem_gb` of gpu.py = the allocator peak above what was resident before the run (model copy, FARE\'s '
             'frozen original, gradients, AdamW state, activations; bf16 autocast). CPU figures: fp32, RSS increase sampled by '
             '`train.PeakMemory`, same scope (setup inside), fit over the listed batches and extrapolated linearly.')
    if c:
        L.append(f"Calibration ({c['arch']} {c['method']}): H200 bf16 slope {c['gpu_slope_gb'] * 1024:.1f} MB/image vs CPU fp32 slope "
                 f"{c['cpu_slope_gb'] * 1024:.1f} MB/image: ratio {c['ratio']:.2f}; 'bf16 estimate' = CPU intercept + CPU slope x ratio x batch (rough).")
    if mem.get('cpu_meta'):
        m = mem['cpu_meta']
        runs = m.get('earlier', []) + [m]
        L.append('CPU measurements: ' + '; '.join(f"{x['date_utc']}, {x['seconds']} s ({', '.join(x.get('measured', [])) or 'see cases'})" for x in runs) + '. '
                 f"{m['threads']} thread(s), torch {m['torch']}, fp32, {m['attack_steps_inside']} attack step(s) inside "
                 "(the peak does not depend on the number of PGD steps: each step's graph is freed before the next), "
                 f"{m['steps_per_case']} optimizer steps per case (the first on one sample allocates the AdamW state; the second, at the batch, holds it). "
                 "The batches lie above the point where the activations outgrow the gradients: below it the peak is resident + gradients, nearly flat in the batch, "
                 "and a line through it would understate the slope (seen at batches 1, 2, 4: ViT-B-16 TeCoA ~60 MB/image). MMCoA's CPU case attacks the texts with the offline 'embedding' generator "
                 "(the masked LM cannot be loaded here); bert-base itself stays in host memory (MaskedLMCandidates runs it on the CPU)." + (f" Skipped: {m['skipped']}" if m.get('skipped') else ''))
        fits = mem['cpu_fits']
        L.append('\n' + md_table(['CPU case', 'intercept GB', 'slope MB per unit', 'R^2', 'max residual MB', 'points (x, GB)'],
                                 [[k, f"{v['intercept']:.2f}", f"{v['slope'] * 1024:.1f}", f"{v['r2']:.3f}", f"{v['max_residual'] * 1024:.0f}",
                                   ', '.join(f'({x}, {y:.2f})' for x, y in v['points'])] for k, v in fits.items()]))
    else:
        L.append('No CPU measurements yet: rows without an H200 figure say "not measured" (run with --measure-cpu).')
    L.append('\n## Assumptions\n')
    L += [f'- {a}' for a in assumptions(res)]
    L.append('\n## Noticed, left alone\n')
    L += [f'- {a}' for a in notes(res)]
    return '\n'.join(L) + '\n'

def print_tables(res, mem):
    g = res['gpus']
    print(f"profile {res['profile']}: {res['mfu']:.0%} MFU of {res['peak_tflops']:g} TFLOP/s = {res['assumed_tflops']:.0f} TFLOP/s per GPU")
    for a, v in res['archs'].items(): print(f"  {a:9} F = {v['image_forward_F'] / 1e9:7.2f} GFLOP/image   T = {v['text_forward_T'] / 1e9:6.2f} GFLOP/prompt")
    print(f"\n{'experiment':12} {'train PFLOP':>14} {'eval PFLOP':>20} {'GPU-h (1 GPU)':>18} {f'GPU-h ({g} GPUs)':>16} {'GPU-h meas.':>16}")
    for n, e in list(res['experiments'].items()) + [('all', res['total'])]:
        f, h, h8 = e['flops'], e['gpu_hours_1'], e[f'gpu_hours_{g}']
        print(f"{n:12} {_rng(f['train_lo'], f['train_hi'], _pf):>14} {_rng(f['eval_lo'], f['eval_hi'], _pf):>20} {_rng(h['total_lo'], h['total_hi'], _h):>18} "
              f"{_rng(h8['total_lo'], h8['total_hi'], _h):>16} {_rng(e['gpu_hours_measured_total_lo'], e['gpu_hours_measured_total_hi'], _h):>16}")
    print('\nmemory per training step:')
    for r in mem['rows']:
        pk = '-' if r['peak_gb'] is None else f"{r['peak_gb']:.1f} GB"
        meth = r['method'] + (f" C={r['classes']}" if r['classes'] else '')
        print(f"  {r['experiment']:16} {r['arch']:9} {meth:24} b{r['batch']:<4} {pk:>9}  {r['source']}")

def _jsonable(o):
    if isinstance(o, dict): return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)): return [_jsonable(v) for v in o]
    if isinstance(o, set): return sorted(o)
    if isinstance(o, float): return sig(o, 6) if math.isfinite(o) else None
    return o

def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--profile', default='paper', help='profile name or path (default: paper)')
    p.add_argument('--out', default=str(DEFAULT_OUT), help='output folder for cost.json, cost.md (and cpu_memory.json)')
    p.add_argument('--mfu', type=float, default=0.35, help='model FLOP utilisation assumed (default 0.35)')
    p.add_argument('--peak-tflops', type=float, default=989.0, help='dense bf16 peak TFLOP/s of one GPU (default 989: H100 SXM)')
    p.add_argument('--gpus', type=int, default=8, help='GPUs of the multi-GPU column (ideal scaling)')
    p.add_argument('--measure-cpu', action='store_true', help='measure the missing training-step memory on the CPU (minutes)')
    p.add_argument('--archs', default=','.join(DEFAULT_CPU_ARCHS), help='architectures of the CPU measurement')
    p.add_argument('--methods', default=None, help="methods of the CPU measurement (e.g. 'mmcoa,fare'; default: the whole plan)")
    p.add_argument('--cpu-batches', default=None, help='batches of the CPU measurement (default: per case, above the activation/gradient crossover)')
    p.add_argument('--cpu-budget', type=float, default=540.0, help='seconds after which remaining CPU cases are skipped')
    p.add_argument('--threads', type=int, default=1, help='torch threads for the CPU measurement')
    p.add_argument('--cpu-json', default=None, help='CPU measurements to read/write (default: <out>/cpu_memory.json)')
    a = p.parse_args(argv)
    if not 0 < a.mfu <= 1: p.error('--mfu must be in (0, 1]')
    a.archs = [s.strip() for s in a.archs.split(',') if s.strip()]
    a.methods = [s.strip() for s in a.methods.split(',')] if a.methods else None
    a.cpu_batches = tuple(int(x) for x in a.cpu_batches.split(',')) if a.cpu_batches else None
    return a

def main(argv=None):
    a = parse(argv)
    t0 = time.perf_counter()
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    cpu_path = Path(a.cpu_json) if a.cpu_json else out/'cpu_memory.json'
    cpu = json.loads(cpu_path.read_text()) if cpu_path.exists() else None
    if a.measure_cpu:
        os.environ.setdefault('OMP_NUM_THREADS', str(a.threads))
        cpu = measure_cpu(a.archs, a.methods, a.cpu_budget, a.threads, batches=a.cpu_batches, previous=cpu)
        cpu_path.write_text(json.dumps(_jsonable(cpu), indent=1))
        print(f'wrote {cpu_path} ({cpu["meta"]["seconds"]} s)')
    res = cost(a.profile, a.mfu, a.peak_tflops, a.gpus)
    res['date_utc'] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    mem = memory_rows(res, cpu)
    print_tables(res, mem)
    res['memory'] = mem
    res['assumptions'], res['notes'] = assumptions(res), notes(res)
    res['seconds'] = round(time.perf_counter() - t0, 1)
    (out/'cost.md').write_text(to_markdown(res, mem))
    (out/'cost.json').write_text(json.dumps(_jsonable(res), indent=1))
    print(f"wrote {out/'cost.json'}, {out/'cost.md'} ({res['seconds']} s)")
    return res

if __name__ == '__main__':
    main()
