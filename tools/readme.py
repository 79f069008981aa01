"""Generate README.md from nbs/index.ipynb (nbdev_readme needs quarto, which is not installable here).
Markdown cells are copied, code cells become ```python blocks followed by their text outputs.
`python tools/readme.py --check` exits 1 when README.md is out of date."""
import sys, json
from pathlib import Path

root = Path(__file__).resolve().parents[1]

HEADER = '<!-- generated from nbs/index.ipynb by tools/readme.py: edit the notebook, not this file -->\n\n'

def render(nb_path=root/'nbs'/'index.ipynb') -> str:
    nb = json.loads(Path(nb_path).read_text())
    parts = []
    for c in nb['cells']:
        src = ''.join(c['source']).strip()
        if c['cell_type'] == 'markdown': parts.append(src.replace('](../figures/', '](figures/'))   # relative to the repo root: the commit's own figures (setup.py makes them absolute for the wheel)
        elif c['cell_type'] == 'code' and src and not src.startswith('#| hide'):
            echo = '#| echo: false' not in src.splitlines()
            outs = [''.join(o.get('text', '')) or ''.join(o.get('data', {}).get('text/plain', '')) for o in c.get('outputs', []) if o.get('name') != 'stderr']
            outs = [o.rstrip() for o in outs if o.strip()]
            if echo:
                src = '\n'.join(l for l in src.splitlines() if not l.startswith('#|'))
                parts.append(f'```python\n{src}\n```')
                if outs: parts.append('```\n' + '\n'.join(outs) + '\n```')
            elif outs: parts.append('\n'.join(outs))   # printed markdown (tables) goes in as it is
    return HEADER + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text, readme = render(), root/'README.md'
    if '--check' in sys.argv:
        ok = readme.exists() and readme.read_text() == text
        print('README.md is up to date' if ok else 'README.md is out of date: run python tools/readme.py')
        sys.exit(0 if ok else 1)
    readme.write_text(text); print(f'wrote {readme}')
