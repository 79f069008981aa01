"""benchmarks/paper_cost.py without --measure-cpu (pure arithmetic on gpu.py's FLOP model and the shipped `paper` profile):
every experiment costed, GPU-hours consistent, FLOPs equal to gpu.py's, training passes proportional to the profile's steps."""
import copy, math, json, os, sys
from pathlib import Path
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'benchmarks'))
EXPS = ('fare_tecoa', 'advpt', 'mmcoa', 'advlora')

@pytest.fixture(scope='module')
def pc():
    import paper_cost
    return paper_cost

@pytest.fixture(scope='module')
def out(tmp_path_factory, pc):
    d = tmp_path_factory.mktemp('cost')
    pc.main(['--out', str(d)])     # no --measure-cpu: seconds; no cpu_memory.json in d, so CPU rows read "not measured"
    return json.loads((d/'cost.json').read_text()), (d/'cost.md').read_text()

def test_every_experiment_with_positive_consistent_hours(out):
    res, md = out
    assert set(res['experiments']) == set(EXPS)
    g, rate = res['gpus'], res['mfu'] * res['peak_tflops'] * 1e12 * 3600
    for name in EXPS:
        e = res['experiments'][name]
        h1, hg, f = e['gpu_hours_1'], e[f'gpu_hours_{g}'], e['flops']
        assert 0 < h1['total_lo'] <= h1['total_hi'] and f['eval_lo'] <= f['eval_hi'] and f['train_lo'] <= f['train_hi'], name
        for k in h1:
            assert hg[k] == pytest.approx(h1[k] / g, rel=1e-4), (name, k)
            assert h1[k] == pytest.approx(f[k] / rate, rel=1e-4), (name, k)
        assert f['total_hi'] == pytest.approx(f['train_hi'] + f['eval_hi'], rel=1e-4)
        assert e['runs'] and e['eval_items'], name
        assert f'### {name}' in md
    tot = res['total']
    assert tot['gpu_hours_1']['total_hi'] == pytest.approx(sum(res['experiments'][n]['gpu_hours_1']['total_hi'] for n in EXPS), rel=1e-4)
    assert tot[f'gpu_hours_{g}']['total_lo'] == pytest.approx(tot['gpu_hours_1']['total_lo'] / g, rel=1e-4)
    assert '## Summary' in md and '## Memory of each training step' in md and '## Assumptions' in md

def test_flops_are_gpu_py_flops(out):
    import gpu
    res, _ = out
    assert set(res['archs']) == {'ViT-L-14', 'ViT-B-16', 'ViT-B-32'}
    for arch, v in res['archs'].items():
        assert v['image_forward_F'] == pytest.approx(gpu.vit_flops(arch), rel=1e-5)
        assert v['text_forward_T'] == pytest.approx(gpu.text_flops(arch), rel=1e-5)
    ft = res['experiments']['fare_tecoa']
    for r in ft['runs']:   # the profile's 10 PGD steps: exactly gpu.py's per-image factors
        assert r['f_per_image'] == gpu.TRAIN_FLOPS[r['method']]
        assert r['image_flops_hi'] == pytest.approx(r['steps'] * r['batch'] * gpu.TRAIN_FLOPS[r['method']] * gpu.vit_flops('ViT-L-14'), rel=1e-5)

def test_constants_are_gpu_py_conventions(pc):
    import gpu
    doc = ' '.join(gpu.__doc__.split())
    assert 'attack step with frozen weights = forward + input-gradient backward = 2F' in doc and pc.ATTACK_STEP == 2
    assert f'= {pc.ADVPT_BANK_F}F per image' in doc and 'AdvPT prompt step = 2 * T * C' in doc and pc.PROMPT_STEP_T == 2
    assert (pc.WEIGHT_FB, pc.FROZEN_FB, pc.REF_FWD) == (3, 2, 1)
    assert pc.train_image_passes('tecoa', {'attack_steps': 5}) == gpu.TRAIN_FLOPS['tecoa'] - 10

def test_runs_follow_the_profile_and_the_notebooks(out):
    from robustclip_nb.runner import load_profile
    prof, res = load_profile('paper'), out[0]
    E = res['experiments']
    ft = prof['experiments']['fare_tecoa']
    assert len(E['fare_tecoa']['runs']) == 2 * len(ft['train_eps'])     # the notebook's default methods: tecoa, fare
    assert {(r['steps'], r['batch']) for r in E['fare_tecoa']['runs']} == {(ft['steps'], ft['batch_size'])}
    assert len(E['advpt']['runs']) == len(prof['experiments']['advpt']['datasets']) * len(prof['experiments']['advpt']['methods'])
    assert {r['hp']['mode'] for r in E['mmcoa']['runs']} == set(prof['experiments']['mmcoa']['modes'])
    lora = [r for r in E['advlora']['runs'] if r['method'] == 'advlora']
    pa = prof['experiments']['advlora']
    # ranks (rank 8 = the default run), eps sweep (4/255 = train_eps), 2 more variants: the runs train_method would not reuse
    assert len(lora) == len(set(pa['ranks']) | {8}) + len(pa['sweep_eps']) - 1 + 2

def test_training_passes_scale_with_profile_steps(pc):
    from robustclip_nb.runner import load_profile
    prof = load_profile('paper')
    mod = copy.deepcopy(prof)
    mod['experiments']['fare_tecoa']['steps'] *= 3
    mod['experiments']['mmcoa']['steps'] *= 2
    mod['experiments']['advpt']['epochs'] = 2 * prof['experiments']['advpt']['epochs']   # steps follow the epochs over the few-shot subset
    mod['experiments']['advlora']['method_steps'] = {k: 2 * v for k, v in prof['experiments']['advlora']['method_steps'].items()}
    def flops(p, exp):
        runs, _ = pc.training_runs(p, exp)
        return [pc.run_cost(r) for r in runs]     # the same enumeration order for both profiles
    for exp, factor in (('fare_tecoa', 3), ('mmcoa', 2)):
        a, b = flops(prof, exp), flops(mod, exp)
        assert len(a) == len(b) > 0
        for ra, rb in zip(a, b):
            assert rb['steps'] == factor * ra['steps'] and rb['image_flops_hi'] == pytest.approx(factor * ra['image_flops_hi'])
            tx = lambda r: sum(x['flops_hi'] for x in r['parts'] if x['side'] == 'text' and 'setup' not in x['name'])
            assert tx(rb) == pytest.approx(factor * tx(ra))
    a, b = flops(prof, 'advpt'), flops(mod, 'advpt')
    ep, shots = prof['experiments']['advpt']['epochs'], prof['experiments']['advpt']['hparams']['shots']
    for ra, rb in zip(a, b):      # prompt steps double, the bank does not
        B = prof['experiments']['advpt']['batch_size']
        assert ra['steps'] == math.ceil(ep * max(1, shots * pc.n_classes(ra['dataset']) // B)) and rb['steps'] == 2 * ra['steps'], ra['label']
        assert rb['text_flops_hi'] == pytest.approx(2 * ra['text_flops_hi']) and rb['image_flops_hi'] == pytest.approx(ra['image_flops_hi'])
    a, b = flops(prof, 'advlora'), flops(mod, 'advlora')
    for ra, rb in zip(a, b):      # on COCO captions: the per-step caption encodings scale with the steps too
        f = 2 if ra['method'] in prof['experiments']['advlora']['method_steps'] else 1
        assert rb['image_flops_hi'] == pytest.approx(f * ra['image_flops_hi']), ra['label']
        assert rb['text_flops_hi'] == pytest.approx(f * ra['text_flops_hi']), ra['label']

def test_evaluation_bounds(pc, out):
    res = out[0]
    ft = res['experiments']['fare_tecoa']
    aa = [i for i in ft['eval_items'] if i.get('passes_hi', 1) > 1]
    assert aa and all(i['passes_lo'] == 1 for i in aa)
    lo, hi, _ = pc.attack_passes('aa', 100, 10)
    assert hi == 2 + 2 * 101 + 1 + 9 * (2 * 101 + 2) + 1      # APGD-CE + APGD-T on 9 targets, all points
    assert pc.attack_passes('aa', 100, 2)[1] == 2 + 2 * 101 + 1 + 1   # 2 classes: APGD-CE only
    assert pc.attack_passes('pgd', 40, 10)[1] == 1 + 80 + 2
    assert ft['flops']['eval_lo'] < ft['eval_estimate_ref_acc'] < ft['flops']['eval_hi']
    retr = [i for i in res['experiments']['advlora']['eval_items'] if i['group'].startswith('retrieval (')]
    assert retr and all(i['flops_lo'] == i['flops_hi'] for i in retr)   # every retrieval image is attacked: exact

def test_memory_rows(out):
    mem = out[0]['memory']['rows']
    l14 = {(r['method'], r['batch']): r for r in mem if r['arch'] == 'ViT-L-14'}
    assert l14[('tecoa', 128)]['source'].startswith('measured on H200') and l14[('tecoa', 128)]['peak_gb'] > 10
    assert {r['method'] for r in mem if r['experiment'] == 'mmcoa'} == {'mmcoa:image', 'mmcoa:text', 'mmcoa:multimodal'}
    assert all(r['batch'] == 256 for r in mem if r['experiment'] == 'mmcoa')
    assert all(r['source'] for r in mem)
