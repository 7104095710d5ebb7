"""mmdet's local visualizer, with the episode's query shown beside the
target, so that ``DetVisualizationHook`` and ``tools/test.py --show-dir``
draw one-shot results."""
import os.path as osp
from typing import List, Optional, Sequence

import mmcv
import numpy as np
from mmdet.registry import VISUALIZERS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import BaseBoxes
from mmdet.visualization import DetLocalVisualizer
from mmengine.dist import master_only
from mmengine.structures import InstanceData

from .drawing import make_query_panel


@VISUALIZERS.register_module()
class OneShotLocalVisualizer(DetLocalVisualizer):
    """Draw a one-shot episode: ``[query panel | ground truth | prediction]``.

    The boxes are drawn by :class:`mmdet.visualization.DetLocalVisualizer`;
    both ground truth and predictions are labelled with the episode's class
    (``metainfo['episode_label']``) — one-shot ground truth carries label 0
    (one foreground class, ``docs/data_flow.md`` §1), which would otherwise
    print the dataset's first class name. The query panel shows the query
    patches, either passed as ``query_imgs`` or cropped from
    ``metainfo['query_img_paths']`` at ``metainfo['query_bboxes']`` (what
    ``PackOneShotInputs`` stores), so the stock ``DetVisualizationHook``
    works unchanged. Use it in a config with::

        visualizer = dict(type='OneShotLocalVisualizer',
                          vis_backends=[dict(type='LocalVisBackend')],
                          name='visualizer')

    Args:
        name (str): Instance name (mmengine's visualizer manager).
        episode_file_names (bool): A target image is drawn once per episode
            (class) and query draw, but the hook names the output file after
            the image only. If True, ``out_file`` ``dir/123.jpg`` becomes
            ``dir/123_cat<episode_cat_id>_run<run>.jpg`` so that episodes
            do not overwrite each other.
        **kwargs: :class:`DetLocalVisualizer` arguments.
    """

    def __init__(self, name: str = 'visualizer',
                 episode_file_names: bool = True, **kwargs) -> None:
        # mmengine's ManagerMeta requires ``name`` in the signature.
        super().__init__(name=name, **kwargs)
        self.episode_file_names = episode_file_names

    @staticmethod
    def load_query_patches(data_sample: DetDataSample) -> List[np.ndarray]:
        """Crop the episode's query patches from their source images.

        Args:
            data_sample (DetDataSample): With ``query_img_paths`` and
                ``query_bboxes`` (K boxes, xyxy, source pixels) metainfo.

        Returns:
            list[np.ndarray]: K ``(h, w, 3)`` uint8 RGB patches.
        """
        paths = data_sample.metainfo.get('query_img_paths')
        boxes = data_sample.metainfo.get('query_bboxes')
        if paths is None or boxes is None:
            raise KeyError(
                'OneShotLocalVisualizer needs query_img_paths and '
                'query_bboxes in the data sample metainfo (PackOneShotInputs '
                'stores them; keep them in its meta_keys) or the query '
                'patches passed as add_datasample(..., query_imgs=[...]).')
        patches = []
        for path, box in zip(paths, boxes):
            img = mmcv.imread(path, channel_order='rgb')
            if img is None:
                raise FileNotFoundError(f'Query image {path!r} not found.')
            h, w = img.shape[:2]
            x1, y1, x2, y2 = np.round(np.asarray(box, float)).astype(int)
            x1, y1 = min(max(x1, 0), w - 1), min(max(y1, 0), h - 1)
            x2, y2 = max(min(x2, w), x1 + 1), max(min(y2, h), y1 + 1)
            patches.append(img[y1:y2, x1:x2])
        return patches

    def _episode_instances(self, instances: InstanceData,
                           label: Optional[int]) -> InstanceData:
        """``instances`` with plain ``(N, 4)`` tensor boxes and every label
        set to the episode's class."""
        instances = instances.clone()
        if isinstance(instances.get('bboxes'), BaseBoxes):
            # Packed ground truth holds HorizontalBoxes, which
            # DetLocalVisualizer._draw_instances cannot draw.
            instances.bboxes = instances.bboxes.tensor
        if label is not None and 'labels' in instances:
            instances.labels = instances.labels.new_full(
                instances.labels.shape, int(label))
        return instances

    def _episode_out_file(self, out_file: str,
                          data_sample: Optional[DetDataSample]) -> str:
        """``out_file`` with the episode's class id and query draw added."""
        if not self.episode_file_names or data_sample is None or \
                data_sample.metainfo.get('episode_cat_id') is None:
            return out_file
        stem, ext = osp.splitext(out_file)
        stem += f'_cat{data_sample.metainfo["episode_cat_id"]}'
        run = data_sample.metainfo.get('run', -1)
        if run is not None and run >= 0:
            stem += f'_run{run}'
        return stem + (ext or '.png')

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[DetDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       pred_score_thr: float = 0.3,
                       step: int = 0,
                       query_imgs: Optional[Sequence[np.ndarray]] = None
                       ) -> None:
        """Draw an episode and save it to ``out_file`` or the backends.

        Args:
            name (str): Image identifier for the backends.
            image (np.ndarray): ``(H, W, 3)`` RGB target image (original
                size, as ``DetVisualizationHook`` loads it).
            data_sample (DetDataSample, optional): The episode: metainfo,
                ``gt_instances`` and/or ``pred_instances`` (original pixels).
            draw_gt (bool): Draw the ground truth panel.
            draw_pred (bool): Draw the prediction panel.
            show (bool): Show in a window instead of saving.
            wait_time (float): Seconds to show.
            out_file (str, optional): Write the picture here (BGR file);
                see ``episode_file_names``.
            pred_score_thr (float): Predictions below it are not drawn.
            step (int): Global step for the backends.
            query_imgs (Sequence[np.ndarray], optional): K ``(h, w, 3)``
                uint8 RGB query patches; read from the metainfo paths if
                not given.
        """
        image = image.clip(0, 255).astype(np.uint8)
        classes = self.dataset_meta.get('classes', None)
        palette = self.dataset_meta.get('palette', None)
        panels = []
        label = None
        class_name = None
        if data_sample is not None:
            data_sample = data_sample.cpu()
            label = data_sample.metainfo.get('episode_label')
            if label is not None and classes is not None:
                class_name = classes[label]
            if query_imgs is None:
                query_imgs = self.load_query_patches(data_sample)
        if query_imgs is not None and len(query_imgs) > 0:
            panels.append(
                make_query_panel(query_imgs, image.shape[0], class_name))
        num_query_panels = len(panels)

        if draw_gt and data_sample is not None and \
                'gt_instances' in data_sample:
            panels.append(self._draw_instances(
                image,
                self._episode_instances(data_sample.gt_instances, label),
                classes, palette))
        if draw_pred and data_sample is not None and \
                'pred_instances' in data_sample:
            pred = data_sample.pred_instances
            pred = pred[pred.scores > pred_score_thr]
            panels.append(self._draw_instances(
                image, self._episode_instances(pred, label), classes,
                palette))
        if len(panels) == num_query_panels:
            panels.append(image)  # nothing drawn: show the plain target
        drawn_img = np.concatenate(panels, axis=1)

        self.set_image(drawn_img)
        if show:
            self.show(drawn_img, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(drawn_img[..., ::-1],
                         self._episode_out_file(out_file, data_sample))
        else:
            self.add_image(name, drawn_img, step)
