"""OneShotInferencer and tools/demo.py: results equal the detector's
predict on the dataset's episodes, backbone work is T + Q, K identical
shots equal one shot, bad inputs are named in the error."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from quickstart_utils import REPO, data_overrides, random_model_on_synthetic

from oneshot.apis import OneShotInferencer, Query

CAT_CFG = osp.join(REPO, 'configs/quickstart/cat_r18-tiny_synthetic.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Synthetic data, a config pointing at it and a random-weight
    checkpoint (fixed seed: scores are arbitrary but deterministic)."""
    return random_model_on_synthetic(tmp_path_factory.mktemp('inferencer'))


def _episodes_by_image(cfg):
    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg.episode_classes = 'all'
    dataset = DATASETS.build(ds_cfg)
    dataset.set_run(0)
    by_img = {}
    for idx in range(len(dataset)):
        by_img.setdefault(dataset.get_data_info(idx)['img_path'],
                          []).append(idx)
    return dataset, by_img


def test_results_equal_detector_predict(setup):
    root, cfg, ckpt = setup
    inferencer = OneShotInferencer(cfg, ckpt, device='cpu')
    model = inferencer.model
    dataset, by_img = _episodes_by_image(cfg)
    compared = 0
    for img_path, indices in list(by_img.items())[:2]:
        episodes = [dataset[i] for i in indices]
        with torch.no_grad():
            expected = model.test_step(pseudo_collate(episodes))
        queries = []
        for idx in indices:
            (q, ) = dataset.get_data_info(idx)['query_infos']
            queries.append(Query(q['img_path'], q['bbox']))
        (result, ) = inferencer(img_path, queries)
        assert len(result['detections']) == len(indices)
        for exp, got in zip(expected, result['detections']):
            inst = exp.pred_instances
            order = torch.argsort(inst.scores, descending=True, stable=True)
            assert len(got['scores']) == len(order) > 0
            np.testing.assert_allclose(
                got['scores'], inst.scores[order].numpy(), rtol=1e-4,
                atol=1e-5)
            np.testing.assert_allclose(
                got['bboxes'], inst.bboxes[order].numpy(), rtol=1e-4,
                atol=1e-3)
            compared += 1
    assert compared >= 2


def test_backbone_runs_once_per_target_and_per_query(setup):
    root, cfg, ckpt = setup
    inferencer = OneShotInferencer(cfg, ckpt, device='cpu', batch_size=2)
    calls, images = [], []

    def count(module, args, output):
        calls.append(1)
        images.append(args[0].shape[0])

    inferencer.model.backbone.register_forward_hook(count)
    val = osp.join(root, 'val')
    queries = [Query(osp.join(val, '000000.png'), [10, 10, 70, 70]),
               Query(osp.join(val, '000001.png')),
               [Query(osp.join(val, '000002.png'), [0, 0, 80, 80]),
                Query(osp.join(val, '000003.png'), [40, 40, 120, 120])]]
    results = inferencer(val, queries)  # a folder: 4 targets
    assert len(results) == 4
    assert all(len(r['detections']) == 3 for r in results)
    # T + Q backbone calls: 4 targets + 3 queries (the 2-shot query's
    # shots go through in one call), and 4 + 1 + 1 + 2 images.
    assert len(calls) == 4 + 3
    assert sum(images) == 4 + 4
    assert (inferencer.num_target_passes, inferencer.num_query_passes) == \
        (4, 3)


def test_k_identical_shots_equal_one_shot(setup):
    root, cfg, ckpt = setup
    inferencer = OneShotInferencer(cfg, ckpt, device='cpu')
    val = osp.join(root, 'val')
    shot = Query(osp.join(val, '000001.png'), [20, 20, 90, 100])
    one, three = inferencer(osp.join(val, '000000.png'),
                            [shot, [shot, shot, shot]])[0]['detections']
    assert len(one['scores']) > 0
    np.testing.assert_allclose(three['scores'], one['scores'], rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(three['bboxes'], one['bboxes'], atol=1e-3)


def test_arrays_grayscale_and_rgba_inputs(setup):
    root, cfg, ckpt = setup
    inferencer = OneShotInferencer(cfg, ckpt, device='cpu')
    import mmcv
    path = osp.join(root, 'val', '000000.png')
    bgr = mmcv.imread(path)
    query = Query(osp.join(root, 'val', '000001.png'), [20, 20, 90, 100])
    from_path = inferencer(path, query)[0]['detections'][0]
    from_array = inferencer(bgr, query)[0]['detections'][0]
    np.testing.assert_allclose(from_array['scores'], from_path['scores'])
    rgba = np.concatenate([bgr, np.full_like(bgr[..., :1], 255)], axis=2)
    from_rgba = inferencer(rgba, query)[0]['detections'][0]
    np.testing.assert_allclose(from_rgba['scores'], from_path['scores'])
    gray = inferencer(bgr[..., 0], query, topk=3)[0]['detections'][0]
    assert len(gray['scores']) <= 3
    thr = inferencer(path, query, score_thr=0.5)[0]['detections'][0]
    assert (thr['scores'] >= 0.5).all()
    assert np.all(np.diff(from_path['scores']) <= 0)  # sorted


def test_bad_inputs_name_the_input(setup, tmp_path):
    root, cfg, ckpt = setup
    inferencer = OneShotInferencer(cfg, ckpt, device='cpu')
    target = osp.join(root, 'val', '000000.png')
    qimg = osp.join(root, 'val', '000001.png')
    with pytest.raises(ValueError, match=r'outside the 160x160 image'):
        inferencer(target, Query(qimg, [100, 100, 200, 150]))
    with pytest.raises(ValueError, match=r'zero or negative size'):
        inferencer(target, Query(qimg, [50, 50, 50, 80]))
    broken = tmp_path / 'broken.png'
    broken.write_text('not an image')
    with pytest.raises(ValueError, match='broken.png'):
        inferencer(str(broken), Query(qimg))
    with pytest.raises(FileNotFoundError, match='missing.png'):
        inferencer(target, Query(str(tmp_path / 'missing.png')))


def test_checkpoint_of_another_config_is_a_clear_error(setup):
    root, cfg, ckpt = setup
    cat_cfg = Config.fromfile(CAT_CFG)
    cat_cfg.merge_from_dict(data_overrides(root))
    with pytest.raises(ValueError) as err:
        OneShotInferencer(cat_cfg, ckpt, device='cpu')
    msg = str(err.value)
    assert 'does not match the config' in msg and 'model.pth' in msg
    assert 'matcher.' in msg  # names the differing parameters


def test_demo_writes_pictures_and_json(setup, tmp_path):
    root, cfg, ckpt = setup
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    val = osp.join(root, 'val')
    out = tmp_path / 'demo'
    cmd = [sys.executable, osp.join(REPO, 'tools/demo.py'), val,
           '--query', osp.join(val, '000001.png'), '--query-box',
           '20,20,90,100', '--query', osp.join(val, '000002.png'),
           '--query-box', 'full', '--config', cfg_path, '--checkpoint',
           ckpt, '--out', str(out), '--device', 'cpu', '--score-thr', '0.1']
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '4 target and 2 query backbone passes' in proc.stdout
    pngs = sorted(p.name for p in out.glob('*.png'))
    assert pngs == [f'00000{i}_00000{q}.png' for i in range(4)
                    for q in (1, 2)]
    summary = json.loads((out / 'detections.json').read_text())
    assert [q['name'] for q in summary['queries']] == ['000001', '000002']
    assert len(summary['results']) == 4
    for record in summary['results']:
        for det in record['detections']:
            assert len(det['bboxes']) == len(det['scores'])
            assert all(s >= 0.1 for s in det['scores'])
