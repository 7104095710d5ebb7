"""One-shot episodes over a COCO-format dataset."""
import json
import os.path as osp
import random
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO
from mmdet.registry import DATASETS
from mmengine.fileio import get_local_path
from mmengine.logging import print_log

from ..utils.rng import seeded_global_rng
from .splits import SplitSpec, resolve_split
from .transforms.query import ImageSizeMismatchError

# A query candidate: (ann_id, img_id, img_path, (x1, y1, x2, y2), (width,
# height) of the image in the json). Tuples keep the bank small for COCO's
# ~860k training boxes (the size tuple is shared by an image's entries).
QueryEntry = Tuple[int, int, str, Tuple[float, float, float, float],
                   Tuple[int, int]]
Index = Union[int, Tuple[int, object]]


def draw_without_replacement(rng: random.Random, bank: Sequence[QueryEntry],
                             exclude_img_id: int, available: int,
                             count: int) -> List[QueryEntry]:
    """The first ``count`` elements of a uniformly random permutation of the
    bank entries that do not come from ``exclude_img_id``.

    Drawn lazily (rejection of repeats and of the excluded image) so that a
    class with 250k candidates costs O(count), not a full shuffle; the
    prefix is the same whatever ``count`` is, so run ``r`` of the test
    protocol ("element r % n of a shuffle seeded by the image id") does not
    depend on how many runs are asked for.

    Args:
        rng (random.Random): The local RNG (seeded by the caller).
        bank (Sequence[QueryEntry]): All candidates of the class.
        exclude_img_id (int): Candidates from this image are never drawn.
        available (int): Number of candidates not from that image (> 0).
        count (int): How many to draw (<= available).

    Returns:
        list[QueryEntry]: ``count`` distinct candidates.
    """
    assert 0 < count <= available
    chosen: List[QueryEntry] = []
    taken = set()
    while len(chosen) < count:
        j = rng.randrange(len(bank))
        if j in taken or bank[j][1] == exclude_img_id:
            continue
        taken.add(j)
        chosen.append(bank[j])
    return chosen


@DATASETS.register_module()
class OneShotCocoDataset(CocoDataset):
    """One-shot detection episodes over a COCO-format annotation file.

    Every item is an *episode*: a target image, one class present in it, the
    ground truth of that class only (label 0, one foreground class) and
    ``num_shots`` query instances of the class taken from *other* images.
    The keys of an episode are listed in ``docs/data_flow.md``.

    Classes are all categories of the json, in json order
    (``metainfo['classes']``); ``split`` says which are seen and unseen and
    ``episode_classes`` which of them form episodes.

    Training (``test_mode=False``): items are the images holding at least
    one non-crowd box of an episode class that has a query candidate in
    another image. Each draw picks the class (uniformly, or weighted by the
    inverse number of training images holding the class) and the queries
    with ``random.Random(draw_seed)``; :class:`EpisodeSampler` passes
    ``(idx, draw_seed)`` with a seed derived from (seed, epoch, idx), so
    sampling is a deterministic function of those three. A plain integer
    index uses ``(seed, idx)`` (the same episode every epoch). The sampler
    only picks (idx, draw_seed); the dataset draws, when the item is read
    (the index contract: ``oneshot/datasets/samplers.py``).

    Testing (``test_mode=True``): one episode per (image, episode class with
    a non-crowd box in it). The query of run ``r`` is element ``r % n`` of
    the class's candidates from other images shuffled with an RNG seeded by
    the image id (the CoAE/BHRL protocol); K-shot takes elements
    ``(r * K + k) % n``. :meth:`set_run` switches the run. Every test
    episode also carries the non-crowd boxes of the *other* classes of its
    target (``other_gt_bboxes`` xyxy in original image pixels,
    ``other_gt_labels``), from which the metric computes the query-blind
    level and the error analysis tells matching errors from localisation
    errors.

    Negative episodes (``num_negatives > 0``, test mode): for every episode
    class, up to ``num_negatives`` images that hold no box of the class
    (seeded by the class label, the same in every run) become episodes with
    no ground truth and ``negative=True``. They measure what a user of the
    demo sees: false alarms on images without the query's class. The
    protocol AP of the papers ignores them (``OneShotMetric``).

    Episodes are drawn with local RNGs only. The training pipeline's
    augmentations (``RandomFlip``, query flips) draw from the global
    ``random``/numpy/torch generators, which are seeded from the episode's
    draw seed while it runs and restored afterwards
    (:func:`oneshot.utils.rng.seeded_global_rng`): an augmented training
    episode is a function of (seed, epoch, idx) in any dataloader worker,
    and loading data never moves the generators the model draws from (what
    makes ``--resume`` repeat the uninterrupted run, see
    ``oneshot/utils/resume.py``). Test episodes do not touch the global
    generators.

    Args:
        split (str | dict): ``'coco_split1'`` .. ``'coco_split4'``, ``'voc'``,
            or ``dict(seen=[...], unseen=[...])`` / ``dict(unseen=[...])``.
        episode_classes (str, optional): ``'seen'``, ``'unseen'`` or
            ``'all'``. Defaults to ``'seen'`` for training and ``'unseen'``
            for testing.
        num_shots (int): Queries per episode (K). Defaults to 1.
        query_min_size (float): Boxes with a side shorter than this (pixels)
            never serve as queries: a few-pixel patch carries no appearance.
            16 px keeps ~75 % of COCO's non-crowd boxes. Defaults to 16.
        query_ann_ids_file (str, optional): A file restricting the queries to
            the annotation ids it lists (one per line, or a JSON list), such
            as the papers' reference query lists.
        class_sampling (str): ``'uniform'`` or ``'inverse_freq'`` (training
            class choice). Defaults to ``'uniform'``.
        num_negatives (int): Negative episodes per episode class in test
            mode (see above). Defaults to 0 (the papers' protocol only).
        negative_prob (float): Training only: the probability that an
            episode's query comes from a class absent from the target (no
            ground truth: the detector learns to return nothing when the
            query's class is not there). Defaults to 0.
        look_alikes (dict, optional): Training only, with ``negative_prob``:
            class name -> names of the classes it is easily taken for.
            A negative episode then draws its query class among the
            look-alikes of the target's classes that are absent from the
            target (*hard* negatives), and uniformly among all absent
            episode classes only when there is none. With ``negative_prob
            > 0`` the names must be classes of the json (unused, and not
            checked, otherwise). Defaults to None (uniform).
        run (int): Query draw used in test mode. Defaults to 0.
        seed (int): Seed of training draws for plain integer indices.
        **kwargs: :class:`mmdet.datasets.CocoDataset` arguments
            (``ann_file``, ``data_root``, ``data_prefix``, ``pipeline``,
            ``test_mode`` ...). ``metainfo`` classes are ignored: the classes
            come from the json.

    Bad input: an empty annotation file or one with no usable episode is an
    error naming the file; a split class missing from the json is an error
    naming it; boxes narrower/shorter than 1 px are dropped (as mmdet does);
    an episode class with no usable query candidate is skipped with a
    warning naming it; a missing image file is an error naming the image id.
    Ids must be unique: two ``images`` entries with one id (their boxes
    would be merged and scored against either file) or two ``annotations``
    with one id are errors naming the file and the ids. The json
    ``width``/``height`` of an image must be the size of the decoded file
    (boxes are clipped to the json size and queries cropped from the
    decoded pixels): checked lazily, once per read, by
    :class:`LoadQueryPatches`, the one step every one-shot pipeline runs
    that sees both the json size and the decoded image, of the target
    (decoded by ``LoadImageFromFile`` before it, ``ori_shape``) and of each
    query image (decoded by itself); a mismatch is an error naming the
    json, the image file, its id and both sizes.
    """

    METAINFO = dict(classes=(), palette=None)

    def __init__(self,
                 *args,
                 split: SplitSpec,
                 episode_classes: Optional[str] = None,
                 num_shots: int = 1,
                 query_min_size: float = 16,
                 query_ann_ids_file: Optional[str] = None,
                 class_sampling: str = 'uniform',
                 num_negatives: int = 0,
                 negative_prob: float = 0.0,
                 look_alikes: Optional[Dict[str, Sequence[str]]] = None,
                 run: int = 0,
                 seed: int = 0,
                 **kwargs) -> None:
        test_mode = kwargs.get('test_mode', False)
        if episode_classes is None:
            episode_classes = 'unseen' if test_mode else 'seen'
        if episode_classes not in ('seen', 'unseen', 'all'):
            raise ValueError("episode_classes must be 'seen', 'unseen' or "
                             f"'all', got {episode_classes!r}")
        if class_sampling not in ('uniform', 'inverse_freq'):
            raise ValueError("class_sampling must be 'uniform' or "
                             f"'inverse_freq', got {class_sampling!r}")
        if num_shots < 1:
            raise ValueError(f'num_shots must be >= 1, got {num_shots}')
        if not 0 <= negative_prob < 1:
            raise ValueError(
                f'negative_prob must be in [0, 1), got {negative_prob}')
        self.negative_prob = negative_prob
        self._train_labels: Optional[List[int]] = None
        if look_alikes is not None and not isinstance(look_alikes, dict):
            raise TypeError(f'look_alikes must be a dict of class name -> '
                            f'list of class names, got '
                            f'{type(look_alikes).__name__}.')
        self.look_alikes = look_alikes
        self._look_alike_labels: Dict[int, List[int]] = {}
        if num_negatives < 0:
            raise ValueError(
                f'num_negatives must be >= 0, got {num_negatives}')
        self.num_negatives = num_negatives
        self.split = split
        self.episode_classes = episode_classes
        self.num_shots = num_shots
        self.query_min_size = query_min_size
        self.query_ann_ids_file = query_ann_ids_file
        self.class_sampling = class_sampling
        self.run = run
        self.seed = seed
        # Filled by load_data_list / filter_data.
        self.query_bank: Dict[int, List[QueryEntry]] = {}
        self._bank_count_per_img: Dict[int, Dict[int, int]] = {}
        self._class_weight: Dict[int, float] = {}
        kwargs.setdefault('filter_cfg', None)
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------
    # Loading
    # ------------------------------------------------------------------
    def load_data_list(self) -> List[dict]:
        """Parse the json into per-image dicts with all instances, and build
        the per-class query bank."""
        with get_local_path(self.ann_file,
                            backend_args=self.backend_args) as local_path:
            coco = COCO(local_path)
        cats = coco.dataset.get('categories', [])
        images = coco.dataset.get('images', [])
        if not cats or not images:
            raise ValueError(
                f'Annotation file {self.ann_file!r} has no '
                f'{"categories" if not cats else "images"}; a one-shot '
                'dataset needs both (COCO format).')
        names = [c['name'] for c in cats]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f'{self.ann_file!r}: duplicate category names '
                             f'{dup}.')
        self._check_unique_ids(images, coco.dataset.get('annotations', []))
        seen, unseen = resolve_split(self.split, names, repr(self.ann_file))
        # Only negative training episodes read them: a base config's list
        # (the synthetic shape classes) does not stand in the way of other
        # data while negative_prob is 0.
        if self.look_alikes is not None and self.negative_prob > 0:
            index = {n: i for i, n in enumerate(names)}
            unknown = sorted({n for k, v in self.look_alikes.items()
                              for n in [k, *v] if n not in index})
            if unknown:
                raise ValueError(
                    f'look_alikes names classes {unknown} that are not in '
                    f'{self.ann_file!r}; its classes are {names[:8]}'
                    f'{" ..." if len(names) > 8 else ""}.')
            self._look_alike_labels = {
                index[k]: [index[n] for n in v if n != k]
                for k, v in self.look_alikes.items()}
        self._metainfo.update(
            classes=tuple(names), seen_classes=seen, unseen_classes=unseen)
        self.cat_ids = [c['id'] for c in cats]
        self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
        self.label2cat = dict(enumerate(self.cat_ids))

        allowed_ann_ids = self._read_query_whitelist()
        bank: Dict[int, List[QueryEntry]] = defaultdict(list)
        data_list = []
        for img in images:
            img_id = img['id']
            img_path = self._img_path(img['file_name'])
            width, height = img['width'], img['height']
            size = (width, height)
            instances = []
            for ann in coco.imgToAnns.get(img_id, []):
                if ann['category_id'] not in self.cat2label:
                    raise ValueError(
                        f'{self.ann_file!r}: annotation {ann["id"]} of image '
                        f'{img_id} has category_id {ann["category_id"]}, '
                        'which is not in "categories".')
                x, y, w, h = ann['bbox']
                x1, y1 = max(0., x), max(0., y)
                x2, y2 = min(float(width), x + w), min(float(height), y + h)
                # Degenerate or outside the image: dropped, as mmdet does.
                if w < 1 or h < 1 or x2 - x1 < 1 or y2 - y1 < 1:
                    continue
                label = self.cat2label[ann['category_id']]
                crowd = int(ann.get('iscrowd', 0))
                instances.append(dict(
                    bbox=[x1, y1, x2, y2], bbox_label=label,
                    ignore_flag=crowd, ann_id=ann['id']))
                if (not crowd and min(x2 - x1, y2 - y1) >= self.query_min_size
                        and (allowed_ann_ids is None
                             or ann['id'] in allowed_ann_ids)):
                    bank[label].append(
                        (ann['id'], img_id, img_path, (x1, y1, x2, y2), size))
            data_list.append(dict(
                img_id=img_id, img_path=img_path, width=width,
                height=height, instances=instances))
        self.query_bank = dict(bank)
        self._bank_count_per_img = {
            label: self._count_by_image(entries)
            for label, entries in self.query_bank.items()}
        return data_list

    def _check_unique_ids(self, images: List[dict],
                          annotations: List[dict]) -> None:
        """Duplicate image or annotation ids are errors naming them.

        pycocotools indexes both by id, so a repeated image id silently
        merges the boxes of two files (each scored against the other's
        boxes) and a repeated annotation id makes query ids ambiguous.
        """
        for what, entries, hint, fix in (
                ('image', images, 'file_name',
                 'give each image its own id and point its annotations\' '
                 'image_id at it, or remove the repeated entries'),
                ('annotation', annotations, 'image_id',
                 'renumber the annotations (any unique integers) or remove '
                 'the repeated entries')):
            by_id: Dict[object, List[object]] = defaultdict(list)
            for entry in entries:
                by_id[entry.get('id')].append(entry.get(hint))
            dup = {i: v for i, v in by_id.items() if len(v) > 1}
            if not dup:
                continue
            ids = sorted(dup, key=lambda i: (not isinstance(i, int),
                                             i if isinstance(i, int)
                                             else str(i)))
            shown = ', '.join(f'{i} ({hint} {dup[i]})' for i in ids[:10])
            more = f' and {len(ids) - 10} more' if len(ids) > 10 else ''
            raise ValueError(
                f'{self.ann_file!r}: {len(ids)} duplicate {what} id(s) in '
                f'"{what}s": {shown}{more}. {what.capitalize()} ids must be '
                f'unique: {fix}.')

    def _img_path(self, file_name: str) -> str:
        return osp.join(self.data_prefix.get('img', ''), file_name)

    def _read_query_whitelist(self) -> Optional[set]:
        if self.query_ann_ids_file is None:
            return None
        with get_local_path(self.query_ann_ids_file) as path:
            with open(path) as f:
                text = f.read().strip()
        try:
            ids = json.loads(text) if text.startswith('[') else [
                int(line) for line in text.split() if line]
        except ValueError as e:
            raise ValueError(
                f'query_ann_ids_file {self.query_ann_ids_file!r} must hold '
                f'annotation ids, one per line or a JSON list: {e}') from e
        return set(int(i) for i in ids)

    @staticmethod
    def _count_by_image(entries: List[QueryEntry]) -> Dict[int, int]:
        counts: Dict[int, int] = defaultdict(int)
        for entry in entries:
            counts[entry[1]] += 1
        return dict(counts)

    def _available(self, label: int, img_id: int) -> int:
        """Query candidates of ``label`` outside image ``img_id``."""
        bank = self.query_bank.get(label, ())
        return len(bank) - self._bank_count_per_img.get(label, {}).get(
            img_id, 0)

    def episode_labels(self) -> List[int]:
        """Labels of the classes that form episodes."""
        names = {'seen': self.metainfo['seen_classes'],
                 'unseen': self.metainfo['unseen_classes'],
                 'all': self.metainfo['classes']}[self.episode_classes]
        wanted = set(names)
        return [i for i, n in enumerate(self.metainfo['classes'])
                if n in wanted]

    # ------------------------------------------------------------------
    # Episodes
    # ------------------------------------------------------------------
    def filter_data(self) -> List[dict]:
        """Keep training images with an eligible episode class, or expand
        test images into one entry per (image, episode class)."""
        labels = set(self.episode_labels())
        classes = self.metainfo['classes']
        no_query = sorted(classes[label] for label in labels
                          if not self.query_bank.get(label))
        if no_query:
            print_log(
                f'{self.ann_file}: classes {no_query} have no usable query '
                f'(non-crowd box with sides >= query_min_size='
                f'{self.query_min_size}'
                + (', listed in query_ann_ids_file' if
                   self.query_ann_ids_file else '')
                + '); they form no episodes.', logger='current',
                level=30)
        out = []
        image_freq: Dict[int, int] = defaultdict(int)
        negatives = (self._negative_entries(labels) if self.test_mode
                     and self.num_negatives else {})
        for info in self.data_list:
            present = sorted({
                inst['bbox_label'] for inst in info['instances']
                if not inst['ignore_flag'] and inst['bbox_label'] in labels
                and self._available(inst['bbox_label'], info['img_id']) > 0})
            if not present and not negatives.get(info['img_id']):
                continue
            if self.test_mode:
                for label in present:
                    out.append(self._episode_entry(info, label))
                out += negatives.get(info['img_id'], [])
            elif present:
                info['episode_labels'] = present
                out.append(info)
                for label in present:
                    image_freq[label] += 1
        if not out:
            raise ValueError(
                f'{self.ann_file!r} gives no one-shot episode: no image holds '
                f'a non-crowd box of the {self.episode_classes} classes of '
                f'split {self.split!r} with a query candidate in another '
                'image. Check the split, episode_classes and query_min_size.')
        self._class_weight = {
            label: 1.0 / freq for label, freq in image_freq.items()}
        return out

    def _negative_entries(self, labels: set) -> Dict[int, List[dict]]:
        """Negative test episodes by image id: per episode class with a
        query candidate, up to ``num_negatives`` images without any box of
        the class, drawn with ``random.Random(label)``. An image keeps its
        negatives after its positive episodes, so each target still forms
        one group for :class:`ImageGroupedSampler`."""
        by_img: Dict[int, List[dict]] = defaultdict(list)
        for label in sorted(labels):
            if not self.query_bank.get(label):
                continue
            candidates = [
                info for info in self.data_list
                if all(inst['bbox_label'] != label
                       for inst in info['instances'])]
            rng = random.Random(label)
            for info in rng.sample(candidates,
                                   min(self.num_negatives, len(candidates))):
                by_img[info['img_id']].append(
                    dict(self._episode_entry(info, label), negative=True))
        for entries in by_img.values():
            entries.sort(key=lambda e: e['episode_label'])
        return by_img

    def _episode_entry(self, info: dict, label: int) -> dict:
        """An image dict restricted to the episode class ``label``; in test
        mode it also lists the boxes of the other classes."""
        entry = dict(
            img_id=info['img_id'], img_path=info['img_path'],
            width=info['width'], height=info['height'],
            episode_label=label, negative=False,
            instances=[dict(inst, bbox_label=0) for inst in info['instances']
                       if inst['bbox_label'] == label])
        if self.test_mode:
            others = [inst for inst in info['instances']
                      if inst['bbox_label'] != label
                      and not inst['ignore_flag']]
            entry['other_gt_bboxes'] = [list(i['bbox']) for i in others]
            entry['other_gt_labels'] = [i['bbox_label'] for i in others]
        return entry

    def set_run(self, run: int) -> None:
        """Use query draw ``run`` (test mode) from now on.

        This changes the dataset **in place**: every holder of this object
        reads the new run at its next ``get_data_info``, and a dataloader
        whose workers already hold a copy of the dataset (persistent
        workers) keeps the old one. :class:`OneShotTestLoop` therefore sets
        the run on a shallow copy and builds a fresh dataloader per run;
        do the same rather than switching a dataset in use.
        """
        if run < 0:
            raise ValueError(f'run must be >= 0, got {run}')
        self.run = run

    def _image_entry(self, idx: Index) -> dict:
        """The stored entry of item ``idx`` (an image in training, an
        (image, class) episode without queries in testing): no draw."""
        if isinstance(idx, tuple):
            idx = idx[0]
        return super().get_data_info(idx)

    def get_img_id(self, idx: Index) -> int:
        """Target image id of item ``idx``; never draws an episode (used by
        the test samplers)."""
        return self._image_entry(idx)['img_id']

    def get_img_size(self, idx: Index) -> Tuple[int, int]:
        """``(width, height)`` of item ``idx``'s target image (from the
        json); never draws an episode (used by
        :class:`EpisodeAspectRatioBatchSampler`)."""
        entry = self._image_entry(idx)
        return entry['width'], entry['height']

    def get_data_info(self, idx: Index) -> dict:
        """The complete episode ``idx`` (keys: ``docs/data_flow.md``).

        What it costs: in training every call **draws** an episode (the
        class and K queries from ``random.Random(draw_seed)``, plus a copy
        of the image's annotations), in testing it rebuilds the queries of
        run ``self.run``. To read only the image use :meth:`get_img_id` or
        :meth:`get_img_size`, which never draw.

        Args:
            idx (int | tuple): Training: ``(index, draw_seed)`` as yielded
                by :class:`EpisodeSampler`, or a plain index (draw seed
                ``f'{self.seed}:{index}'``, the same every epoch). Testing:
                the episode's index.
        """
        draw_seed = None
        if isinstance(idx, tuple):
            idx, draw_seed = idx
        info = super().get_data_info(idx)
        if self.test_mode:
            return self._test_episode(info, idx)
        if draw_seed is None:
            draw_seed = f'{self.seed}:{idx}'
        return self._train_episode(info, idx, random.Random(str(draw_seed)))

    def _test_episode(self, info: dict, idx: int) -> dict:
        label = info['episode_label']
        img_id = info['img_id']
        n = self._available(label, img_id)
        k = self.num_shots
        positions = [(self.run * k + s) % n for s in range(k)]
        order = draw_without_replacement(
            random.Random(img_id), self.query_bank[label], img_id, n,
            max(positions) + 1)
        queries = [order[p] for p in positions]
        return self._finish(info, label, queries, self.run, idx)

    def _train_episode(self, info: dict, idx: int,
                       rng: random.Random) -> dict:
        if self.negative_prob and rng.random() < self.negative_prob:
            episode = self._negative_train_episode(info, idx, rng)
            if episode is not None:
                return episode
        labels = info['episode_labels']
        if self.class_sampling == 'inverse_freq' and len(labels) > 1:
            label = rng.choices(
                labels, weights=[self._class_weight[lb] for lb in labels])[0]
        else:
            label = labels[rng.randrange(len(labels))]
        img_id = info['img_id']
        n = self._available(label, img_id)
        k = self.num_shots
        queries = draw_without_replacement(rng, self.query_bank[label],
                                           img_id, n, min(k, n))
        while len(queries) < k:  # fewer candidates than shots: repeat
            queries.append(queries[rng.randrange(len(queries))])
        episode = self._episode_entry(info, label)
        return self._finish(episode, label, queries, -1, idx)

    def _negative_train_episode(self, info: dict, idx: int,
                                rng: random.Random) -> Optional[dict]:
        """A training episode whose target holds no box (crowd or not) of
        the query's class: no ground truth, the detector must return
        nothing. The class is uniform over the episode classes with query
        candidates that are absent from the image (over the absent
        look-alikes of its classes, if ``look_alikes`` gives any); None if
        there is none."""
        present = {inst['bbox_label'] for inst in info['instances']}
        if self._train_labels is None:
            self._train_labels = [lb for lb in self.episode_labels()
                                  if self.query_bank.get(lb)]
        absent = [lb for lb in self._train_labels if lb not in present]
        if not absent:
            return None
        if self._look_alike_labels:
            train = set(self._train_labels)
            hard = sorted({lb for p in present
                           for lb in self._look_alike_labels.get(p, ())
                           if lb in train and lb not in present})
            if hard:
                absent = hard
        label = absent[rng.randrange(len(absent))]
        bank = self.query_bank[label]
        queries = [bank[rng.randrange(len(bank))]
                   for _ in range(self.num_shots)]
        episode = dict(self._episode_entry(info, label), negative=True)
        return self._finish(episode, label, queries, -1, idx)

    def _finish(self, episode: dict, label: int,
                queries: List[QueryEntry], run: int, idx: int) -> dict:
        episode = dict(episode)
        episode.update(
            episode_label=label,
            episode_cat_id=self.label2cat[label],
            run=run,
            episode_id=idx,
            query_infos=[
                dict(ann_id=ann_id, img_id=q_img_id, img_path=path,
                     bbox=list(box), width=size[0], height=size[1])
                for ann_id, q_img_id, path, box, size in queries])
        episode.pop('episode_labels', None)
        return episode

    # ------------------------------------------------------------------
    # Items
    # ------------------------------------------------------------------
    def prepare_data(self, idx: Index) -> Optional[dict]:
        episode = self.get_data_info(idx)
        try:
            return self.pipeline(episode)
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f'Episode {episode["episode_id"]} (target image id '
                f'{episode["img_id"]}, query annotation ids '
                f'{[q["ann_id"] for q in episode["query_infos"]]}) of '
                f'{self.ann_file!r}: an image file is missing: {e}. Check '
                'data_root / data_prefix.img.') from e
        except ImageSizeMismatchError as e:
            raise ImageSizeMismatchError(
                f'{self.ann_file!r}, episode {episode["episode_id"]}: '
                f'{e}') from e

    def __getitem__(self, idx: Index) -> dict:
        """An episode after the pipeline.

        In training a pipeline that returns ``None`` (e.g. every box cropped
        away) is retried with further draws of the same local RNG, so the
        result stays a deterministic function of the index and draw seed;
        each attempt runs its pipeline under the global generators seeded
        from its draw seed.
        """
        if not self._fully_initialized:
            self.full_init()
        if self.test_mode:
            data = self.prepare_data(idx)
            if data is None:
                raise RuntimeError(
                    f'The test pipeline returned None for episode {idx}.')
            return data
        index, draw_seed = idx if isinstance(idx, tuple) else (
            idx, f'{self.seed}:{idx}')
        rng = random.Random(f'retry:{draw_seed}')
        for attempt in range(self.max_refetch + 1):
            seed = f'{draw_seed}:{attempt}' if attempt else str(draw_seed)
            with seeded_global_rng(f'pipeline:{seed}'):
                data = self.prepare_data((index, seed))
            if data is not None:
                return data
            index = rng.randrange(len(self))
        raise RuntimeError(
            f'{self.max_refetch + 1} episodes in a row were rejected by the '
            f'pipeline (last image index {index}); check the pipeline '
            'config.')
