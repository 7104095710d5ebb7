"""tools/analysis/summarize_runs.py --by-supercategory on a fabricated
oneshot_runs.json: each group's mean +- std over the draws equals a hand
computation, seen and unseen classes of one supercategory are separate
rows, and a class missing from the annotation file is named."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from quickstart_utils import REPO

sys.path.insert(0, os.path.join(REPO, 'tools', 'analysis'))
import summarize_runs  # noqa: E402

# Class -> (supercategory, AP50 of draws 1 and 2, query-blind of both).
CLASSES = {
    'A': ('latin', [0.8, 0.6], [0.4, 0.4]),
    'B': ('latin', [0.6, 0.4], [0.2, 0.4]),
    'G': ('greek', [0.5, 0.3], [0.3, 0.3]),
    'D': ('latin', [0.2, 0.2], [0.1, 0.3]),  # unseen, in a seen group
}
UNSEEN = ['G', 'D']


def fake_runs():
    runs = []
    for i in range(2):
        r = {'oneshot/AP50': 0.5}
        for c, (_, ap, blind) in CLASSES.items():
            r[f'oneshot/AP50_{c}'] = ap[i]
            r[f'oneshot/blind_AP50_{c}'] = blind[i]
            r[f'oneshot/gain_{c}'] = ap[i] - blind[i]
        runs.append(r)
    return dict(num_runs=2, runs=runs, mean=runs[0], std=runs[0])


def row(lines, name, status):
    (line, ) = [ln for ln in lines if ln.split()[:2] == [name, status]]
    return line.split()


def test_groups_equal_hand_computation():
    groups = {c: v[0] for c, v in CLASSES.items()}
    lines = summarize_runs.supercategory_lines(fake_runs(), groups, UNSEEN)
    # latin seen = A, B: AP50 per draw (0.8+0.6)/2=0.7, (0.6+0.4)/2=0.5
    # -> 60.0 +- 14.1 (sample std of 70 and 50, as the headline's);
    # blind 0.3, 0.4 -> 35.0 +- 7.1; gain 0.4, 0.1 -> +25.0 +- 21.2.
    latin = row(lines, 'latin', 'seen')
    assert latin[2] == '2'
    assert latin[3:] == ['60.0', '+-', '14.1', '35.0', '+-', '7.1',
                         '+25.0', '+-', '21.2']
    # latin unseen = D alone: 20.0 +- 0.0, blind 10 and 30 -> 20.0 +- 14.1.
    assert row(lines, 'latin', 'unseen')[2:6] == ['1', '20.0', '+-', '0.0']
    assert row(lines, 'latin', 'unseen')[6:9] == ['20.0', '+-', '14.1']
    greek = row(lines, 'greek', 'unseen')
    assert greek[3:6] == ['40.0', '+-', '14.1']
    # Seen rows come before unseen ones.
    names = [ln.split()[1] for ln in lines[1:]]
    assert names == ['seen', 'unseen', 'unseen']
    # Without a split: one row per supercategory over all its classes.
    lines = summarize_runs.supercategory_lines(fake_runs(), groups)
    latin = row(lines, 'latin', '-')
    assert latin[2] == '3'
    ap = np.mean([np.mean([0.8, 0.6, 0.2]), np.mean([0.6, 0.4, 0.2])])
    assert float(latin[3]) == pytest.approx(100 * ap, abs=0.05)


def test_cli_reads_the_annotation_file_and_names_unknown_classes(tmp_path):
    runs = fake_runs()
    runs['source'] = dict(split=dict(unseen=UNSEEN))
    path = tmp_path / 'oneshot_runs.json'
    path.write_text(json.dumps(runs))
    ann = tmp_path / 'val.json'
    cats = [dict(id=i + 1, name=c, supercategory=v[0])
            for i, (c, v) in enumerate(CLASSES.items())]
    ann.write_text(json.dumps(dict(images=[], annotations=[],
                                   categories=cats)))
    cmd = [sys.executable, 'tools/analysis/summarize_runs.py', str(path),
           '--by-supercategory', '--ann-file', str(ann)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert row(out.stdout.splitlines(), 'greek', 'unseen')[2] == '1'
    # A runs file of another data set: its class is named.
    ann.write_text(json.dumps(dict(images=[], annotations=[],
                                   categories=cats[:3])))
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2
    assert "'D'" in out.stderr and str(ann) in out.stderr
    # No annotation file recorded or given.
    out = subprocess.run(cmd[:4], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2 and '--ann-file' in out.stderr
