"""Copy README.md and docs/ into the Sphinx source tree of the site, with the repository files
their Markdown links to (execution-environment.yml, the example inventory, ...) at the same
relative paths, so MyST turns those links into pages and downloads instead of broken links.

Usage: copy_pages.py REPOSITORY SPHINX_SOURCE_DIR
"""

import re
import shutil
import sys
from pathlib import Path

LOCAL_LINK = re.compile(r'\]\((?![a-z]+:|#)([^)\s#]+)')


def copy(repository, source_dir, relative):
    target = source_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if (repository / relative).is_dir():
        shutil.copytree(repository / relative, target, dirs_exist_ok=True)
    else:
        shutil.copy2(repository / relative, target)


def main(repository, source_dir):
    repository, source_dir = Path(repository).resolve(), Path(source_dir)
    pages = [repository / 'README.md', *sorted((repository / 'docs').glob('*.md'))]
    for page in pages:
        copy(repository, source_dir, page.relative_to(repository))
        for link in LOCAL_LINK.findall(page.read_text(encoding='utf-8')):
            linked = (page.parent / link).resolve()
            if linked.suffix != '.md' and linked.exists() and linked.is_relative_to(repository):
                copy(repository, source_dir, linked.relative_to(repository))


if __name__ == '__main__':
    main(*sys.argv[1:])
