"""Run a one-shot detector with your own query on your own images.

    python tools/demo.py TARGET --query QUERY [--query-box x1,y1,x2,y2]
        [--config CFG] [--checkpoint CKPT] [--out DIR] [--trust-checkpoint]
        [--verify-thr T]

TARGET is an image or a folder of images. Each ``--query`` is one query
image (repeat it for several queries); ``--query-box`` crops the object from
the query image (once per ``--query``, same order; without it the whole
query image is the object). ``--kshot`` treats all ``--query`` images as K
shots of one class. Defaults to the quickstart model
(``bash tools/quickstart.sh`` trains it). The checkpoint is read
weights-only and must fit the config (docs/checkpoints.md).

Writes, under ``--out``: one PNG per target and query (detections in green,
the query in a column left of the target) and ``detections.json`` with every
detection above ``--score-thr`` in target pixel coordinates.
``--verify-thr T`` also checks every such detection against the query
(``oneshot/apis/verification.py``: its box, encoded like a query, must have
a cosine similarity >= T to the query) and records the similarity; T is a
number or the JSON that ``tools/analysis/calibrate_verification.py --out``
wrote (the quickstart's: ``work_dirs/quickstart/verification.json``).

A box value may start with '-': ``--query-box -50,10,80,90`` is read like
``--query-box=-50,10,80,90`` (argparse alone would take it for an option);
the box is then checked like any other (it must lie inside the query image,
else an error names the query and the box).
Over a folder, a target that cannot be read (undecodable or vanished file)
is skipped with a warning and listed under ``skipped`` in
``detections.json``; the final line names the skipped files. A single
TARGET file that cannot be read is an error. If the run stops early (an
error, Ctrl-C), ``detections.json`` still holds the targets done so far and
says where it stopped (``interrupted``).
"""
import argparse
import json
import os
import os.path as osp
import re
import sys

import mmcv
from tqdm import tqdm

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from oneshot.apis import (OneShotInferencer, Query, list_images,  # noqa: E402
                          read_image, read_verify_thr)
from oneshot.utils import CheckpointError  # noqa: E402
from oneshot.visualization import draw_oneshot_result  # noqa: E402

DEFAULT_CONFIG = ('configs/quickstart/'
                  'siamese-faster-rcnn_r18-tiny_synthetic-pretrained.py')
DEFAULT_WORK_DIR = 'work_dirs/quickstart'


def parse_box(text: str):
    if text.lower() in ('full', 'none'):
        return None  # the whole query image
    try:
        box = [float(v) for v in text.split(',')]
    except ValueError:
        box = []
    if len(box) != 4:
        raise argparse.ArgumentTypeError(
            f'--query-box {text!r}: expected four numbers x1,y1,x2,y2.')
    return box


# Options whose value may start with '-' (a negative coordinate): argparse
# would read '-50,10,80,90' as an unknown option.
_NEGATIVE_VALUE_OPTIONS = ('--query-box', )
_NEGATIVE_NUMBER = re.compile(r'-\.?\d')


def attach_negative_values(argv):
    """``['--query-box', '-50,1,2,3']`` -> ``['--query-box=-50,1,2,3']``,
    so that argparse takes a value starting with a negative number as the
    option's value; everything else is left as it is."""
    out, i = [], 0
    while i < len(argv):
        token = argv[i]
        if (token in _NEGATIVE_VALUE_OPTIONS and i + 1 < len(argv)
                and _NEGATIVE_NUMBER.match(argv[i + 1])):
            out.append(f'{token}={argv[i + 1]}')
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Detect the class of a query image in target images.')
    parser.add_argument('target', help='Target image or folder of images.')
    parser.add_argument('--query', action='append', required=True,
                        help='Query image (repeat for several queries).')
    parser.add_argument('--query-box', action='append', type=parse_box,
                        help='x1,y1,x2,y2 box of the object in the query '
                        'image (or "full" for the whole image); once per '
                        '--query, in the same order. A value may start '
                        'with "-" (no "=" needed).')
    parser.add_argument('--kshot', action='store_true',
                        help='All --query images are shots of one class.')
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--checkpoint', default=None,
                        help='Defaults to the quickstart\'s last checkpoint '
                        f'({DEFAULT_WORK_DIR}/last_checkpoint).')
    parser.add_argument('--out', default='work_dirs/demo')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--topk', type=int, default=100,
                        help='At most this many detections per pair.')
    parser.add_argument('--verify-thr', default=None,
                        help='Drop detections whose box, encoded like a '
                        'query, has a cosine similarity to the query below '
                        'this: a number, or the JSON of '
                        'tools/analysis/calibrate_verification.py --out '
                        '(tools/quickstart.sh writes '
                        f'{DEFAULT_WORK_DIR}/verification.json). Default: '
                        'no check.')
    parser.add_argument('--device', default=None,
                        help='cpu, cuda, cuda:1 ... (default: cuda if '
                        'available).')
    parser.add_argument('--batch-size', type=int, default=8,
                        help='Queries matched per forward of the heads.')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='Allow a checkpoint that is not weights-only '
                        'to be unpickled fully (that can run code: only '
                        'for files you wrote yourself).')
    args = parser.parse_args(attach_negative_values(
        sys.argv[1:] if argv is None else list(argv)))
    if args.query_box and len(args.query_box) != len(args.query):
        parser.error(f'{len(args.query_box)} --query-box for '
                     f'{len(args.query)} --query; give one box per query '
                     'or none.')
    if args.verify_thr is not None:
        try:
            args.verify_thr = read_verify_thr(args.verify_thr)
        except ValueError as err:
            parser.error(f'--verify-thr: {err}')
    return args


def _rounded(values, digits: int) -> list:
    return values.astype(float).round(digits).tolist()


def default_checkpoint() -> str:
    pointer = osp.join(DEFAULT_WORK_DIR, 'last_checkpoint')
    if not osp.isfile(pointer):
        raise SystemExit(
            f'No --checkpoint given and {pointer} does not exist: train the '
            'quickstart model first (bash tools/quickstart.sh) or pass '
            '--config and --checkpoint.')
    with open(pointer) as f:
        return f.read().strip()


def main(argv=None):
    args = parse_args(argv)
    checkpoint = args.checkpoint or default_checkpoint()
    boxes = args.query_box or [None] * len(args.query)
    shots = [Query(path, box) for path, box in zip(args.query, boxes)]
    queries = [shots] if args.kshot else shots
    folder = osp.isdir(args.target)
    targets = list_images(args.target) if folder else [args.target]

    try:
        inferencer = OneShotInferencer(
            args.config, checkpoint, device=args.device,
            batch_size=args.batch_size,
            trust_checkpoint=args.trust_checkpoint)
    except CheckpointError as e:  # names the files: no traceback needed
        raise SystemExit(f'tools/demo.py: {e}') from e
    try:
        encoded = inferencer.encode(queries)
    except (ValueError, OSError) as e:  # names the query: no traceback
        raise SystemExit(f'tools/demo.py: {e}') from e
    os.makedirs(args.out, exist_ok=True)
    names = [qs.name for qs in encoded.sets]
    out_json = osp.join(args.out, 'detections.json')
    records, skipped = [], []

    def write_summary(interrupted=None) -> None:
        summary = dict(
            config=args.config, checkpoint=checkpoint,
            score_thr=args.score_thr, verify_thr=args.verify_thr,
            queries=[dict(name=qs.name,
                          shots=[dict(img=q.img, bbox=q.bbox)
                                 for q in qs.shots])
                     for qs in encoded.sets],
            results=records, skipped=skipped)
        if interrupted is not None:
            summary['interrupted'] = interrupted
        with open(out_json, 'w') as f:
            json.dump(summary, f, indent=1)

    target = None
    try:
        for target in tqdm(targets, desc='targets', unit='img'):
            try:
                img = read_image(target, f'Target {target!r}')
            except (ValueError, OSError) as e:
                if not folder:
                    raise SystemExit(f'tools/demo.py: {e}') from e
                skipped.append(dict(target=target, error=str(e)))
                tqdm.write(f'[demo] WARNING: {e} Skipped; going on with '
                           'the other targets.', file=sys.stderr)
                continue
            # The decoded array goes in: one decode per target (the
            # inferencer treats arrays and files alike).
            result = inferencer(img, encoded, score_thr=args.score_thr,
                                topk=args.topk,
                                verify_thr=args.verify_thr)[0]
            stem = osp.splitext(osp.basename(target))[0]
            for qs, det in zip(encoded.sets, result['detections']):
                picture = draw_oneshot_result(
                    img, qs.patches, det['bboxes'], det['scores'],
                    class_name=qs.name, score_thr=args.score_thr)
                suffix = '' if len(names) == 1 else f'_{qs.name}'
                mmcv.imwrite(picture,
                             osp.join(args.out, f'{stem}{suffix}.png'))
            records.append(dict(
                target=target, width=result['width'],
                height=result['height'],
                detections=[dict(query=d['query'],
                                 bboxes=_rounded(d['bboxes'], 2),
                                 scores=_rounded(d['scores'], 4),
                                 **({'similarity': _rounded(
                                     d['similarity'], 4)}
                                    if 'similarity' in d else {}))
                            for d in result['detections']]))
    except BaseException as e:
        if isinstance(e, SystemExit) and not records:
            raise
        write_summary(interrupted=dict(
            target=target, error=f'{type(e).__name__}: {e}'))
        print(f'[demo] stopped at {target} ({type(e).__name__}); the '
              f'{len(records)} target(s) done before it are in {out_json}',
              file=sys.stderr)
        raise
    write_summary()
    line = (f'[demo] {len(records)} target(s) x {len(names)} query(ies): '
            f'{inferencer.num_target_passes} target and '
            f'{inferencer.num_query_passes} query backbone passes; pictures '
            f'and {out_json} in {args.out}')
    if skipped:
        line += (f'; skipped {len(skipped)} unreadable target(s): '
                 + ', '.join(osp.basename(s['target']) for s in skipped))
    print(line)
    if not records:
        raise SystemExit(
            f'tools/demo.py: none of the {len(targets)} target(s) in '
            f'{args.target!r} could be read (see the warnings above).')


if __name__ == '__main__':
    main()
