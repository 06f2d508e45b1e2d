"""Packaging for semidbm.

The version lives only in ``semidbm/_version.py`` (read here as text, so that building
never imports the package). The extras give the ranges semidbm's tests and docs work
with; ``constraints.txt`` pins the exact versions CI installs.
"""
import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).resolve().parent


def read_version():
    text = (HERE / 'semidbm' / '_version.py').read_text(encoding='utf-8')
    match = re.search(r"^__version__ = '([^']+)'$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError('no __version__ line in semidbm/_version.py')
    return match.group(1)


setup(
    name='semidbm',
    version=read_version(),
    description='A pure-Python, append-only key/value store with the dbm interface',
    long_description=(HERE / 'README.rst').read_text(encoding='utf-8'),
    long_description_content_type='text/x-rst',
    author='the semidbm authors',
    license='BSD-3-Clause',
    license_files=['LICENSE'],
    url='https://github.com/jamesls/semidbm',
    project_urls={'Source': 'https://github.com/jamesls/semidbm',
                  'Documentation': 'https://semidbm.readthedocs.io/'},
    packages=find_packages(include=['semidbm', 'semidbm.*']),
    package_data={'semidbm': ['py.typed']},
    python_requires='>=3.9',
    install_requires=[],
    extras_require={
        'test': ['pytest>=7.0', 'hypothesis>=6.0', 'coverage[toml]>=7.0', 'mypy>=1.8'],
        'docs': ['sphinx>=7.0'],
        'plot': ['matplotlib>=3.5'],
        # scripts/benchmark installs its own copy (constraints.txt's pin) when it runs lmdb.
        'bench': ['lmdb>=1.4'],
        'dev': ['build>=1.0', 'twine>=5.0'],
    },
    entry_points={'console_scripts': ['semidbm = semidbm.cli:main']},
    keywords='dbm key-value database storage shelve append-only',
    classifiers=[
        'Development Status :: 5 - Production/Stable',
        'Intended Audience :: Developers',
        'License :: OSI Approved :: BSD License',
        'Operating System :: OS Independent',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3 :: Only',
        'Programming Language :: Python :: 3.9',
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.12',
        'Programming Language :: Python :: 3.13',
        'Programming Language :: Python :: Implementation :: CPython',
        'Programming Language :: Python :: Implementation :: PyPy',
        'Topic :: Database',
        'Typing :: Typed',
    ],
)
