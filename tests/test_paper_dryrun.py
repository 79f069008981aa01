"""The paper path, CI-sized: the `paper` profile's dry run (random weights of the real architecture at 224 px, every
dataset read from fixture files in its real on-disk format), shrunk to ViT-B-32, one dataset per experiment and one
point per set, executed through the same runner and notebooks as `robustclip run --profile paper --dry-run`.

The datasets are chosen so that each experiment reads a different paper-only format: STL-10 binaries (FARE/TeCoA),
EuroSAT JPEG folders (AdvPT), CIFAR-10 pickles with BERT-Attack's masked LM (MMCoA), PCAM HDF5 and the COCO Karpathy
captions (AdvLoRA, adapted on the captions with the retrieval objective)."""
import json
from pathlib import Path
import pandas as pd, pytest
from robustclip_nb.runner import run_experiments, dry_run_profile, load_profile

NBS = Path(__file__).parent.parent / 'nbs' / 'experiments'
ONE_SET = {'fare_tecoa': dict(train_dataset='stl10', eval_datasets=['stl10']),
           'advpt': dict(datasets=['eurosat'], synergy_dataset='eurosat'),
           'mmcoa': dict(train_dataset='cifar10', eval_datasets=['cifar10'], class_sweep_dataset='cifar10', class_sweep=[2, 10],
                         modes=['multimodal']),
           'advlora': dict(train_dataset='coco-captions', eval_dataset='pcam', retrieval_dataset='coco-captions', ranks=[1], sweep_eps=['4/255'],
                           sensitivity_eval_eps=['4/255'], eval_eps=['4/255'], adaptations={'LoRA': ['clean-lora', 'advlora']},
                           variants={'+ cluster init + adaptive scale': {'init': 'cluster', 'adaptive': True}})}
# Sized for CI: one MMCoA mode (multimodal: both the image and the text attack in training) and AdvLoRA's LoRA pair with
# its full variant; full fine-tuning and prompt tuning at this shape run in the FARE/TeCoA and AdvPT experiments above.

def ci_profile(scale=1):
    "The dry run of `paper`, with ViT-B-32 everywhere and one dataset per experiment."
    prof = dry_run_profile('paper', scale=scale, nbs_dir=NBS)
    prof['defaults']['model'] = 'ViT-B-32'
    for exp, ps in prof['experiments'].items(): ps.update(model='ViT-B-32', **ONE_SET[exp])
    return prof

def test_ci_profile_keeps_the_paper_settings():
    "Against `paper` itself: only the model, the datasets of ONE_SET, the counts, the weights and the text-attack scope differ."
    prof, paper = ci_profile(), load_profile('paper')
    counts = {'n', 'steps', 'batch_size', 'attack_steps', 'n_train', 'synergy_n', 'method_steps', 'epochs', 'warmup_epochs'}   # epochs give way to the capped steps
    for exp, ps in prof['experiments'].items():
        pp = paper['experiments'][exp]
        changed = {k for k in set(ps) | set(pp) if ps.get(k) != pp.get(k)}
        assert changed <= {'model', 'pretrained', 'text_classes', 'hparams', 'lora_hparams', *ONE_SET[exp], *counts}, (exp, changed)
        for h in ('hparams', 'lora_hparams'):            # method hyper-parameters: only the capped counts differ
            for k, v in (pp.get(h) or {}).items():
                assert ps[h][k] == v or k in ('attack_steps', 'shots', 'text_top_k'), (exp, h, k)
        assert ps['pretrained'] is None and paper['defaults']['pretrained'] == 'openai'
    assert prof['experiments']['fare_tecoa']['attack'] == paper['experiments']['fare_tecoa']['attack'] == 'aa'

@pytest.mark.timeout(1500)
def test_paper_path_dry_run(tmp_path, monkeypatch):
    monkeypatch.setenv('ROBUSTCLIP_CACHE', str(tmp_path / 'cache'))        # trained runs of this test: not the user's cache
    st = run_experiments(ci_profile(), out=tmp_path / 'runs', figures_dir=tmp_path / 'figs', nbs_dir=NBS, progress=False)
    errors = {r.experiment: r.error for r in st.itertuples() if r.status != 'ok'}
    assert not errors, errors
    figs = tmp_path / 'figs' / 'paper-dryrun'                               # a dry run never writes over a real run's figures
    assert sorted(p.name for p in figs.iterdir()) == sorted(ONE_SET)
    banner = 'RANDOM-INIT SHAPE CHECK'
    for exp in ONE_SET:
        d = figs / exp
        prov = json.loads((d / 'results.provenance.json').read_text())
        assert prov['params']['model'] == 'ViT-B-32' and prov['params']['pretrained'] is None
        assert banner in prov['params']['banner']
        assert prov['env']['ROBUSTCLIP_MAX_TEMPLATES'] == '1' and prov['env']['ROBUSTCLIP_DATA'].endswith('fixtures')
        mds = list(d.glob('*.md')); assert mds and all(banner in p.read_text().splitlines()[0] for p in mds), exp
        assert list(d.glob('*.png')) and list(d.glob('*.pdf')), exp
        df = pd.read_csv(d / 'results.csv')
        assert len(df) and df.value.between(0, 1).all(), exp
        executed = (tmp_path / 'runs' / 'paper-dryrun' / exp / f'{exp}.ipynb').read_text()
        assert 'RANDOMLY INITIALISED' in executed, exp                      # announced in the output, not only in provenance
    ft = pd.read_csv(figs / 'fare_tecoa' / 'results.csv')
    assert set(ft.dataset) == {'stl10'} and 'aa' in set(ft.attack)          # AutoAttack, as the FARE protocol
    mm = pd.read_csv(figs / 'mmcoa' / 'results.csv')
    assert {'text', 'multimodal'} <= set(mm.attack)                          # BERT-Attack ran with the fixture masked LM
    al = pd.read_csv(figs / 'advlora' / 'results.csv')
    assert {'pcam', 'coco-captions', 'msrvtt'} <= set(al.dataset)             # the paper profile's video-text retrieval on the MSR-VTT fixture
    assert (figs / 'advlora' / 'video_retrieval.md').exists()
    assert any('@' in m for m in al.metric)                                  # Recall@k on the Karpathy-format captions
