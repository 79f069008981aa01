"""Bad inputs, the way a careless user or a careful reviewer gives them. Every one must end in the package's error
contract: on the CLI exit code 2 with exactly one line on stderr and no traceback; in the API a `RobustCLIPError`
(sub)class; and in both cases no file left behind, neither in the working directory nor in the cache of runs."""
import json, os, sys, pickle, subprocess
from pathlib import Path
import pytest, torch
from robustclip_nb.core import RobustCLIPError, cache_dir
from robustclip_nb.cli import main

NANO = ['--model', 'offline-nano']

def _tree(p: Path) -> list[str]:
    return sorted(str(x.relative_to(p)) for x in p.rglob('*')) if p.exists() else []

@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    "A working directory with a regular file, a broken JSON file and a data root of the wrong format."
    monkeypatch.chdir(tmp_path)
    (tmp_path/'afile').write_text('not a folder')
    (tmp_path/'bad.json').write_text('{"embed_dim": 64, ')
    (tmp_path/'notaconfig.json').write_text('{"a": 1}')
    root = tmp_path/'badroot'/'cifar-10-batches-py'; root.mkdir(parents=True)
    for f in ('test_batch', 'batches.meta', *[f'data_batch_{i}' for i in range(1, 6)]): (root/f).write_text('these are not CIFAR pickles')
    (tmp_path/'exists').mkdir(); (tmp_path/'exists'/'mine.txt').write_text('a folder that holds no run')
    (tmp_path/'runs_ok').mkdir()
    (tmp_path/'badrun').mkdir(); (tmp_path/'badrun'/'method.json').write_text('{"args": '); (tmp_path/'badrun'/'weights.safetensors').write_bytes(b'')
    return tmp_path

@pytest.fixture(scope='module', autouse=True)
def nano_cached():
    "Train offline-nano first if the cache lacks it, so that no case below depends on the order of the tests."
    from robustclip_nb.zoo import load_model
    load_model('offline-nano', progress=False)

CLI = {   # name: (argv, a fragment the one-line message must contain)
    # eval
    'eval unknown dataset': (['eval', *NANO, '--dataset', 'nosuch'], "unknown dataset 'nosuch'"),
    'eval empty dataset': (['eval', *NANO, '--dataset', ''], '--dataset is empty'),
    'eval unknown split': (['eval', *NANO, '--dataset', 'digits', '--split', 'validation'], "no split 'validation'"),
    'eval negative seed': (['eval', *NANO, '--dataset', 'digits', '--seed', '-1'], "--seed: expected an integer >= 0, got '-1'"),
    'eval n zero': (['eval', *NANO, '--dataset', 'digits', '--n', '0'], "--n: expected a positive integer, got '0'"),
    'eval n text': (['eval', *NANO, '--dataset', 'digits', '--n', 'abc'], "got 'abc'"),
    'eval out under a file': (['eval', *NANO, '--dataset', 'digits', '--out', 'afile/r.csv'], "'afile' is a file"),
    'eval out unknown format': (['eval', *NANO, '--dataset', 'digits', '--out', 'r.txt'], "unknown format '.txt'"),
    'eval out is a folder': (['eval', *NANO, '--dataset', 'digits', '--out', 'exists'], "'exists' is a folder"),
    'eval out unwritable': (['eval', *NANO, '--dataset', 'digits', '--n', '8', '--out', '/proc/robustclip/r.csv'], 'not writable'),
    'eval corrupt model config': (['eval', '--model', 'bad.json', '--dataset', 'digits'], 'bad.json is not valid JSON'),
    'eval json that is no model config': (['eval', '--model', 'notaconfig.json', '--dataset', 'digits'], 'not an open_clip model config'),
    'eval unknown model': (['eval', '--model', 'ViT-Nope-99', '--dataset', 'digits'], "unknown model 'ViT-Nope-99'"),
    'eval missing checkpoint': (['eval', '--model', 'ViT-B-32', '--pretrained', 'nope.pt', '--dataset', 'digits'], 'nope.pt not found'),
    'eval root missing': (['eval', *NANO, '--dataset', 'cifar10', '--root', '/no/such/dir'], "'/no/such/dir' does not exist"),
    'eval root of the wrong format': (['eval', *NANO, '--dataset', 'cifar10', '--root', 'badroot'], 'test_batch: UnpicklingError'),
    'eval root without the files': (['eval', *NANO, '--dataset', 'cifar10', '--root', 'exists'], 'files not found'),
    'eval attack without eps': (['eval', *NANO, '--dataset', 'digits', '--attack', 'pgd'], '--attack pgd needs --eps'),
    'eval eps above 1': (['eval', *NANO, '--dataset', 'digits', '--attack', 'pgd', '--eps', '4'], "eps='4' exceeds 1"),
    'eval eps text': (['eval', *NANO, '--dataset', 'digits', '--attack', 'pgd', '--eps', 'abc'], "cannot parse eps='abc'"),
    'eval eps negative': (['eval', *NANO, '--dataset', 'digits', '--attack', 'pgd', '--eps=-1/255'], 'eps must be >= 0'),
    'eval eps without attack': (['eval', *NANO, '--dataset', 'digits', '--eps', '4/255'], '--eps needs an --attack'),
    'eval unknown attack': (['eval', *NANO, '--dataset', 'digits', '--attack', 'fgsm', '--eps', '1/255'], "invalid choice: 'fgsm'"),
    'eval unknown norm': (['eval', *NANO, '--dataset', 'digits', '--attack', 'pgd', '--eps', '1/255', '--norm', 'l1'], "invalid choice: 'l1'"),
    'eval steps zero': (['eval', *NANO, '--dataset', 'digits', '--attack', 'pgd', '--eps', '1/255', '--steps', '0'], '--steps: expected a positive integer'),
    'eval batch negative': (['eval', *NANO, '--dataset', 'digits', '--batch-size', '-5'], "got '-5'"),
    'eval budget zero': (['eval', *NANO, '--dataset', 'digits', '--attack', 'text', '--budget', '0'], '--budget'),
    'eval unknown device': (['eval', *NANO, '--dataset', 'digits', '--device', 'gpu0'], "unknown device 'gpu0'"),
    'eval unknown protocol': (['eval', *NANO, '--protocol', 'autoattack'], "invalid choice: 'autoattack'"),
    'eval protocol eps it forbids': (['eval', *NANO, '--protocol', 'fare', '--eps', '32/255', '--out', 'ev'], 'forbids eps 32/255'),
    'eval protocol l2': (['eval', *NANO, '--protocol', 'tecoa', '--norm', 'l2', '--out', 'ev'], 'L-inf threat model'),
    'eval protocol retrieval set': (['eval', *NANO, '--protocol', 'mmcoa', '--dataset', 'tuxpaint-captions', '--out', 'ev'], 'is a retrieval set'),
    'eval protocol unknown dataset': (['eval', *NANO, '--protocol', 'fare', '--dataset', 'nosuch', '--out', 'ev'], "unknown dataset 'nosuch'"),
    'eval protocol out is a file': (['eval', *NANO, '--protocol', 'fare', '--dataset', 'digits', '--out', 'afile'], "'afile' is a file"),
    'eval protocol cache is a file': (['eval', *NANO, '--protocol', 'fare', '--dataset', 'digits', '--cache', 'afile'], "'afile' is a file"),
    'eval protocol attack none': (['eval', *NANO, '--protocol', 'fare', '--attack', 'none'], 'always reports the clean'),
    'eval shard size without protocol': (['eval', *NANO, '--dataset', 'digits', '--shard-size', '8'], 'belongs to --protocol'),
    'eval several models without protocol': (['eval', *NANO, '--model', 'offline-base', '--dataset', 'digits'], 'several --model need --protocol'),
    'eval step size for aa': (['eval', *NANO, '--dataset', 'digits', '--attack', 'aa', '--eps', '1/255', '--step-size', '1/255'], '--step-size applies to'),
    'eval run dir that holds no run': (['eval', 'exists', '--protocol', 'fare'], 'is not a finished run directory'),
    'eval run dir missing': (['eval', 'nosuchrun'], 'is not a finished run directory'),
    'eval run dir with a damaged method.json': (['eval', 'badrun'], 'method.json is damaged'),
    'eval attack not for retrieval': (['eval', *NANO, '--dataset', 'tuxpaint-captions', '--n', '8', '--attack', 'aa', '--eps', '1/255'], '--attack aa does not apply'),
    # train
    'train unknown method': (['train', 'nosuch', '--out', 'run'], "unknown method 'nosuch'"),
    'train unknown dataset': (['train', 'tecoa', *NANO, '--dataset', 'nosuch', '--out', 'run'], "unknown dataset 'nosuch'"),
    'train set value of the wrong type': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--set', 'attack_steps=abc', '--out', 'run'], "attack_steps must be an integer (default 5), got 'abc'"),
    'train unknown set key': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--set', 'nope=1', '--out', 'run'], "no hyper-parameter 'nope'"),
    'train set without =': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--set', 'oops', '--out', 'run'], "--set expects key=value, got 'oops'"),
    'train advlora rank zero': (['train', 'advlora', *NANO, '--dataset', 'digits', '--set', 'rank=0', '--out', 'run'], 'rank must be an integer >= 1, got 0'),
    'train eps zero': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--eps', '0', '--out', 'run'], 'give eps > 0'),
    'train eps text': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--eps', 'four', '--out', 'run'], "cannot parse eps='four'"),
    'train out is a file': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--out', 'afile'], "'afile' is a file"),
    'train out under a file': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--out', 'afile/run'], 'cannot be created'),
    'train out holds other files': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--out', 'exists'], 'holds no robustclip run'),
    'train negative lr': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--lr', '-1', '--out', 'run'], "--lr: expected a positive number, got '-1'"),
    'train lr text': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--lr', 'abc', '--out', 'run'], "got 'abc'"),
    'train negative seed': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--seed', '-3', '--out', 'run'], "got '-3'"),
    'train steps zero': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--steps', '0', '--out', 'run'], '--steps: expected a positive integer'),
    'train root missing': (['train', 'tecoa', *NANO, '--dataset', 'cifar10', '--root', '/no/such', '--out', 'run'], "'/no/such' does not exist"),
    'train root of the wrong format': (['train', 'tecoa', *NANO, '--dataset', 'cifar10', '--root', 'badroot', '--out', 'run'], 'data_batch_1: UnpicklingError'),
    'train captions for a class-prompt method': (['train', 'advpt', *NANO, '--dataset', 'tuxpaint-captions', '--out', 'run', '--n-train', '16'], 'learns class prompts'),
    'train eval dataset unknown': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--out', 'run', '--eval', '--eval-dataset', 'nosuch'], "unknown dataset 'nosuch'"),
    'train eval eps text': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--out', 'run', '--eval', '--eval-eps', 'abc'], "cannot parse eps='abc'"),
    'train corrupt model config': (['train', 'tecoa', '--model', 'bad.json', '--dataset', 'digits', '--out', 'run'], 'bad.json is not valid JSON'),
    'train unknown device': (['train', 'tecoa', *NANO, '--dataset', 'digits', '--device', 'gpu0', '--out', 'run'], "unknown device 'gpu0'"),
    # run, base, syntax
    'run unknown profile': (['run', '--profile', 'nosuch', '--out', 'runs_ok'], "unknown profile 'nosuch'"),
    'run corrupt profile': (['run', '--profile', 'bad.json', '--out', 'runs_ok'], 'bad.json is not valid JSON'),
    'run unknown experiment': (['run', '--profile', 'smoke', '--only', 'nosuch', '--out', 'runs_ok'], "unknown experiment 'nosuch'"),
    'run out is a file': (['run', '--profile', 'smoke', '--out', 'afile'], "'afile' is a file"),
    'run no notebooks there': (['run', '--profile', 'smoke', '--nbs-dir', 'exists', '--out', 'runs_ok'], 'no experiment notebooks found'),
    'base unknown model': (['base', '--name', 'nosuch'], "unknown offline model 'nosuch'"),
    'unknown sub-command': (['fly'], "invalid choice: 'fly'"),
    'no sub-command': ([], 'required: command'),
}

@pytest.mark.parametrize('case', sorted(CLI))
def test_cli_bad_input(case, sandbox, capsys):
    runs = cache_dir('runs'); before, cache_before = _tree(sandbox), _tree(runs)
    argv, expect = CLI[case]
    with pytest.raises(SystemExit) as e: main(argv)
    out, err = capsys.readouterr()
    assert e.value.code == 2, (case, e.value.code, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, (case, err)
    assert lines[0].startswith('robustclip'), (case, err)
    assert expect in lines[0], (case, expect, lines[0])
    assert 'Traceback' not in err + out
    assert _tree(sandbox) == before, (case, sorted(set(_tree(sandbox)) - set(before)))
    assert _tree(runs) == cache_before, case

def test_console_script_error_is_one_line(sandbox):
    "The real entry point (a new process): one line on stderr, exit 2, nothing on stdout."
    r = subprocess.run([sys.executable, '-c', 'from robustclip_nb.cli import main; main()', 'train', 'tecoa', '--model', 'offline-nano',
                        '--dataset', 'digits', '--set', 'attack_steps=abc', '--out', 'run'], capture_output=True, text=True, timeout=300,
                       env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    assert r.returncode == 2, r.stderr
    assert r.stdout == ''
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "attack_steps must be an integer (default 5), got 'abc'" in r.stderr, r.stderr
    assert not (sandbox/'run').exists()

def _api_cases(d: Path):
    from robustclip_nb.core import parse_eps, check_images, save_results, get_device, check_labels
    from robustclip_nb.data import load_dataset
    from robustclip_nb.clip import load_clip, class_embeddings
    from robustclip_nb.attacks import PGD, APGD, AutoAttack
    from robustclip_nb.train import TrainConfig
    from robustclip_nb.methods import get_method, train_method, load_trained
    from robustclip_nb.runner import load_profile
    from robustclip_nb.zoo import load_model
    from robustclip_nb.evaluate import evaluate
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x = torch.rand(2, 3, 2, 2)
    return {
        'parse_eps text': lambda: parse_eps('x'),
        'parse_eps bool': lambda: parse_eps(True),
        'images uint8': lambda: check_images((x * 255).to(torch.uint8)),
        'images normalised': lambda: check_images(x * 4 - 2),
        'labels out of range': lambda: check_labels(torch.tensor([0, 5]), 2, 3),
        'PGD eps above 1': lambda: PGD(lin, eps=2),
        'PGD negative steps': lambda: PGD(lin, steps=-1),
        'APGD restarts zero': lambda: APGD(lin, restarts=0),
        'AutoAttack version': lambda: AutoAttack(lin, version='plus-plus'),
        'attack on bad images': lambda: PGD(lin)(x * 3, torch.tensor([0, 1])),
        'dataset unknown': lambda: load_dataset('nosuch'),
        'dataset split': lambda: load_dataset('digits', split='validation'),
        'dataset image size': lambda: load_dataset('digits', image_size=0),
        'dataset root missing': lambda: load_dataset('cifar10', root=d/'nowhere'),
        'dataset root wrong format': lambda: load_dataset('cifar10', root=d/'badroot'),
        'model config corrupt': lambda: load_clip(str(d/'bad.json')),
        'model unknown': lambda: load_model('nosuch'),
        'device unknown': lambda: get_device('gpu0'),
        'method hparam type': lambda: get_method('tecoa', attack_steps='abc'),
        'method hparam unknown': lambda: get_method('fare', nope=1),
        'train config type': lambda: TrainConfig(steps='10'),
        'train unknown dataset': lambda: train_method('tecoa', 'offline-nano', 'nosuch', out=d/'run', progress=False),
        'train unknown setting': lambda: train_method('tecoa', 'offline-nano', 'digits', out=d/'run', progress=False, train_cfg={'nope': 1}),
        'load unfinished run': lambda: load_trained(d/'exists'),
        'save results under a file': lambda: save_results([dict(model='m', dataset='d', task='t', metric='a', value=1)], d/'afile'/'r.csv'),
        'profile corrupt': lambda: load_profile(d/'bad.json'),
        'evaluate unknown dataset': lambda: evaluate(load_model('offline-nano', progress=False), ['nosuch']),
        'class embeddings without {c}': lambda: class_embeddings(load_model('offline-nano', progress=False), ['cat'], ['a photo']),
    }

def test_api_bad_inputs_raise_the_package_error(sandbox):
    cases = _api_cases(sandbox); before = _tree(sandbox)
    assert len(cases) + len(CLI) >= 40
    wrong = {}
    for name, f in cases.items():
        try: f(); wrong[name] = 'no error'
        except RobustCLIPError as e:
            if '\n' in str(e).strip(): wrong[name] = f'multi-line message: {e}'
        except Exception as e: wrong[name] = f'{type(e).__name__}: {e}'
    assert wrong == {}
    assert _tree(sandbox) == before
