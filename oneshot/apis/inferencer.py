"""Run a trained one-shot detector on your own images and queries.

:class:`OneShotInferencer` is the one-shot counterpart of mmdet's
``DetInferencer``: built from a config and a checkpoint, it takes target
images (paths, arrays or a folder) and queries (an image, an image plus the
box to crop, or several of either for K-shot) and returns the detections of
every (target, query) pair in target pixel coordinates.

Work is cached (docs/data_flow.md, "Performance"): each query set is
encoded once, each target once, and only the matcher and the heads run per
pair. A folder of 1,000 targets with 3 queries costs 1,000 target backbone
passes and 3 query passes, not 3,000 of each.
"""
import copy
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmcv.transforms import Compose
from mmdet.registry import MODELS, TRANSFORMS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

from ..utils.checkpoint import load_model_weights

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
# Pipeline steps that belong to datasets with annotations or to the query;
# the target pipeline keeps everything else (loading, resizing, ...).
_QUERY_STEPS = ('LoadQueryPatches', 'ResizeQueryPatches')
_DROPPED_STEPS = ('LoadAnnotations', 'PackOneShotInputs', 'PackDetInputs')
_TARGET_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                     'scale_factor', 'flip', 'flip_direction')

ImageLike = Union[str, np.ndarray]


@dataclass
class Query:
    """One query shot: an image (path or ``(H, W, 3)`` BGR array) and an
    optional box ``[x1, y1, x2, y2]`` to crop; no box = the whole image."""
    img: ImageLike
    bbox: Optional[Sequence[float]] = None
    name: Optional[str] = None


@dataclass
class QuerySet:
    """The K shots of one query class, fused by the model (K-shot)."""
    shots: List[Query]
    name: str = ''
    patches: List[np.ndarray] = field(default_factory=list, repr=False)


@dataclass
class EncodedQueries:
    """Query sets with their features (from
    :meth:`OneShotInferencer.encode`), reusable across calls: pass it as
    ``queries`` to run more targets without re-encoding the queries."""
    sets: List[QuerySet]
    feats: List[Tuple[torch.Tensor, ...]] = field(repr=False)


def _describe(img: ImageLike, index: int, what: str) -> str:
    if isinstance(img, str):
        return f'{what} {img!r}'
    return f'{what} #{index} (array)'


def _read_image(img: ImageLike, what: str) -> np.ndarray:
    """Read a path or validate an array: ``(H, W, 3)`` uint8 BGR out."""
    if isinstance(img, str):
        if not osp.isfile(img):
            raise FileNotFoundError(f'{what}: no such file {img!r}.')
        try:
            # 'color': grayscale is replicated to 3 channels, alpha dropped.
            arr = mmcv.imread(img, flag='color')
        except Exception as e:  # cv2 / PIL decoding errors vary
            raise ValueError(f'{what}: cannot decode {img!r} as an image '
                             f'({e}).') from e
        if arr is None:
            raise ValueError(f'{what}: cannot decode {img!r} as an image.')
        return arr
    if isinstance(img, np.ndarray):
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] not in (3, 4) or min(
                img.shape[:2]) < 1:
            raise ValueError(
                f'{what}: expected an (H, W, 3) BGR array, got shape '
                f'{img.shape}.')
        if img.shape[2] == 4:
            img = img[..., :3]
        if img.dtype != np.uint8:
            raise ValueError(f'{what}: expected a uint8 array, got '
                             f'{img.dtype}.')
        return np.ascontiguousarray(img)
    raise TypeError(f'{what}: expected a file path or a numpy array, got '
                    f'{type(img).__name__}.')


def list_images(folder: str) -> List[str]:
    """Image files directly inside ``folder``, sorted by name."""
    names = sorted(n for n in os.listdir(folder)
                   if n.lower().endswith(IMG_EXTENSIONS))
    if not names:
        raise ValueError(f'Folder {folder!r} holds no images with one of '
                         f'the extensions {IMG_EXTENSIONS}.')
    return [osp.join(folder, n) for n in names]


class OneShotInferencer:
    """Detect the class of each query in each target image.

    Args:
        model (str | Config): Config file or :class:`Config` of a one-shot
            detector (any of ``configs/``).
        weights (str, optional): Checkpoint. Read weights-only (published
            files and a run's own mmengine checkpoints load; others raise
            ``UntrustedCheckpointError``); its parameters must match the
            config exactly (names and shapes), otherwise a
            ``CheckpointMismatchError`` (a ``ValueError``) lists the
            differences. ``None`` keeps the initial weights (for speed
            tests only).
        device (str, optional): ``'cpu'``, ``'cuda'``, ``'cuda:1'``...
            Defaults to CUDA when available, else CPU.
        batch_size (int): Queries matched against one target per forward
            of the heads. Defaults to 8.
        cfg_options (dict, optional): Overrides merged into the config.
        trust_checkpoint (bool): Allow ``weights`` to be unpickled fully
            when it is not weights-only. Unpickling can run code: only for
            files you wrote yourself. Defaults to False.

    The target and query preprocessing is the config's test pipeline: the
    target goes through its steps before ``LoadQueryPatches`` (minus
    ``LoadAnnotations``), the queries are cropped with
    ``LoadQueryPatches``'s context and resized with ``ResizeQueryPatches``,
    so results equal the detector's ``predict`` on the dataset's episodes.

    Example:
        >>> inferencer = OneShotInferencer('configs/quickstart/'
        ...     'siamese-faster-rcnn_r18-tiny_synthetic.py', 'model.pth')
        >>> results = inferencer('photos/', [Query('dog.jpg', [10, 20,
        ...     200, 180])], score_thr=0.3)
        >>> results[0]['detections'][0]['bboxes']  # (N, 4) xyxy
    """

    def __init__(self,
                 model: Union[str, Config],
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 batch_size: int = 8,
                 cfg_options: Optional[dict] = None,
                 trust_checkpoint: bool = False) -> None:
        import oneshot  # noqa: F401  (registers the modules)
        cfg = Config.fromfile(model) if isinstance(model, str) else \
            copy.deepcopy(model)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        self.cfg = cfg
        self.config_name = model if isinstance(model, str) else \
            cfg.filename or '<Config>'
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
        self.batch_size = batch_size
        if device is None:
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.device = torch.device(device)

        self.model = MODELS.build(cfg.model)
        for attr in ('extract_feat', 'extract_query_feat',
                     'predict_with_feats'):
            if not hasattr(self.model, attr):
                raise TypeError(
                    f'{self.config_name}: model type {cfg.model.get("type")}'
                    f' has no {attr}(); OneShotInferencer needs a Siamese '
                    'one-shot detector (SiameseTwoStageDetector, ...).')
        if weights is not None:
            self._load_weights(weights, trust_checkpoint)
        self.model.to(self.device).eval()
        self._build_pipelines()
        # Counters of backbone work, for tests and benchmarks.
        self.num_target_passes = 0
        self.num_query_passes = 0

    # ------------------------------------------------------------------
    # setup
    # ------------------------------------------------------------------
    def _load_weights(self, weights: str, trust: bool) -> None:
        """Load a checkpoint safely whose parameters match the config
        exactly (the project's one loader, oneshot/utils/checkpoint.py)."""
        ckpt = load_model_weights(self.model, weights,
                                  config=self.config_name,
                                  map_location='cpu', trust=trust)
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        self.dataset_meta = meta.get('dataset_meta') \
            if isinstance(meta, dict) else None

    def _build_pipelines(self) -> None:
        """Split the config's test pipeline into target and query parts."""
        try:
            steps = self.cfg.test_dataloader.dataset.pipeline
        except AttributeError as e:
            raise KeyError(
                f'{self.config_name}: no test_dataloader.dataset.pipeline; '
                'the inferencer reuses the test pipeline to preprocess '
                'targets and queries.') from e
        target_steps, query_cfg, resize_cfg = [], None, None
        for step in steps:
            kind = step['type']
            if kind == 'LoadQueryPatches':
                query_cfg = step
            elif kind == 'ResizeQueryPatches':
                resize_cfg = step
            elif kind not in _DROPPED_STEPS:
                target_steps.append(copy.deepcopy(step))
        if resize_cfg is None:
            raise KeyError(
                f'{self.config_name}: the test pipeline has no '
                'ResizeQueryPatches step; the inferencer needs the query '
                'size from it.')
        if not target_steps or 'LoadImage' not in target_steps[0]['type']:
            raise KeyError(
                f'{self.config_name}: the test pipeline must start with an '
                'image loading step (LoadImageFromFile).')
        # Arrays and files go through the same steps: images are read here
        # (grayscale/RGBA handled, clear errors) and fed as arrays.
        target_steps[0] = dict(type='mmdet.LoadImageFromNDArray')
        target_steps.append(
            dict(type='PackDetInputs', meta_keys=_TARGET_META_KEYS))
        self.target_pipeline = Compose(target_steps)
        query_cfg = dict(query_cfg or dict(type='LoadQueryPatches'))
        query_cfg.pop('type')
        self.query_loader = TRANSFORMS.get('LoadQueryPatches')(**query_cfg)
        resize_cfg = dict(resize_cfg)
        resize_cfg.pop('type')
        resize_cfg['flip_prob'] = 0.0
        self.query_resizer = TRANSFORMS.get('ResizeQueryPatches')(
            **resize_cfg)

    # ------------------------------------------------------------------
    # inputs
    # ------------------------------------------------------------------
    def make_query_sets(self, queries) -> List[QuerySet]:
        """Normalise the ``queries`` argument of :meth:`__call__`.

        Accepted: a path or array (one 1-shot query); a :class:`Query`; a
        dict ``{'img': ..., 'bbox': [...]}``; a :class:`QuerySet`; or a
        list of any of these, each item one query. An item that is itself a
        list/tuple of shots is one K-shot query.
        """
        if isinstance(queries, (str, np.ndarray, Query, QuerySet, dict)):
            queries = [queries]
        sets = []
        for i, item in enumerate(queries):
            if isinstance(item, QuerySet):
                qs = QuerySet(list(item.shots), item.name)
            elif isinstance(item, (list, tuple)):
                if not item:
                    raise ValueError(f'Query #{i} is an empty list of shots.')
                qs = QuerySet([self._as_query(s, f'{i}.{k}')
                               for k, s in enumerate(item)])
            else:
                qs = QuerySet([self._as_query(item, str(i))])
            if not qs.name:
                first = qs.shots[0]
                qs.name = first.name or (
                    osp.splitext(osp.basename(first.img))[0]
                    if isinstance(first.img, str) else f'query{i}')
            qs.patches = [self._crop_query(q, f'{i}.{k}')
                          for k, q in enumerate(qs.shots)]
            sets.append(qs)
        if not sets:
            raise ValueError('No queries given.')
        names = [qs.name for qs in sets]
        for i, qs in enumerate(sets):  # names label outputs: keep unique
            if names.count(qs.name) > 1:
                qs.name = f'{qs.name}_{i}'
        return sets

    @staticmethod
    def _as_query(item, index: str) -> Query:
        if isinstance(item, Query):
            return item
        if isinstance(item, dict):
            if 'img' not in item:
                raise ValueError(f'Query #{index}: a dict query needs an '
                                 "'img' key (path or array).")
            return Query(item['img'], item.get('bbox'), item.get('name'))
        return Query(item)

    def _crop_query(self, query: Query, index: str) -> np.ndarray:
        """Crop (with the config's context) and resize one query shot."""
        what = _describe(query.img, index, 'Query')
        img = _read_image(query.img, what)
        h, w = img.shape[:2]
        bbox = [0, 0, w, h] if query.bbox is None else [
            float(v) for v in query.bbox]
        if len(bbox) != 4:
            raise ValueError(f'{what}: box {query.bbox} must be '
                             '[x1, y1, x2, y2].')
        x1, y1, x2, y2 = bbox
        if not (x2 - x1 >= 1 and y2 - y1 >= 1):
            raise ValueError(
                f'{what}: box {bbox} has zero or negative size; give '
                'x1 < x2 and y1 < y2 (pixels, at least 1 px apart).')
        if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
            raise ValueError(
                f'{what}: box {bbox} is outside the {w}x{h} image; '
                'coordinates must lie in [0, width] x [0, height].')
        cx1, cy1, cx2, cy2 = self.query_loader.crop_box(
            bbox, w, h, dict(ann_id=None, img_id=index, img_path=what))
        patch = np.ascontiguousarray(img[cy1:cy2, cx1:cx2])
        return self.query_resizer.resize_one(patch)

    def _prepare_target(self, img: np.ndarray, path: Optional[str],
                        index: int) -> dict:
        packed = self.target_pipeline(dict(img=img, img_id=index))
        # LoadImageFromNDArray leaves img_path empty; keep the file's.
        packed['data_samples'].set_metainfo(dict(img_path=path))
        return packed

    # ------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------
    def encode(self, queries) -> EncodedQueries:
        """Read, crop and encode queries once (see :meth:`make_query_sets`
        for the accepted forms)."""
        sets = self.make_query_sets(queries)
        return EncodedQueries(sets, self.encode_queries(sets))

    @torch.no_grad()
    def encode_queries(self, query_sets: Sequence[QuerySet]
                       ) -> List[Tuple[torch.Tensor, ...]]:
        """One backbone pass per query set (its K shots together).

        Returns:
            list[tuple[Tensor]]: Per query, per level ``(1, C, h, w)``
            features fused over K.
        """
        feats = []
        for qs in query_sets:
            patches = torch.from_numpy(np.stack(qs.patches)).permute(
                0, 3, 1, 2).contiguous()
            query = self.model.data_preprocessor.preprocess_queries([patches])
            feats.append(tuple(self.model.extract_query_feat(query)))
            self.num_query_passes += 1
        return feats

    @torch.no_grad()
    def encode_target(self, packed: dict) -> Tuple[tuple, DetDataSample]:
        """One backbone pass for one target image."""
        data = self.model.data_preprocessor.preprocess_targets(
            pseudo_collate([packed]))
        feats = tuple(self.model.extract_feat(data['inputs']))
        self.num_target_passes += 1
        return feats, data['data_samples'][0]

    @torch.no_grad()
    def predict_target(self, target_feats: tuple, sample: DetDataSample,
                       query_feats: Sequence[tuple],
                       labels: Optional[Sequence[int]] = None
                       ) -> List[DetDataSample]:
        """All queries against one encoded target, ``batch_size`` at a
        time. Returns one data sample with ``pred_instances`` per query."""
        out = []
        for start in range(0, len(query_feats), self.batch_size):
            chunk = query_feats[start:start + self.batch_size]
            n = len(chunk)
            t_feats = tuple(f.expand(n, *f.shape[1:]) for f in target_feats)
            q_feats = tuple(
                torch.cat([q[level] for q in chunk], dim=0)
                for level in range(len(chunk[0])))
            samples = []
            for j in range(n):
                s = sample.clone()
                label = labels[start + j] if labels is not None else 0
                s.set_metainfo(dict(episode_label=label))
                samples.append(s)
            out.extend(self.model.predict_with_feats(t_feats, q_feats,
                                                     samples))
        return out

    def __call__(self,
                 targets: Union[ImageLike, Iterable[ImageLike]],
                 queries,
                 score_thr: float = 0.0,
                 topk: Optional[int] = None,
                 progress: bool = False,
                 return_datasamples: bool = False) -> List[dict]:
        """Detect every query's class in every target.

        Args:
            targets: A path, an ``(H, W, 3)`` BGR array, a folder (its
                images, sorted), or a list of paths/arrays.
            queries: See :meth:`make_query_sets`: one query, or a list of
                queries; a query given as a list of shots is K-shot. Or an
                :class:`EncodedQueries` from :meth:`encode`, to reuse query
                features across calls.
            score_thr (float): Drop detections scoring below it.
            topk (int, optional): Keep at most this many per pair.
            progress (bool): Show a progress bar over the targets.
            return_datasamples (bool): Also return the raw
                ``DetDataSample`` per pair under ``'datasamples'``.

        Returns:
            list[dict]: One per target: ``target`` (path or ``'#i'``),
            ``height``/``width``, and ``detections``, a list with one dict
            per query: ``query`` (name), ``bboxes`` ``(N, 4)`` float32
            xyxy in target pixels, ``scores`` ``(N,)``, sorted by score.
        """
        if topk is not None and topk < 1:
            raise ValueError(f'topk must be >= 1, got {topk}.')
        target_list = self._target_list(targets)
        encoded = queries if isinstance(queries, EncodedQueries) else \
            self.encode(queries)
        query_sets, query_feats = encoded.sets, encoded.feats
        bar = ProgressBar(len(target_list)) if progress else None
        results = []
        for index, target in enumerate(target_list):
            path = target if isinstance(target, str) else None
            what = _describe(target, index, 'Target')
            img = _read_image(target, what)
            feats, sample = self.encode_target(
                self._prepare_target(img, path, index))
            preds = self.predict_target(feats, sample, query_feats)
            entry = dict(target=path or f'#{index}', height=img.shape[0],
                         width=img.shape[1], detections=[])
            for qs, pred in zip(query_sets, preds):
                inst = pred.pred_instances
                scores = inst.scores.cpu().numpy()
                bboxes = inst.bboxes.cpu().numpy().astype(np.float32)
                order = np.argsort(-scores, kind='stable')
                order = order[scores[order] >= score_thr]
                if topk is not None:
                    order = order[:topk]
                entry['detections'].append(
                    dict(query=qs.name, bboxes=bboxes[order],
                         scores=scores[order]))
            if return_datasamples:
                entry['datasamples'] = preds
            results.append(entry)
            if bar is not None:
                bar.update()
        return results

    @staticmethod
    def _target_list(targets) -> List[ImageLike]:
        if isinstance(targets, str):
            if osp.isdir(targets):
                return list_images(targets)
            return [targets]
        if isinstance(targets, np.ndarray):
            return [targets]
        targets = list(targets)
        if not targets:
            raise ValueError('No target images given.')
        return targets
