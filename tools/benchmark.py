"""Time `predict` of one-shot detectors (and plain mmdet detectors) on one
target image of a fixed size, with random weights (speed does not depend on
the weights: the RPN keeps a fixed number of proposals).

    python tools/benchmark.py configs/cat_r50.py configs/siamese-faster-rcnn_r50.py \
        mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py \
        --size 1000 600 --queries 1 --repeat 5

    # each method next to its base detector, and K = 1, 4, 16 queries
    python tools/benchmark.py configs/coae_r50.py configs/bhrl_r50.py \
        --base --queries 1 4 16 --size 1000 600 --threads 1 --repeat 3

    # training throughput (episodes/s) next to the plain detector
    python tools/benchmark.py configs/quickstart/*_synthetic.py --base \
        --train --size 160 160 --repeat 5

Every configuration (config x number of queries, and its base detector) is
built first; then each repeat runs every configuration once, in turn, so
that a slow phase of a shared machine hits all of them alike. Figures are
medians over the repeats; a ratio (method / base, K queries / K single
queries) is the median of the per-repeat ratios, each formed from runs of
the same repeat.

- `--queries K1 K2 ...`: for a one-shot config, one target image with K
  episodes (K different queries) in one batch, which is how the test loop
  feeds the detector; reported per image and per episode, and, when 1 is
  among the Ks, as the ratio of one batched K-query run to K single-query
  runs.
- `--base`: each one-shot config is paired with the plain mmdet detector
  that it extends (:data:`BASE_DETECTORS`): the mmdet config's detector and
  stock heads with the method's backbone, neck, anchors, RoI sizes and
  train/test settings, so that only the one-shot parts (query pass,
  matcher, query-aware heads) differ. `ratio = method / base` uses the
  one-query runs.
- `--stages`: where the time goes: seconds per image in the backbone
  (target and query passes together), neck, matcher, RPN / dense head
  (`predict`, post-processing included) and RoI head, and what is left
  (pre-processing, K-shot fusion, packing the results).
- `--clock cpu`: this process's CPU seconds instead of wall time. On a
  shared CPU machine with `--threads 1` it counts the model's work and not
  the time other processes held the cores (CUDA runs need `wall`).
- `--train`: seconds per training iteration (`train_step`: forward, loss,
  backward, SGD step) on a batch of the config's `train_dataloader
  .batch_size` episodes (distinct random targets, random ground truth), as
  episodes/s; the base detector gets the same number of images.

Peak memory per configuration: on CPU the peak resident set size during
the call above the one before it (glibc's free memory is returned with
`malloc_trim` first, and the kernel's peak counter is reset); on CUDA
`torch.cuda.max_memory_allocated` above the memory allocated before it.
The model's own weights are listed separately. The benchmark also prints
which RoIAlign / NMS implementation ran (mmcv's compiled CPU or CUDA ops,
or torchvision's), recorded on the first timed round.
"""
import argparse
import copy
import ctypes
import functools
import math
import os.path as osp
import statistics
import sys
import time
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmengine.config import Config, ConfigDict  # noqa: E402
from mmengine.hub import get_config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import oneshot  # noqa: E402,F401


def is_oneshot(cfg: Config) -> bool:
    """A config is one-shot when its data preprocessor handles queries."""
    return cfg.model.data_preprocessor.type == 'OneShotDataPreprocessor'


def query_size(cfg: Config, default: int = 128, train: bool = False) -> int:
    """The query side length of the config's test (or train) pipeline."""
    if train:
        pipeline = cfg.get('train_pipeline', None) or \
            cfg.get('train_dataloader', {}).get('dataset', {}).get(
                'pipeline', [])
    else:
        pipeline = cfg.get('test_pipeline', None) or \
            cfg.test_dataloader.dataset.get('pipeline', [])
    for t in pipeline:
        if t['type'] == 'ResizeQueryPatches':
            return int(t['size'])
    return default


# ----------------------------------------------------------------------
# the base detector of a method
# ----------------------------------------------------------------------
# The plain mmdet detector each kind of one-shot model extends. The model
# built from it takes the mmdet config's detector, heads and class count
# (80, COCO) and the method's sizes (base_model_cfg).
BASE_DETECTORS = {
    # SiameseTwoStageDetector without a neck: ResNet-50-C4 (CoAE, CAT).
    'faster-rcnn-c4':
    'mmdet::faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py',
    # SiameseTwoStageDetector with a neck and an RPN (Siamese FPN, BHRL).
    'faster-rcnn-fpn': 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    # SiameseTwoStageDetector whose proposals come from FCOS (Matching-FCOS
    # + SARM): mmdet's Faster R-CNN with an FCOS RPN.
    'faster-rcnn-fcos-rpn':
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_fcos-rpn_1x_coco.py',
    # SiameseSingleStageDetector with an FCOS head (Matching-FCOS): the
    # "improved" FCOS whose settings Matching-FCOS uses.
    'fcos': 'mmdet::fcos/'
    'fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py',
}


def _is_fcos_head(head_type: str) -> bool:
    from mmdet.models.dense_heads import FCOSHead
    cls = MODELS.get(head_type)
    return cls is not None and issubclass(cls, FCOSHead)


def base_kind(cfg: Config, name: str = 'config') -> str:
    """Which :data:`BASE_DETECTORS` entry a one-shot config extends."""
    model = cfg.model
    if model.type == 'SiameseSingleStageDetector':
        if _is_fcos_head(model.bbox_head.type):
            return 'fcos'
    elif model.type == 'SiameseTwoStageDetector':
        if _is_fcos_head(model.rpn_head.type):
            return 'faster-rcnn-fcos-rpn'
        if model.rpn_head.type == 'RPNHead':
            return 'faster-rcnn-fpn' if model.get('neck') else \
                'faster-rcnn-c4'
    raise ValueError(
        f'{name}: no base detector is known for model.type={model.type!r} '
        f'(rpn_head / bbox_head '
        f'{model.get("rpn_head", model.get("bbox_head", {})).get("type")!r}'
        f'); add an entry to BASE_DETECTORS in tools/benchmark.py.')


@functools.lru_cache(maxsize=None)
def _mmdet_model_cfg(name: str) -> ConfigDict:
    """``model`` of an ``mmdet::`` config (read once; callers copy it)."""
    return get_config(name).model


def _no_init(cfg: ConfigDict) -> ConfigDict:
    cfg = copy.deepcopy(cfg)
    cfg.pop('init_cfg', None)
    return cfg


def _is_oneshot_module(type_name: str) -> bool:
    cls = MODELS.get(type_name)
    return cls is not None and cls.__module__.startswith('oneshot.')


def plain_neck(neck):
    """The method's neck without the parts this project adds (SaFT's
    vertical fusion after the FPN): a list neck keeps its mmdet entries."""
    if not neck:
        return None
    if isinstance(neck, (list, tuple)):
        kept = [copy.deepcopy(n) for n in neck
                if not _is_oneshot_module(n['type'])]
        return kept[0] if len(kept) == 1 else (kept or None)
    return None if _is_oneshot_module(neck['type']) else copy.deepcopy(neck)


def base_model_cfg(cfg: Config, name: str = 'config'
                   ) -> Tuple[str, ConfigDict]:
    """The plain detector a one-shot config extends, at the method's sizes.

    The detector type, the heads' types and losses, the class count (80)
    and the preprocessor type come from the :data:`BASE_DETECTORS` config;
    backbone, neck (its mmdet parts: :func:`plain_neck`), the feature
    width the heads read, anchors / FCOS head
    settings, the RoI extractor (RoIAlign size, strides), the shared head,
    box-head widths and ``train_cfg`` / ``test_cfg`` (proposal and
    detection counts) come from the method, so that only the one-shot
    parts differ: the query pass, the matcher (whose output may be wider,
    e.g. 384 channels in the Siamese FPN models, and the heads after it with
    it) and query-aware heads.

    Returns:
        tuple: ``(mmdet config name, model config)``.
    """
    kind = base_kind(cfg, name)
    base_name = BASE_DETECTORS[kind]
    method = cfg.model
    model = copy.deepcopy(_mmdet_model_cfg(base_name))
    # What the backbone (+ neck) gives, i.e. what the matcher reads.
    width = method.matcher.in_channels
    model.data_preprocessor = ConfigDict(
        type='DetDataPreprocessor',
        **{k: method.data_preprocessor[k]
           for k in ('mean', 'std', 'bgr_to_rgb', 'pad_size_divisor')
           if k in method.data_preprocessor})
    model.backbone = _no_init(method.backbone)
    neck = plain_neck(method.get('neck'))
    if neck:
        model.neck = neck
    else:
        model.pop('neck', None)
    model.train_cfg = copy.deepcopy(method.get('train_cfg', {}))
    model.test_cfg = copy.deepcopy(method.test_cfg)
    if kind == 'fcos':
        model.bbox_head = copy.deepcopy(method.bbox_head)
        model.bbox_head.update(type='FCOSHead', in_channels=width,
                               num_classes=80)
        return base_name, model
    if kind == 'faster-rcnn-fcos-rpn':
        model.rpn_head = copy.deepcopy(method.rpn_head)
        model.rpn_head.update(type='FCOSHead', in_channels=width)
    else:
        rpn = method.rpn_head
        model.rpn_head.update(
            in_channels=width, feat_channels=rpn.feat_channels,
            anchor_generator=copy.deepcopy(rpn.anchor_generator),
            bbox_coder=copy.deepcopy(rpn.bbox_coder))
    roi_head = model.roi_head
    extractor = copy.deepcopy(method.roi_head.bbox_roi_extractor)
    extractor.out_channels = width
    roi_head.bbox_roi_extractor = extractor
    roi_size = extractor.roi_layer.output_size
    method_box = method.roi_head.bbox_head
    if method.roi_head.get('shared_head'):
        # A shared head (layer4 in C4 models) is followed by global average
        # pooling and the two output layers: mmdet's C4 box head.
        shared = _no_init(method.roi_head.shared_head)
        roi_head.shared_head = shared
        stock = roi_head.bbox_head
        # layer4 with stride s turns an r x r RoI into ceil(r / s).
        roi_head.bbox_head = ConfigDict(
            type='BBoxHead', with_avg_pool=True,
            roi_feat_size=math.ceil(roi_size / shared.get('stride', 1)),
            in_channels=method_box.in_channels, num_classes=80,
            bbox_coder=stock.bbox_coder, reg_class_agnostic=False,
            loss_cls=stock.loss_cls, loss_bbox=stock.loss_bbox)
    else:
        roi_head.pop('shared_head', None)
        roi_head.bbox_head.update(in_channels=width, roi_feat_size=roi_size)
        if 'fc_out_channels' in method_box:
            roi_head.bbox_head.fc_out_channels = method_box.fc_out_channels
    return base_name, model


# ----------------------------------------------------------------------
# timing, stages, memory, ops
# ----------------------------------------------------------------------
# The detector's top-level parts that --stages times, and the method that
# the detector calls on each (a part lacking `predict` is timed on forward).
STAGES = ('backbone', 'neck', 'matcher', 'rpn_head', 'roi_head', 'bbox_head')


def device_sync(device: str) -> Callable[[], None]:
    """What waits for queued kernels before a clock is read on ``device``."""
    return torch.cuda.synchronize if device.startswith('cuda') else \
        (lambda: None)


# --clock: wall time, or the CPU time of this process (user + system, all
# its threads), which on a shared machine with one torch thread counts
# only the work of the model and not the time other processes held the
# cores.
CLOCKS = {'wall': time.perf_counter, 'cpu': time.process_time}


def add_stage_timers(model: torch.nn.Module, device: str,
                     totals: Dict[str, float],
                     clock: Callable[[], float] = time.perf_counter
                     ) -> List[str]:
    """Wrap the entry method of each of the model's STAGES so that its
    seconds (by ``clock``) accumulate into ``totals[stage]``; returns the
    stages found."""
    found = []
    sync = device_sync(device)

    def timed(name: str, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            sync()
            t0 = clock()
            out = fn(*args, **kwargs)
            sync()
            totals[name] += clock() - t0
            return out
        return wrapper

    for name in STAGES:
        part = getattr(model, name, None)
        if not isinstance(part, torch.nn.Module):
            continue
        method = 'predict' if hasattr(part, 'predict') else 'forward'
        # An instance attribute shadows the class method: nn.Module.__call__
        # and the detector's `part.predict(...)` both find the wrapper.
        setattr(part, method, timed(name, getattr(part, method)))
        found.append(name)
    return found


def median(values: Sequence[float]) -> float:
    """The median (mean of the two middle values for an even count)."""
    if not values:
        raise ValueError('median of no values')
    return float(statistics.median(values))


def paired_ratio(numerators: Sequence[float],
                 denominators: Sequence[float],
                 scale: float = 1.0) -> float:
    """Median over repeats of ``numerators[i] / (scale * denominators[i])``.

    Each pair comes from one repeat (runs next to each other in time), so a
    slow phase of the machine cancels out of the ratio.
    """
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError(
            f'paired_ratio needs one denominator per numerator, got '
            f'{len(numerators)} and {len(denominators)}')
    return median([n / (scale * d) for n, d in zip(numerators, denominators)])


class PeakMemory:
    """Peak memory of one call above what was in use before it.

    CPU: the process's resident set (``VmHWM`` after resetting it through
    ``/proc/self/clear_refs``; where that is not possible, ``ru_maxrss``,
    which is never reset and so only bounds the peak). CUDA:
    ``torch.cuda.max_memory_allocated`` above ``memory_allocated``.
    """

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith('cuda')
        self._libc = None
        if not self.cuda:
            try:
                self._libc = ctypes.CDLL('libc.so.6')
            except OSError:
                self._libc = None

    @staticmethod
    def _status_kib(field: str) -> Optional[int]:
        try:
            with open('/proc/self/status') as f:
                for line in f:
                    if line.startswith(field + ':'):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._before = torch.cuda.memory_allocated()
            return
        if self._libc is not None:
            self._libc.malloc_trim(0)  # hand freed heap pages back
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # reset VmHWM to the current RSS
        except OSError:
            pass
        self._before = (self._status_kib('VmRSS') or 0) * 1024

    def stop(self) -> float:
        """Bytes above the start, at the peak."""
        if self.cuda:
            torch.cuda.synchronize()
            return float(torch.cuda.max_memory_allocated() - self._before)
        peak = self._status_kib('VmHWM')
        if peak is None:
            import resource
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return float(max(0, peak * 1024 - self._before))


def weights_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size()
               for t in list(model.parameters()) + list(model.buffers()))


class OpRecorder:
    """Which implementation the RoIAlign and NMS calls of a run used.

    Wraps mmcv's compiled entry points (``mmcv._ext.roi_align_forward``,
    ``mmcv._ext.nms``) and torchvision's (``torchvision.ops.roi_align``,
    ``torchvision.ops.nms``) while active, and records the device of their
    inputs: ``{'RoIAlign': {'mmcv._ext (cpu)': calls}, ...}``.
    """

    def __init__(self) -> None:
        self.calls: Dict[str, Dict[str, int]] = defaultdict(
            lambda: defaultdict(int))
        self._undo: List[Tuple[object, str, object]] = []

    def _wrap(self, owner: object, attr: str, op: str, impl: str) -> None:
        fn = getattr(owner, attr, None)
        if fn is None:
            return

        def wrapper(*args, **kwargs):
            dev = next((a.device.type for a in args
                        if isinstance(a, torch.Tensor)), '?')
            self.calls[op][f'{impl} ({dev})'] += 1
            return fn(*args, **kwargs)

        setattr(owner, attr, wrapper)
        self._undo.append((owner, attr, fn))

    def __enter__(self) -> 'OpRecorder':
        try:
            from mmcv import _ext
            self._wrap(_ext, 'roi_align_forward', 'RoIAlign', 'mmcv._ext')
            self._wrap(_ext, 'nms', 'nms', 'mmcv._ext')
        except ImportError:
            pass
        try:
            import torchvision.ops as tv_ops
            import torchvision.ops.boxes as tv_boxes
            import torchvision.ops.roi_align as tv_roi
            self._wrap(tv_roi, 'roi_align', 'RoIAlign', 'torchvision')
            self._wrap(tv_ops, 'roi_align', 'RoIAlign', 'torchvision')
            self._wrap(tv_boxes, 'nms', 'nms', 'torchvision')
        except ImportError:
            pass
        return self

    def __exit__(self, *exc) -> None:
        for owner, attr, fn in reversed(self._undo):
            setattr(owner, attr, fn)
        self._undo.clear()

    def summary(self) -> str:
        if not self.calls:
            return 'no RoIAlign / nms call'
        return '; '.join(
            f'{op}: ' + ', '.join(f'{impl} x{n}' for impl, n in
                                  sorted(impls.items()))
            for op, impls in sorted(self.calls.items()))


def mmcv_build_info() -> str:
    """Whether mmcv's compiled ops are there, and for which CUDA."""
    try:
        from mmcv.ops import get_compiler_version, get_compiling_cuda_version
        return (f'mmcv ops compiled with {get_compiler_version()}, CUDA '
                f'{get_compiling_cuda_version()}')
    except Exception as e:  # noqa: BLE001 (report, do not fail)
        return f'mmcv compiled ops unavailable ({type(e).__name__}: {e})'


# ----------------------------------------------------------------------
# batches
# ----------------------------------------------------------------------
def make_batch(cfg: Config, width: int, height: int, queries: int,
               shots: int) -> dict:
    """A collated batch as the test dataloader would give it: uint8
    images (random pixels), one target image repeated for every episode."""
    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, height, width), generator=g,
                        dtype=torch.uint8)
    n = queries if is_oneshot(cfg) else 1
    samples: List[DetDataSample] = []
    for i in range(n):
        s = DetDataSample()
        s.set_metainfo(dict(
            img_id=0, img_shape=(height, width), ori_shape=(height, width),
            scale_factor=(1.0, 1.0), episode_label=0, episode_cat_id=1,
            query_ann_ids=[i * shots + k for k in range(shots)]))
        samples.append(s)
    if not is_oneshot(cfg):
        return dict(inputs=[img], data_samples=samples)
    size = query_size(cfg)
    qs = [torch.randint(0, 256, (shots, 3, size, size), generator=g,
                        dtype=torch.uint8) for _ in range(n)]
    return dict(inputs=dict(img=[img] * n, query=qs), data_samples=samples)


def make_train_batch(cfg: Config, width: int, height: int, batch_size: int,
                     shots: int, oneshot_batch: bool = True,
                     query_cfg: Optional[Config] = None) -> dict:
    """A training batch of ``batch_size`` episodes (or images): distinct
    random targets, two random ground-truth boxes of label 0 each; one-shot
    episodes get ``shots`` random queries of ``query_cfg``'s train size."""
    g = torch.Generator().manual_seed(1)
    imgs, samples, qs = [], [], []
    size = query_size(query_cfg or cfg, train=True)
    for i in range(batch_size):
        imgs.append(torch.randint(0, 256, (3, height, width), generator=g,
                                  dtype=torch.uint8))
        s = DetDataSample()
        s.set_metainfo(dict(
            img_id=i, img_shape=(height, width), ori_shape=(height, width),
            scale_factor=(1.0, 1.0), episode_label=0, episode_cat_id=1,
            query_ann_ids=[i * shots + k for k in range(shots)]))
        xy = torch.rand(2, 2, generator=g) * torch.tensor([width, height]) \
            * 0.6
        wh = (torch.rand(2, 2, generator=g) * 0.3 + 0.1) * torch.tensor(
            [width, height])
        s.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], dim=1),
            labels=torch.zeros(2, dtype=torch.long))
        samples.append(s)
        qs.append(torch.randint(0, 256, (shots, 3, size, size), generator=g,
                                dtype=torch.uint8))
    if not oneshot_batch:
        return dict(inputs=imgs, data_samples=samples)
    return dict(inputs=dict(img=imgs, query=qs), data_samples=samples)


# ----------------------------------------------------------------------
# runs
# ----------------------------------------------------------------------
class Run:
    """One configuration to time: a model and the batch it is fed."""

    def __init__(self, label: str, model: torch.nn.Module, data: dict,
                 episodes: int, queries: int, step: Callable[[], object],
                 base_of: Optional[List[str]] = None,
                 base_name: Optional[str] = None) -> None:
        self.label, self.model, self.data = label, model, data
        self.episodes, self.queries, self.step = episodes, queries, step
        self.base_of, self.base_name = base_of, base_name
        self.times: List[float] = []
        self.memory: List[float] = []
        self.stages: List[Dict[str, float]] = []
        self.stage_names: List[str] = []
        self.totals: Dict[str, float] = defaultdict(float)
        self.ops = 'not recorded'


def load_config(path: str) -> Config:
    # 'mmdet::...' names a config shipped inside the mmdet package.
    return get_config(path) if '::' in path else Config.fromfile(path)


def build_model(model_cfg: ConfigDict, device: str) -> torch.nn.Module:
    model_cfg = copy.deepcopy(model_cfg)
    model_cfg.pop('init_cfg', None)
    if 'backbone' in model_cfg:
        model_cfg.backbone.init_cfg = None  # no downloads, random weights
    roi_head = model_cfg.get('roi_head', None) or {}
    if roi_head.get('shared_head'):
        roi_head.shared_head.pop('init_cfg', None)
    return MODELS.build(model_cfg).to(device)


def make_runs(args) -> List[Run]:
    """Every configuration of the command line, built (not yet run). Two
    methods with the same base detector (e.g. CoAE and CAT) share its
    run."""
    runs: List[Run] = []
    bases: Dict[str, Run] = {}
    w, h = args.size
    for path in args.configs:
        name = osp.basename(path)
        cfg = load_config(path)
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        oneshot_cfg = is_oneshot(cfg)
        model = build_model(cfg.model, args.device)
        ks = args.queries if oneshot_cfg else [1]
        base = None
        if args.base and oneshot_cfg:
            base_name, base_cfg = base_model_cfg(cfg, path)
            key = base_name + Config(dict(model=base_cfg)).pretty_text
            if key in bases:
                bases[key].base_of.append(name)
            else:
                base = (base_name, build_model(base_cfg, args.device), key)
        if args.train:
            bs = args.batch_size or cfg.train_dataloader.batch_size
            runs.append(_train_run(name, model, make_train_batch(
                cfg, w, h, bs, args.shots, oneshot_cfg), bs, args))
            if base is not None:
                bases[base[2]] = _train_run(
                    f'  base: {osp.basename(base[0])}', base[1],
                    make_train_batch(cfg, w, h, bs, args.shots, False), bs,
                    args, base_of=[name], base_name=base[0])
                runs.append(bases[base[2]])
            continue
        model.eval()
        for k in ks:
            data = make_batch(cfg, w, h, k, args.shots)
            label = name if len(ks) == 1 else f'{name} [K={k}]'
            runs.append(Run(label, model, data, k if oneshot_cfg else 1, k,
                            _test_step(model, data)))
        if base is not None:
            base[1].eval()
            data = make_batch(load_config(base[0]), w, h, 1, args.shots)
            bases[base[2]] = Run(
                f'  base: {osp.basename(base[0])}', base[1], data, 1, 1,
                _test_step(base[1], data), base_of=[name],
                base_name=base[0])
            runs.append(bases[base[2]])
    return runs


def _test_step(model: torch.nn.Module, data: dict) -> Callable[[], object]:
    def step():
        with torch.no_grad():
            return model.test_step(data)
    return step


def _train_run(label: str, model: torch.nn.Module, data: dict,
               batch_size: int, args, base_of: Optional[List[str]] = None,
               base_name: Optional[str] = None) -> Run:
    from mmengine.optim import OptimWrapper
    model.train()
    # lr 0: the step does all of SGD's work (momentum, weight decay) but
    # leaves the random weights where they are, so every iteration costs
    # the same and no loss diverges over the repeats.
    wrapper = OptimWrapper(torch.optim.SGD(
        model.parameters(), lr=0.0, momentum=0.9, weight_decay=1e-4))

    def step():
        return model.train_step(copy.copy(data), wrapper)
    return Run(label, model, data, batch_size, 1, step, base_of=base_of,
               base_name=base_name)


def run_all(runs: List[Run], args) -> None:
    """Warm every run up, then time ``args.repeat`` rounds, each running
    every configuration once."""
    sync = device_sync(args.device)
    clock = CLOCKS[args.clock]
    memory = PeakMemory(args.device)
    timers: Dict[int, Tuple[Dict[str, float], List[str]]] = {}
    for run in runs:
        if args.stages:
            # One set of timers per model (K runs share it); totals are
            # cleared before each timed call.
            if id(run.model) not in timers:
                totals: Dict[str, float] = defaultdict(float)
                timers[id(run.model)] = (totals, add_stage_timers(
                    run.model, args.device, totals, clock))
            run.totals, run.stage_names = timers[id(run.model)]
        for _ in range(args.warmup):
            run.step()
        sync()
    for round_ in range(args.repeat):
        for run in runs:
            run.totals.clear()
            # The first round also records which RoIAlign / nms ran (a
            # Python call per op call, nothing measurable next to the op).
            ops = OpRecorder() if round_ == 0 else None
            memory.start()
            t0 = clock()
            if ops is not None:
                with ops:
                    run.step()
            else:
                run.step()
            sync()
            run.times.append(clock() - t0)
            run.memory.append(memory.stop())
            run.stages.append(dict(run.totals))
            if ops is not None:
                run.ops = ops.summary()


# ----------------------------------------------------------------------
# reports
# ----------------------------------------------------------------------
def median_index(times: Sequence[float]) -> int:
    """Index of the median run (the lower middle one for an even count),
    whose stages then add up to the reported time."""
    order = sorted(range(len(times)), key=times.__getitem__)
    return order[(len(order) - 1) // 2]


def k_scaling(runs: List[Run]) -> List[Tuple[Run, Run]]:
    """``(K-query run, its model's 1-query run)`` for every K > 1."""
    singles = {id(r.model): r for r in runs
               if r.queries == 1 and r.base_of is None}
    return [(r, singles[id(r.model)]) for r in runs
            if r.queries > 1 and r.base_of is None and id(r.model) in singles]


def base_pairs(runs: List[Run]) -> List[Tuple[Run, Run]]:
    """``(method's 1-query run, base run)`` for every method with a base."""
    pairs = []
    for base in runs:
        for name in base.base_of or []:
            method = next(r for r in runs if r.base_of is None
                          and r.queries == 1
                          and r.label.split(' [')[0] == name)
            pairs.append((method, base))
    return pairs


def report(runs: List[Run], args) -> None:
    mib = 1024.0**2
    w, h = args.size
    what = 'train_step (forward, loss, backward, SGD step)' if args.train \
        else 'predict'
    print(f'\n{what} on {w}x{h} images, device {args.device}, torch threads '
          f'{torch.get_num_threads()}, {args.clock} clock, median of '
          f'{args.repeat} interleaved rounds (after {args.warmup} warm-up)')
    print(mmcv_build_info())
    unit = 'episodes/s' if args.train else 's/episode'
    mem = 'peak MiB' if args.device.startswith('cuda') else 'peak RSS MiB'
    print(f'{"config":<62} {"s/iter" if args.train else "s/image":>9} '
          f'{unit:>10} {"episodes":>9} {mem:>12} {"weights MiB":>12}')
    for run in runs:
        t = median(run.times)
        rate = run.episodes / t if args.train else t / run.episodes
        print(f'{run.label:<62} {t:>9.3f} {rate:>10.3f} {run.episodes:>9d} '
              f'{max(run.memory) / mib:>12.0f} '
              f'{weights_bytes(run.model) / mib:>12.0f}')
    pairs = base_pairs(runs)
    if pairs:
        print('\nratio = method / base (median of per-round ratios; one '
              'query' + ('; per episode' if args.train else '') + ')')
        print(f'{"method":<50} {"base (mmdet config, method sizes)":<64} '
              f'{"ratio":>6}')
        for method, base in pairs:
            if args.train:  # episodes/s: base / method time per episode
                r = paired_ratio([t / method.episodes for t in method.times],
                                 [t / base.episodes for t in base.times])
            else:
                r = paired_ratio(method.times, base.times)
            print(f'{method.label.split(" [")[0]:<50} '
                  f'{base.base_name:<64} {r:>6.2f}')
    scaling = k_scaling(runs)
    if scaling:
        print('\nK queries on one target: one batch of K episodes against K '
              'single-query runs (median of per-round ratios)')
        print(f'{"config":<62} {"K":>3} {"s/episode":>10} '
              f'{"ratio to K x 1":>15}')
        for run, single in scaling:
            r = paired_ratio(run.times, single.times, scale=run.queries)
            print(f'{run.label.split(" [")[0]:<62} {run.queries:>3d} '
                  f'{median(run.times) / run.episodes:>10.3f} {r:>15.2f}')
    if args.stages:
        print('\nseconds per image by stage (median run; backbone = target '
              '+ query passes; rest = pre-processing, fusion, packing)')
        print(f'{"config":<62}' + ''.join(f'{s:>10}' for s in STAGES) +
              f'{"rest":>10}')
        for run in runs:
            i = median_index(run.times)
            spent = run.stages[i]
            cells = ''.join(
                f'{spent.get(s, 0.0):>10.3f}' if s in run.stage_names
                else f'{"-":>10}' for s in STAGES)
            rest = run.times[i] - sum(spent.values())
            print(f'{run.label:<62}{cells}{rest:>10.3f}')
    print('\nRoIAlign / nms implementations (first timed round):')
    seen = set()
    for run in runs:
        if run.label.split(' [')[0] in seen:
            continue
        seen.add(run.label.split(' [')[0])
        print(f'  {run.label.strip():<60} {run.ops}')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--size', nargs=2, type=int, default=[1000, 600],
                        metavar=('W', 'H'))
    parser.add_argument('--queries', type=int, nargs='+', default=[1],
                        help='episodes (different queries) per target image; '
                        'several values (e.g. 1 4 16) time each and, with 1 '
                        'among them, print the ratio to K single runs')
    parser.add_argument('--shots', type=int, default=1)
    parser.add_argument('--base', action='store_true',
                        help='pair each one-shot config with its base mmdet '
                        'detector (BASE_DETECTORS) and print method / base')
    parser.add_argument('--train', action='store_true',
                        help='time train_step instead of predict; reports '
                        'episodes/s')
    parser.add_argument('--batch-size', type=int, default=0,
                        help='--train: episodes per iteration (0: the '
                        "config's train_dataloader.batch_size)")
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=0,
                        help='torch CPU threads (0: torch default)')
    parser.add_argument('--stages', action='store_true',
                        help='also report seconds per stage of the model')
    parser.add_argument('--clock', choices=sorted(CLOCKS), default='wall',
                        help="'cpu': this process's CPU seconds instead of "
                        'wall time (a shared CPU machine, with --threads 1); '
                        'CUDA runs need wall')
    args = parser.parse_args(argv)
    if args.clock == 'cpu' and args.device.startswith('cuda'):
        parser.error('--clock cpu does not count GPU time; use --clock wall '
                     'with --device cuda')
    if any(k < 1 for k in args.queries):
        parser.error(f'--queries must be >= 1, got {args.queries}')
    if args.repeat < 1:
        parser.error('--repeat must be >= 1')
    if args.base and not args.train and 1 not in args.queries:
        parser.error('--base compares the one-query runs: include 1 in '
                     f'--queries (got {args.queries})')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: torch sees no CUDA device')
    args.queries = sorted(set(args.queries))
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = make_runs(args)
    run_all(runs, args)
    report(runs, args)


if __name__ == '__main__':
    main()
