"""benchmarks/gpu.py in its CPU mode (tiny shapes, the same code paths as on a GPU), so the GPU script cannot rot."""
import json, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'benchmarks'))

def test_flop_counts_match_published_profiles():
    import gpu
    # open_clip's model profile (GMACs of one 224 px image / one 77-token prompt): ViT-B-32 4.41, ViT-B-16 17.58,
    # ViT-L-14 81.08 (image); ViT-B-32 text 2.96, ViT-L-14 text 6.65
    for arch, img, txt in [('ViT-B-32', 4.41, 2.96), ('ViT-B-16', 17.58, 2.96), ('ViT-L-14', 81.08, 6.65)]:
        assert gpu.vit_flops(arch) / 2e9 == pytest.approx(img, rel=0.01)
        assert gpu.text_flops(arch) / 2e9 == pytest.approx(txt, rel=0.01)

def test_cpu_mode_runs_every_section(tmp_path):
    out = tmp_path/'gpu_cpu.json'
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'gpu.py'), '--cpu', '--out', str(out)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res['errors'] == [] and res['skipped'] == ['compile: skipped in CPU mode'], (res['errors'], res['skipped'])
    recs = res['records']
    by = lambda sec: [x for x in recs if x['section'] == sec]
    assert {x['dtype'] for x in by('peak')} == {'bfloat16', 'float32'} and all(x['tflops'] > 0 for x in by('peak'))
    train = by('train')
    assert {x['method'] for x in train} == {'fare', 'tecoa', 'advlora', 'advpt'}
    assert {(x['method'], x['grad_checkpointing']) for x in train} >= {('tecoa', True), ('advlora', True)}
    for x in train: assert x['img_per_s'] > 0 and x['tflop_per_step'] > 0, x
    lora = next(x for x in train if x['method'] == 'advlora'); full = next(x for x in train if x['method'] == 'tecoa')
    assert lora['trainable_params'] < 0.2 * full['trainable_params']
    assert next(x for x in train if x['method'] == 'advpt')['bank_img_per_s'] > 0
    atk = by('attacks')
    assert {(x['attack'].split('-')[0], x['impl'], x['precision']) for x in atk} == {
        (k, i, p) for k in ('PGD', 'APGD') for i in ('robustclip_nb', 'torchattacks') for p in ('fp32', 'bf16')}
    for x in atk + by('sdpa'): assert 0 <= x['robust_acc'] <= 1 and x['img_per_s'] > 0
    assert len(by('sdpa')) == 2
    aa = by('autoattack')
    assert {(x['impl'], x['precision']) for x in aa} == {('robustclip_nb', 'bf16'), ('robustclip_nb', 'fp32'), ('torchattacks', 'fp32')}
    ta = next(x for x in aa if x['impl'] == 'torchattacks')
    assert list(k for k in ta['stages'] if not k.endswith('_seconds')) == ['clean', 'APGD', 'APGDT', 'FAB-T', 'Square']
    assert 'training step' in res['meta']['summary'] and res['meta']['environment']['versions']['torch']
