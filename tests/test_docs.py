"""The repository documents itself: its files cite only its own docs.

Code comments, docstrings, configs and docs may point readers to
``docs/*.md`` (with an optional section, ``docs/methods.md, "CoAE"``), never
to notes kept outside the repository, which users of a clone do not have.
"""
import os.path as osp
import re
import subprocess

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEXT_SUFFIXES = ('.py', '.md', '.sh', '.yml', '.yaml', '.txt')
# Built from pieces so that this file does not match its own patterns.
OUTSIDE_REFS = ('METHODS' + '.md', 'DESIGN' + '.md', '..' + '/shared')
EXCLUDED_PREFIXES = ('.ci/', )
SELF = osp.relpath(osp.abspath(__file__), ROOT).replace(osp.sep, '/')

# "docs/<name>.md", optionally followed by ', "<section>"' (the section may
# wrap onto the next comment line).
DOC_REF = re.compile(r'(?<![\w/.-])docs/([\w./-]+?\.md)'
                     r'(?:,[\s#]*"([^"]{1,100})")?')


def repo_text_files():
    """Tracked files (plus new, not ignored ones) that hold text the
    project writes: code, configs, docs, scripts."""
    try:
        out = subprocess.run(
            ['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip('not a git checkout: cannot list the tracked files')
    files = []
    for path in sorted(set(out.splitlines())):
        if path == SELF or path.startswith(EXCLUDED_PREFIXES):
            continue
        if not (path.endswith(TEXT_SUFFIXES) or path.startswith('configs/')):
            continue
        if osp.isfile(osp.join(ROOT, path)):
            files.append(path)
    assert files, 'git listed no text files'
    return files


def read(path):
    with open(osp.join(ROOT, path), encoding='utf-8', errors='replace') as f:
        return f.read()


def line_of(text, pos):
    return text.count('\n', 0, pos) + 1


def headings(doc_path):
    """Heading texts of a Markdown file, lower case."""
    return [m.group(1).strip().lower() for m in re.finditer(
        r'^#+\s+(.*)$', read(doc_path), flags=re.MULTILINE)]


def test_no_reference_to_files_outside_the_repository():
    offending = []
    for path in repo_text_files():
        for number, line in enumerate(read(path).splitlines(), 1):
            if any(ref in line for ref in OUTSIDE_REFS):
                offending.append(f'{path}:{number}: {line.strip()}')
    assert not offending, (
        'These lines cite notes that are not part of the repository; cite '
        'docs/methods.md, docs/protocol.md or docs/data_flow.md (with the '
        'section) instead:\n' + '\n'.join(offending))


def test_cited_docs_exist():
    missing = []
    for path in repo_text_files():
        text = read(path)
        for m in DOC_REF.finditer(text):
            doc = 'docs/' + m.group(1)
            if not osp.isfile(osp.join(ROOT, doc)):
                missing.append(f'{path}:{line_of(text, m.start())}: {doc}')
    assert not missing, 'Cited docs that do not exist:\n' + '\n'.join(missing)


def test_cited_doc_sections_exist():
    missing = []
    for path in repo_text_files():
        text = read(path)
        for m in DOC_REF.finditer(text):
            doc, section = 'docs/' + m.group(1), m.group(2)
            if section is None or not osp.isfile(osp.join(ROOT, doc)):
                continue
            # Undo comment wrapping: "Backbone\n# pre-training".
            section = re.sub(r'\s*\n\s*(#\s*)?', ' ', section).strip()
            if not any(section.lower() in h for h in headings(doc)):
                missing.append(f'{path}:{line_of(text, m.start())}: '
                               f'{doc}, "{section}"')
    assert not missing, (
        'Cited sections that are not headings of the cited doc:\n' +
        '\n'.join(missing))


def test_relative_links_between_docs_resolve():
    broken = []
    for path in repo_text_files():
        if not (path.startswith('docs/') and path.endswith('.md')):
            continue
        text = read(path)
        for m in re.finditer(r'\]\(([^)#\s]+)(#[^)]*)?\)', text):
            target = m.group(1)
            if re.match(r'[a-z]+://', target):
                continue
            if not osp.exists(osp.join(ROOT, osp.dirname(path), target)):
                broken.append(f'{path}:{line_of(text, m.start())}: {target}')
    assert not broken, 'Broken links in docs/:\n' + '\n'.join(broken)
