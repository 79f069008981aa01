"Integration tests of robustclip_nb.fixtures: every paper dataset written once in its real format, every split loaded back"
import json, os, time, warnings
from pathlib import Path
import numpy as np, pytest
from PIL import Image
from robustclip_nb.core import RobustCLIPError
from robustclip_nb.data import DATASETS, CaptionSet, ClassificationSet, list_datasets, load_dataset
from robustclip_nb import fixtures
from robustclip_nb.fixtures import FIXTURE_DATASETS, write_fixtures
from robustclip_nb.paper_data import imagenet_classnames, VideoCaptionSet

os.environ.setdefault('HF_HUB_OFFLINE', '1')
PAPER = [k for k, v in DATASETS.items() if not v['offline']]
SPLITS = [(n, s) for n in PAPER for s in DATASETS[n]['splits']]
SEEDED = {'caltech101', 'eurosat', 'sun397'}               # split 80/20 by the loader: 3 images per class, 2 train / 1 test
CAPTIONS = {('coco-captions', 'train'): 4}                  # train = train + restval; every other caption split: 2 images


def expected_size(name, split):
    "Items in a split of the per_class=1 fixture"
    if DATASETS[name]['task'] == 'retrieval': return CAPTIONS.get((name, split), 2)
    n = DATASETS[name]['n_classes']
    if name in SEEDED: return 2 * n if split == 'train' else n
    if name == 'cifar10' and split == 'train': return 5 * n   # five training batches
    return n


@pytest.fixture(scope='module')
def written(tmp_path_factory):
    "All fixtures (per_class=1) written once: (root, write_fixtures' result, seconds)"
    root = tmp_path_factory.mktemp('fixtures')
    t0 = time.time()
    out = write_fixtures(root)
    return root, out, time.time() - t0


@pytest.fixture
def data_root(written, monkeypatch):
    monkeypatch.setenv('ROBUSTCLIP_DATA', str(written[0]))
    return written[0]


def test_every_fixture_is_written_whole(written):
    root, out, secs = written
    assert list(out) == FIXTURE_DATASETS and set(PAPER) | {'masked-lm'} == set(FIXTURE_DATASETS)
    for name, paths in out.items():
        assert len(paths) == 1 and paths[0] == root / fixtures._FIXTURES[name][0] and paths[0].is_dir()
        info = json.loads((paths[0] / '.robustclip-fixture.json').read_text())
        assert (info['name'], info['per_class'], info['seed']) == (name, 1, 0) and info['files'] > 0
    assert not [p for p in root.rglob('*.tmp-*')]                       # no temporary folder left
    data_bytes = sum(f.stat().st_size for f in root.rglob('*') if f.is_file() and 'models' not in f.parts)
    assert data_bytes < 150e6, data_bytes                               # a few tens of MB (measured ~62 MB)
    print(f"write_fixtures: all {len(out)} fixtures in {secs:.1f} s, datasets {data_bytes / 1e6:.1f} MB")


def test_every_paper_set_is_available(data_root):
    av = list_datasets().set_index('name').available
    assert av[PAPER].all(), list(av[PAPER][~av[PAPER]].index)


@pytest.mark.parametrize('name,split', SPLITS)
def test_every_split_loads_at_224(data_root, name, split):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        ds = load_dataset(name, split, image_size=224)
    assert not [w for w in caught if 'classes, found' in str(w.message)]
    assert len(ds) == expected_size(name, split) > 0
    for i in (0, len(ds) - 1):
        x, _ = ds[i]
        frames = ds.n_frames if isinstance(ds, VideoCaptionSet) else 1        # a video: its frames stacked top to bottom
        assert tuple(x.shape) == (3, frames * 224, 224) and 0 <= float(x.min()) and float(x.max()) <= 1
    if DATASETS[name]['task'] == 'classification':
        assert isinstance(ds, ClassificationSet)
        n = DATASETS[name]['n_classes']
        assert len(ds.classnames) == n                                     # (open_clip's ImageNet names repeat two)
        assert sorted(set(ds.labels.tolist())) == list(range(n))          # every class in every split
        assert ds.templates and all('{c}' in t for t in ds.templates)
    else:
        assert isinstance(ds, CaptionSet)
        per = 1 if (name, split) == ('msrvtt', 'test') else 5                # MSR-VTT 1k-A: one caption per video
        assert len(ds.captions) == per * len(ds) and all(len(js) == per for js in ds.img2txt)
        assert all(c.strip() for c in ds.captions)


def test_imagenet_folders_match_the_loaders_class_order(data_root):
    ds = load_dataset('imagenet', 'val')
    assert ds.classnames == imagenet_classnames() and ds.labels.tolist() == list(range(1000))
    sizes = {Image.open(ds.images.items[i]).size for i in range(0, 1000, 50)}
    assert sizes <= set(fixtures._SIZES['imagenet'])                     # ImageNet-like photos, 500 x 375 and the like


def test_karpathy_files_hold_the_real_splits(data_root):
    coco = json.loads((data_root / 'coco-captions' / 'dataset_coco.json').read_text())
    flickr = json.loads((data_root / 'flickr30k-captions' / 'dataset_flickr30k.json').read_text())
    assert sorted({im['split'] for im in coco['images']}) == ['restval', 'test', 'train', 'val']
    assert sorted({im['split'] for im in flickr['images']}) == ['test', 'train', 'val']
    for im in coco['images'] + flickr['images']:
        assert len(im['sentences']) == 5 and im['sentids'] == [s['sentid'] for s in im['sentences']]
    assert all((data_root / 'coco-captions' / im['filepath'] / im['filename']).is_file() for im in coco['images'])
    first = data_root / 'flickr30k-captions' / 'flickr30k-images' / flickr['images'][0]['filename']
    assert Image.open(first).size in fixtures._SIZES['flickr30k-captions']


def test_masked_lm_loads_offline(written):
    from transformers import AutoModelForMaskedLM, AutoTokenizer
    from robustclip_nb.text_attacks import MaskedLMCandidates
    path = written[0] / 'models' / 'bert-base-uncased-random'
    assert 'random weights' in (path / 'README.txt').read_text().lower()
    tok, model = AutoTokenizer.from_pretrained(path), AutoModelForMaskedLM.from_pretrained(path)
    assert len(tok) == model.config.vocab_size == 30522 and model.config.num_hidden_layers == 12
    assert tok.convert_ids_to_tokens([0, 100, 101, 102, 103]) == ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    subs = MaskedLMCandidates(str(path)).candidates(['a', 'photo', 'of', 'a', 'dog'], 4, 5)
    assert subs and all(isinstance(s, str) and not s.startswith('##') and s not in tok.all_special_tokens for s in subs)


def test_writing_again_skips_complete_fixtures(written):
    root = written[0]
    before = (root / 'stl10_binary' / 'train_X.bin').stat().st_mtime_ns
    assert write_fixtures(root, per_class=2) == {n: [] for n in FIXTURE_DATASETS}
    assert (root / 'stl10_binary' / 'train_X.bin').stat().st_mtime_ns == before      # nothing rewritten


def test_per_class_and_seed(tmp_path, monkeypatch):
    out = write_fixtures(tmp_path / 'a', ['eurosat', 'cifar10', 'coco-captions'], per_class=2, seed=3)
    assert set(out) == {'eurosat', 'cifar10', 'coco-captions'}
    monkeypatch.setenv('ROBUSTCLIP_DATA', str(tmp_path / 'a'))
    es = {s: load_dataset('eurosat', s) for s in ('train', 'test')}
    assert (len(es['train']), len(es['test'])) == (60, 20)                   # 8 a class: 6 train, 2 test
    assert np.bincount(es['test'].labels.numpy()).tolist() == [2] * 10
    assert len(load_dataset('cifar10', 'test')) == 20 and len(load_dataset('coco-captions', 'test')) == 4
    write_fixtures(tmp_path / 'b', 'cifar10', per_class=2, seed=3)
    write_fixtures(tmp_path / 'c', 'cifar10', per_class=2, seed=4)
    batch = lambda r: (r / 'cifar-10-batches-py' / 'test_batch').read_bytes()
    assert batch(tmp_path / 'a') == batch(tmp_path / 'b') != batch(tmp_path / 'c')   # seeded


@pytest.mark.parametrize('kw,says', [(dict(datasets=['cifar10', 'imagenet-21k']), "unknown fixture 'imagenet-21k'"),
                                     (dict(datasets='mnist'), "unknown fixture 'mnist'"),
                                     (dict(datasets=[]), 'datasets is empty'),
                                     (dict(datasets=3), 'datasets must be a name'),
                                     (dict(per_class=0), 'per_class must be an int >= 1'),
                                     (dict(per_class=-2), 'per_class must be an int >= 1'),
                                     (dict(per_class=1.5), 'per_class must be an int >= 1'),
                                     (dict(per_class='1'), 'per_class must be an int >= 1'),
                                     (dict(per_class=True), 'per_class must be an int >= 1'),
                                     (dict(seed=-1), 'seed must be an int >= 0'),
                                     (dict(progress=1), 'progress must be True or False')])
def test_bad_input_is_refused_before_writing(tmp_path, kw, says):
    with pytest.raises(RobustCLIPError, match=says) as e:
        write_fixtures(tmp_path / 'root', **kw)
    assert '\n' not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_root_that_is_a_file(tmp_path):
    f = tmp_path / 'data'; f.write_text('x')
    with pytest.raises(RobustCLIPError, match='is a file, not a folder'): write_fixtures(f, 'cifar10')
    with pytest.raises(RobustCLIPError, match='root must be a folder path'): write_fixtures(None)
    assert f.read_text() == 'x'


def test_real_data_is_never_overwritten(tmp_path):
    real = tmp_path / 'imagenet' / 'val' / 'n01440764'; real.mkdir(parents=True)
    (real / 'ILSVRC2012_val_00000293.JPEG').write_bytes(b'a real photo')
    with pytest.raises(RobustCLIPError, match='holds files that write_fixtures did not write'):
        write_fixtures(tmp_path, ['cifar10', 'imagenet'])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['imagenet']       # cifar10 not written either
    (tmp_path / 'caltech101').mkdir()                                        # an empty folder is filled
    assert write_fixtures(tmp_path, 'caltech101') == {'caltech101': [tmp_path / 'caltech101']}


def test_an_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    target, writer, needs = fixtures._FIXTURES['cifar100']
    def interrupted(dest, per_class, rng):
        writer(dest, per_class, rng); raise KeyboardInterrupt
    monkeypatch.setitem(fixtures._FIXTURES, 'cifar100', (target, interrupted, needs))
    with pytest.raises(KeyboardInterrupt): write_fixtures(tmp_path, ['cifar10', 'cifar100'])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['cifar-10-batches-py']   # the finished one stays, whole
    monkeypatch.setitem(fixtures._FIXTURES, 'cifar100', (target, writer, needs))
    assert write_fixtures(tmp_path, ['cifar10', 'cifar100']) == {'cifar10': [], 'cifar100': [tmp_path / 'cifar-100-python']}
