"""Run a trained one-shot detector on your own images and queries.

:class:`OneShotInferencer` is the one-shot counterpart of mmdet's
``DetInferencer``: built from a config and a checkpoint, it takes target
images (paths, arrays or a folder) and queries (an image, an image plus the
box to crop, or several of either for K-shot) and returns the detections of
every (target, query) pair in target pixel coordinates.

It is a thin layer over four small modules, each usable on its own:
:mod:`~oneshot.apis.images` (reading images, listing a folder),
:mod:`~oneshot.apis.queries` (``Query``, ``QuerySet``, naming and cropping
the shots), :mod:`~oneshot.apis.pipeline` (the config's test pipeline split
into target and query preprocessing) and :mod:`~oneshot.apis.batching`
(one target against several query sets per forward, the per-pair results).

Work is cached (docs/data_flow.md, "Performance"): each query set is
encoded once, each target once, and only the matcher and the heads run per
pair. A folder of 1,000 targets with 3 queries costs 1,000 target backbone
passes and 3 query passes, not 3,000 of each.
"""
import copy
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

from ..utils.checkpoint import load_model_weights
from .batching import pair_batches, pair_detections, pair_samples, \
    stack_patches
from .images import ImageLike, describe, read_image, resolve_targets
from .pipeline import build_inference_pipeline
from .queries import EncodedQueries, Query, QuerySet, make_query_sets
from .verification import clip_box, pooled_embedding

# What the model must offer for the cached path.
_MODEL_API = ('extract_feat', 'extract_query_feat', 'predict_with_feats')


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

    Attributes:
        model: The detector, in eval mode on ``device``.
        pipeline (InferencePipeline): Target and query preprocessing, the
            config's test pipeline split by
            :func:`~oneshot.apis.pipeline.build_inference_pipeline`: the
            target goes through its steps before ``LoadQueryPatches``
            (minus ``LoadAnnotations``), the queries are cropped with
            ``LoadQueryPatches``'s context and resized with
            ``ResizeQueryPatches``, so results equal the detector's
            ``predict`` on the dataset's episodes.
        dataset_meta (dict | None): The checkpoint's
            ``meta['dataset_meta']`` (class names of the training data),
            None without one.
        num_target_passes, num_query_passes (int): Backbone passes so far.

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
        for attr in _MODEL_API:
            if not hasattr(self.model, attr):
                raise TypeError(
                    f'{self.config_name}: model type {cfg.model.get("type")}'
                    f' has no {attr}(); OneShotInferencer needs a Siamese '
                    'one-shot detector (SiameseTwoStageDetector, ...).')
        self.dataset_meta: Optional[dict] = None
        if weights is not None:
            # The project's one safe, strict loader (utils/checkpoint.py).
            ckpt = load_model_weights(self.model, weights,
                                      config=self.config_name,
                                      map_location='cpu',
                                      trust=trust_checkpoint)
            meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
            if isinstance(meta, dict):
                self.dataset_meta = meta.get('dataset_meta')
        self.model.to(self.device).eval()
        self.pipeline = build_inference_pipeline(cfg, self.config_name)
        self.num_target_passes = 0
        self.num_query_passes = 0
        self.num_verified_boxes = 0

    def make_query_sets(self, queries) -> List[QuerySet]:
        """Read, name and crop the ``queries`` of :meth:`__call__`; see
        :func:`oneshot.apis.queries.make_query_sets` for the accepted
        forms."""
        return make_query_sets(queries, self.pipeline.crop_query)

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
            query = self.model.data_preprocessor.preprocess_queries(
                [stack_patches(qs.patches)])
            feats.append(tuple(self.model.extract_query_feat(query)))
            self.num_query_passes += 1
        return feats

    @torch.no_grad()
    def encode_target(self, packed: dict) -> Tuple[tuple, DetDataSample]:
        """One backbone pass for one target image (``packed`` from
        ``self.pipeline.prepare_target``)."""
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
        time. Returns one data sample with ``pred_instances`` per query
        (its ``episode_label`` is ``labels[i]``, default 0)."""
        if labels is None:
            labels = [0] * len(query_feats)
        out = []
        for start, t_feats, q_feats in pair_batches(
                target_feats, query_feats, self.batch_size):
            samples = pair_samples(
                sample, labels[start:start + q_feats[0].shape[0]])
            out.extend(self.model.predict_with_feats(t_feats, q_feats,
                                                     samples))
        return out

    @torch.no_grad()
    def box_embeddings(self, img, bboxes: np.ndarray,
                       chunk: int = 64) -> torch.Tensor:
        """Each box of ``img`` (BGR array) cropped and encoded like a query,
        ``chunk`` boxes per pass:
        :func:`~oneshot.apis.verification.pooled_embedding` rows ``(N, D)``."""
        h, w = img.shape[:2]
        patches = [
            self.pipeline.crop_query(Query(img, clip_box(b, w, h)),
                                     f'box {i}')
            for i, b in enumerate(bboxes)]
        embs = []
        for start in range(0, len(patches), chunk):
            query = self.model.data_preprocessor.preprocess_queries(
                [stack_patches([p]) for p in patches[start:start + chunk]])
            embs.append(pooled_embedding(self.model.extract_query_feat(query)))
        self.num_verified_boxes += len(patches)
        return torch.cat(embs) if embs else torch.zeros(0, 0)

    def box_similarities(self, img, bboxes: np.ndarray,
                         query_embedding: torch.Tensor) -> np.ndarray:
        """Cosine similarity between each box of ``img``, encoded like a
        query, and ``query_embedding`` (:func:`pooled_embedding` of a query
        set's features). Returns ``(N,)`` float32."""
        if len(bboxes) == 0:
            return np.zeros(0, np.float32)
        emb = self.box_embeddings(img, bboxes)
        sim = emb @ query_embedding.to(emb.device).reshape(-1)
        return sim.cpu().numpy().astype(np.float32)

    def __call__(self,
                 targets: Union[ImageLike, Iterable[ImageLike]],
                 queries,
                 score_thr: float = 0.0,
                 topk: Optional[int] = None,
                 progress: bool = False,
                 return_datasamples: bool = False,
                 verify_thr: Optional[float] = None) -> List[dict]:
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
            verify_thr (float, optional): Query verification (see
                :mod:`oneshot.apis.verification`): each detection kept by
                ``score_thr`` / ``topk`` is cropped, encoded like a query
                and dropped if its cosine similarity to the query is below
                this; the kept ones get ``similarity``. ``None`` (default):
                no verification, the detector's output as it is.

        Returns:
            list[dict]: One per target: ``target`` (path or ``'#i'``),
            ``height``/``width``, and ``detections``, a list with one dict
            per query: ``query`` (name), ``bboxes`` ``(N, 4)`` float32
            xyxy in target pixels, ``scores`` ``(N,)``, sorted by score
            (with ``verify_thr``: also ``similarity`` ``(N,)``).
        """
        if topk is not None and topk < 1:
            raise ValueError(f'topk must be >= 1, got {topk}.')
        target_list = resolve_targets(targets)
        encoded = queries if isinstance(queries, EncodedQueries) else \
            self.encode(queries)
        embeddings = None
        if verify_thr is not None:
            embeddings = [pooled_embedding(f) for f in encoded.feats]
        bar = ProgressBar(len(target_list)) if progress else None
        results = []
        for index, target in enumerate(target_list):
            path = target if isinstance(target, str) else None
            img = read_image(target, describe(target, index, 'Target'))
            feats, sample = self.encode_target(
                self.pipeline.prepare_target(img, path, index))
            preds = self.predict_target(feats, sample, encoded.feats)
            detections = [pair_detections(pred, qs.name, score_thr, topk)
                          for qs, pred in zip(encoded.sets, preds)]
            if embeddings is not None:
                # All queries' boxes of this target in one encoder run.
                counts = [len(det['bboxes']) for det in detections]
                boxes = np.concatenate(
                    [det['bboxes'].reshape(-1, 4) for det in detections])
                box_emb = self.box_embeddings(img, boxes) if len(boxes) \
                    else None
                start = 0
                for det, emb, n in zip(detections, embeddings, counts):
                    sim = np.zeros(0, np.float32) if n == 0 else (
                        box_emb[start:start + n]
                        @ emb.to(box_emb.device).reshape(-1)
                    ).cpu().numpy().astype(np.float32)
                    start += n
                    keep = sim >= verify_thr
                    det.update(bboxes=det['bboxes'][keep],
                               scores=det['scores'][keep],
                               similarity=sim[keep])
            entry = dict(
                target=path or f'#{index}', height=img.shape[0],
                width=img.shape[1], detections=detections)
            if return_datasamples:
                entry['datasamples'] = preds
            results.append(entry)
            if bar is not None:
                bar.update()
        return results
