"""The documentation site: mkdocs-material + mkdocs-jupyter, built from the notebooks without executing them.

`python tools/docs.py` builds the site into `site/` with warnings as errors (`mkdocs build --strict`);
`python tools/docs.py --serve` serves it with live reload; `python tools/docs.py --nbdev-proc` checks that nbdev's own
docs processing (`nbdev_proc_nbs`, for users who render with Quarto) runs clean on every notebook. mkdocs.yml loads this file as a hook, so a plain
`mkdocs build` / `mkdocs serve` does the same staging:

- every notebook in nbs/ (and nbs/experiments/) is copied to docs/nbs/ in nbdev's reading of its directives:
  `#| hide` and `#| default_exp` cells dropped, `#| echo: false` inputs hidden, the printed text of `#| output: asis`
  cells turned into Markdown, `#|` lines stripped (export cells keep a small "exported" badge). nbs/ is never touched;
- README.md (made from nbs/index.ipynb) becomes the home page, CHANGELOG.md the changelog page, figures/ images are
  copied beside them, and links to files that are not pages point to the repository instead;
- the navigation is made from the notebooks' numbers (00-02 foundations, 03-06 attacks, ...), so a new notebook
  appears in its group without editing mkdocs.yml.
"""
import os, re, shutil, subprocess, sys, time
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT/'docs'
GEN = ('nbs', 'figures', 'index.md', 'changelog.md')          # generated under docs/ (git-ignored)
GROUPS = [(0, 2, 'Foundations'), (3, 6, 'Attacks'), (7, 8, 'Evaluation'), (9, 11, 'Training'),
          (12, 18, 'Defences'), (19, 29, 'Command line'), (90, 99, 'Appendices')]
IMAGE_EXTS = {'.png', '.svg', '.jpg', '.jpeg', '.gif'}

def _repo_url() -> str:
    cfg = ConfigParser(); cfg.read(ROOT/'settings.ini')
    return f"{cfg['DEFAULT']['git_url'].rstrip('/')}/blob/{cfg['DEFAULT'].get('branch', 'main')}/"

# ---- notebooks -------------------------------------------------------------------------------------------------
def _directives(src:str) -> dict:
    "nbdev's `#| key: value` lines at the top of a cell -> {key: value}."
    out = {}
    for l in src.splitlines():
        if not l.startswith('#|'): break
        k, _, v = l[2:].strip().partition(':') if ':' in l else (l[2:].strip().split(' ')[0], '', ' '.join(l[2:].split()[1:]))
        out[k.strip()] = v.strip()
    return out

def _strip_directives(src:str) -> str:
    lines = src.splitlines()
    while lines and lines[0].startswith('#|'): lines.pop(0)
    return '\n'.join(lines).strip('\n')

def _text(outputs) -> str:
    parts = [''.join(o.get('text', '')) if o.get('output_type') == 'stream' and o.get('name') != 'stderr'
             else ''.join(o.get('data', {}).get('text/markdown', '') or o.get('data', {}).get('text/plain', ''))
             for o in outputs]
    return '\n'.join(p.rstrip() for p in parts if p.strip())

def process_notebook(nb):
    "The notebook as nbdev's docs would show it (a new nbformat node; `nb` is left as it is)."
    import nbformat
    nb = nbformat.from_dict(nb)
    cells = []
    for c in nb.cells:
        if c.cell_type != 'code': cells.append(c); continue
        d = _directives(c.source)
        if 'hide' in d or 'default_exp' in d or not c.source.strip(): continue
        src = _strip_directives(c.source)
        if not src and not c.get('outputs'): continue
        c.source = src
        tags = set(c.metadata.get('tags', []))
        if 'export' in d or 'exports' in d: tags.add('export')
        if d.get('echo') == 'false': tags.add('remove_input')
        if d.get('output') == 'false': c.outputs = []
        if d.get('output') == 'asis':                   # printed Markdown is Markdown
            md = nbformat.v4.new_markdown_cell(_text(c.outputs))
            c.outputs = []
            if d.get('echo') != 'false' and src: c.metadata['tags'] = sorted(tags); cells.append(c)
            if md.source: cells.append(md)
            continue
        if tags: c.metadata['tags'] = sorted(tags)
        cells.append(c)
    title = next((i for i, c in enumerate(cells) if c.cell_type == 'markdown' and re.match(r'#\s', c.source)), 0)
    nb.cells = cells[title:title+1] + cells[:title] + cells[title+1:]   # the title first, even after an exported import cell
    return nb

def notebook_title(path:Path) -> str:
    import nbformat
    for c in nbformat.read(path, as_version=4).cells:
        if c.cell_type == 'markdown' and (m := re.search(r'^#\s+(.+)$', c.source, re.M)): return m.group(1).strip()
    return path.stem

def _number(path:Path):
    m = re.match(r'(\d+)_', path.name)
    return int(m.group(1)) if m else None

def notebooks(nbs:Path=ROOT/'nbs') -> list[Path]:
    "The numbered notebooks of nbs/ in reading (numeric) order."
    return sorted((p for p in nbs.glob('*.ipynb') if _number(p) is not None), key=lambda p: (_number(p), p.name))

def make_nav(nbs:Path=ROOT/'nbs') -> list:
    "mkdocs `nav`: Start, the notebooks grouped by their numbers, experiments, results, benchmarks, changelog."
    nav, groups = [{'Start': 'index.md'}], {}
    for p in notebooks(nbs):
        n = _number(p)
        name = next((g for lo, hi, g in GROUPS if lo <= n <= hi), 'More')
        groups.setdefault(name, []).append({f'{p.stem.split("_")[0]} · {notebook_title(p)}': f'nbs/{p.name}'})
    order = [g for _, _, g in GROUPS] + ['More']
    nav += [{g: groups[g]} for g in order if g in groups]
    exps = sorted((nbs/'experiments').glob('*.ipynb'))
    if exps: nav.append({'Experiments': [{notebook_title(p): f'nbs/experiments/{p.name}'} for p in exps]})
    for title, page in [('Results', 'results.md'), ('Benchmarks', 'benchmarks.md'), ('Changelog', 'changelog.md')]:
        if page in GEN or (DOCS/page).exists(): nav.append({title: page})
    return nav

# ---- Markdown pages --------------------------------------------------------------------------------------------
_REPO_PLACE = {'index.md': 'README.md', 'changelog.md': 'CHANGELOG.md'}   # pages whose Markdown lives outside docs/
_LINK = re.compile(r'(!?\[[^\]]*\]\()([^)\s]+)(\))')

def fix_links(md:str, src:str, docs:Path=DOCS) -> str:
    """Links written for GitHub -> links that work on the site. `src` is the page's path in docs/; its Markdown was
    written at `_REPO_PLACE[src]` (README.md and CHANGELOG.md at the root, the rest in docs/). Notebooks, figures and
    pages resolve to their staged copies; anything else (code, data) to the file in the repository on GitHub."""
    written_at = ROOT/_REPO_PLACE.get(src, f'docs/{src}')
    site_dir = (docs/src).parent
    def sub(m):
        target = m.group(2)
        if re.match(r'[a-z]+:|#|/', target): return m.group(0)
        path, _, frag = target.partition('#')
        repo_path = Path(os.path.normpath(written_at.parent/path))
        site = next((docs/page for page, place in _REPO_PLACE.items() if repo_path == ROOT/place), None)
        for src_root, site_root in [(ROOT/'nbs', docs/'nbs'), (ROOT/'figures', docs/'figures'), (ROOT/'docs', docs)]:
            if site is None and repo_path.is_relative_to(src_root) and (site_root/repo_path.relative_to(src_root)).is_file():
                site = site_root/repo_path.relative_to(src_root)
        if site is not None: new = Path(os.path.relpath(site, site_dir)).as_posix() + (f'#{frag}' if frag else '')
        elif repo_path.is_relative_to(ROOT):   # folders open as GitHub's tree view
            new = _repo_url().replace('/blob/', '/tree/' if repo_path.is_dir() else '/blob/') + repo_path.relative_to(ROOT).as_posix()
        else: return m.group(0)
        return f'{m.group(1)}{new}{m.group(3)}'
    return _LINK.sub(sub, md)

# ---- staging ---------------------------------------------------------------------------------------------------
def stage(docs:Path=DOCS):
    "Write the generated parts of docs/ (git-ignored) from nbs/, figures/, README.md and CHANGELOG.md."
    import nbformat
    for g in GEN:
        p = docs/g
        if p.is_dir(): shutil.rmtree(p)
        elif p.exists(): p.unlink()
    for src in [*notebooks(), *sorted((ROOT/'nbs'/'experiments').glob('*.ipynb'))]:
        dst = docs/'nbs'/src.relative_to(ROOT/'nbs'); dst.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(process_notebook(nbformat.read(src, as_version=4)), dst)
    for img in (ROOT/'figures').rglob('*'):
        if img.suffix.lower() in IMAGE_EXTS:
            dst = docs/'figures'/img.relative_to(ROOT/'figures'); dst.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(img, dst)
    readme = (ROOT/'README.md').read_text()
    readme = re.sub(r'^<!-- generated.*?-->\n+', '', readme)
    (docs/'index.md').write_text(readme)
    if (ROOT/'CHANGELOG.md').exists(): (docs/'changelog.md').write_text((ROOT/'CHANGELOG.md').read_text())

# ---- mkdocs hooks (mkdocs.yml: hooks: [tools/docs.py]) -----------------------------------------------------------
def on_config(config, **kw):
    if url := os.environ.get('ROBUSTCLIP_DOCS_MATHJAX'):      # e.g. a local MathJax 2 for viewing the site offline
        config['plugins']['mkdocs-jupyter'].config['custom_mathjax_url'] = url
    stage(Path(config['docs_dir']))
    config['nav'] = make_nav()
    return config

def on_page_markdown(markdown, page, config, files, **kw):
    return fix_links(markdown, page.file.src_uri, Path(config['docs_dir']))

def nbdev_proc_check() -> int:
    """What `nbdev_proc_nbs` does to each notebook (nbdev's docs processors, which execute the cells that import or
    call show_doc), on a copy of nbs/ in a temporary folder: nbs/ is not touched, and Quarto is neither needed nor
    installed (nbdev_proc_nbs itself tries to install it). Prints every notebook that fails; 1 if any did."""
    import tempfile, traceback
    tmp = Path(tempfile.mkdtemp(prefix='robustclip_proc_'))
    shutil.copy2(ROOT/'settings.ini', tmp/'settings.ini')
    shutil.copytree(ROOT/'nbs', tmp/'nbs', ignore=shutil.ignore_patterns('.*', '_*'))
    if (ROOT/'figures').exists(): os.symlink(ROOT/'figures', tmp/'figures')   # notebooks that read ../figures
    os.chdir(tmp/'nbs')
    from nbdev.serve import _proc_file
    from nbdev import serve_drv
    from nbdev.doclinks import nbglob
    failed = []
    for nb in sorted(nbglob(tmp/'nbs', func=Path)):
        t = time.time()
        try:
            job = _proc_file(nb, tmp/'_proc', tmp/'nbs')
            if job: serve_drv.main(job)
            print(f'ok     {nb.relative_to(tmp/"nbs")} ({time.time() - t:.1f} s)', flush=True)
        except Exception as e:
            failed.append(nb.relative_to(tmp/'nbs'))
            print(f'FAILED {nb.relative_to(tmp/"nbs")}: {type(e).__name__}: {e}'.splitlines()[0][:300], flush=True)
            traceback.print_exc(limit=-2)
    os.chdir(ROOT); shutil.rmtree(tmp, ignore_errors=True)
    print(f'nbdev docs processing: {len(failed)} notebook(s) failed' + (f': {", ".join(map(str, failed))}' if failed else ''))
    return 1 if failed else 0

def main():
    os.environ.setdefault('NO_MKDOCS_2_WARNING', '1')
    mk = [sys.executable, '-m', 'mkdocs']
    if '--nbdev-proc' in sys.argv: return nbdev_proc_check()
    if '--serve' in sys.argv: return subprocess.call(mk + ['serve', '-f', str(ROOT/'mkdocs.yml')], cwd=ROOT)
    t = time.time()
    rc = subprocess.call(mk + ['build', '--strict', '-f', str(ROOT/'mkdocs.yml')], cwd=ROOT)
    print(f'docs: mkdocs build --strict {"ok" if rc == 0 else "FAILED"} in {time.time() - t:.0f} s -> {ROOT/"site"}')
    return rc

if __name__ == '__main__': sys.exit(main())
