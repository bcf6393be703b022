"""The README is an index, and each result figure has one home (docs/model_zoo.md)."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
# The per-seed results of each embedded recipe (seed 0 / seed 1), as docs/model_zoo.md states them.
HEADLINES = ['70.25 / 70.16', '67.93 / 67.76', '53.4 / 51.6', '50.61 / 50.49']


def test_readme_is_an_index_of_at_most_12_kb():
    assert (ROOT / 'README.md').stat().st_size <= 12 * 1024


@pytest.mark.parametrize('figure', HEADLINES)
def test_headline_figures_live_in_the_model_zoo_only(figure):
    assert figure in (ROOT / 'docs/model_zoo.md').read_text()
    homes = [page.relative_to(ROOT).as_posix() for page in PAGES if figure in page.read_text()]
    assert homes == ['docs/model_zoo.md']


@pytest.mark.parametrize('page', PAGES, ids=lambda page: page.name)
def test_relative_links_resolve(page):
    for target in re.findall(r'\]\(([^)#\s]+)(?:#[^)]*)?\)', page.read_text()):
        if '://' not in target:
            assert (page.parent / target).exists(), f'{page.name} links {target}, which does not exist'
