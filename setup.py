"""Package set-up driven by nbdev's settings.ini (nbdev 2 layout)."""
from configparser import ConfigParser
import setuptools, shlex, shutil
from pathlib import Path
from setuptools.command.build_py import build_py

class BuildPyWithExperiments(build_py):
    "Also copy the experiment notebooks (nbs/experiments/*.ipynb) into the package, so `robustclip run` works from a wheel."
    def run(self):
        super().run()
        src = Path(__file__).parent/'nbs'/'experiments'
        if src.is_dir():
            dst = Path(self.build_lib)/'robustclip_nb'/'experiments'; dst.mkdir(parents=True, exist_ok=True)
            for nb in sorted(src.glob('*.ipynb')): shutil.copy2(nb, dst/nb.name)

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

for k in 'version description keywords author author_email'.split():
    assert k in cfg, f'missing expected setting: {k}'

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
lic = licenses[cfg['license'].lower()]
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12'.split()

requirements = shlex.split(cfg.get('requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
samples_requirements = shlex.split(cfg.get('samples_requirements', ''))
min_python = cfg['min_python']
entry_points = {'console_scripts': cfg.get('console_scripts', '').split()}

setuptools.setup(
    name=cfg['lib_name'],
    license=lic[0],
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'License :: ' + lic[1],
                 'Natural Language :: ' + cfg['language'].title()]
                + ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['robustclip_nb', 'robustclip_nb.*']),
    package_data={'robustclip_nb': ['model_configs/*.json', 'profiles/*.json']},
    include_package_data=True,
    install_requires=requirements,
    extras_require={'dev': dev_requirements, 'samples': samples_requirements},
    cmdclass={'build_py': BuildPyWithExperiments},
    python_requires='>=' + cfg['min_python'],
    # the README's image links are relative to the repository; in the wheel's metadata (PyPI) they must be absolute
    long_description=open('README.md', encoding='utf-8').read().replace(
        '](figures/', '](' + cfg['git_url'].replace('https://github.com/', 'https://raw.githubusercontent.com/').rstrip('/') + f"/{cfg['branch']}/figures/"),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points=entry_points,
    **{k: cfg[k] for k in 'version description keywords author author_email'.split()})
