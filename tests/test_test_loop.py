"""OneShotTestLoop runs every query draw on a fresh copy of the dataset and
reports each run plus mean and std."""
import json
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import InstanceData

import oneshot  # noqa: F401

GT = [0., 0., 10., 10.]
MISS = [50., 50., 60., 60.]


class RunDataset:
    """Two episodes of class 0 (image 1) and one of class 1 (image 2).
    With run r, the first r % 3 episodes get a perfect query; the model
    finds the object exactly when the query is perfect."""
    metainfo = dict(classes=('a', 'b'), seen_classes=('a', ),
                    unseen_classes=('b', ))

    def __init__(self):
        self.run = 0
        self.runs_seen = []

    def set_run(self, run):
        self.run = run

    def __len__(self):
        return 3

    def __getitem__(self, idx):
        s = DetDataSample(metainfo=dict(
            episode_id=idx, img_id=1 if idx < 2 else 2,
            episode_label=0 if idx < 2 else 1, run=self.run,
            good_query=idx < self.run % 3))
        s.gt_instances = InstanceData(bboxes=torch.tensor([GT]),
                                      labels=torch.tensor([0]))
        s.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                           labels=torch.zeros(0).long())
        return dict(inputs=torch.zeros(1), data_samples=s)


class QueryOracle(BaseModel):

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='predict'):
        for s in data_samples:
            box = GT if s.good_query else MISS
            s.pred_instances = InstanceData(
                bboxes=torch.tensor([box]), scores=torch.tensor([0.9]),
                labels=torch.tensor([s.episode_label]))
        return data_samples


def expected(run):
    good = [i < run % 3 for i in range(3)]
    a = sum(good[:2]) / 2  # AP of class a: share of its 2 gts found...
    # ...with one detection per episode and score ties: COCO precision at
    # recall k/2 is 1 when the found ones rank first; ties keep input order.
    ap_a = {0: 0.0, 0.5: 51 / 101, 1.0: 1.0}[a]
    ap_b = 1.0 if good[2] else 0.0
    return ap_a, ap_b


@pytest.mark.parametrize('runs', [1, 3])
def test_loop_reports_every_run_and_mean_std(tmp_path, runs):
    dataset = RunDataset()
    runner = Runner(
        model=QueryOracle(), work_dir=str(tmp_path),
        test_dataloader=dict(dataset=dataset, batch_size=2,
                             sampler=dict(type='DefaultSampler',
                                          shuffle=False),
                             collate_fn=dict(type='pseudo_collate')),
        test_evaluator=dict(type='OneShotMetric'),
        test_cfg=dict(type='OneShotTestLoop', runs=runs),
        default_scope='mmdet')
    metrics = runner.test()
    assert dataset.run == 0  # the original is untouched: runs used copies

    report_file = osp.join(runner.log_dir, 'oneshot_runs.json')
    with open(report_file) as f:
        report = json.load(f)
    assert report['num_runs'] == runs
    ap_a = [expected(r)[0] for r in range(runs)]
    ap_b = [expected(r)[1] for r in range(runs)]
    for r in range(runs):
        assert report['runs'][r]['oneshot/AP50_a'] == pytest.approx(ap_a[r])
        assert report['runs'][r]['oneshot/unseen_AP50'] == pytest.approx(
            ap_b[r])
    mean_a = sum(ap_a) / runs
    assert metrics['oneshot/AP50_a'] == pytest.approx(mean_a)
    assert report['mean']['oneshot/AP50_a'] == pytest.approx(mean_a)
    std = torch.tensor(ap_a).std().item() if runs > 1 else 0.0
    assert metrics['oneshot/AP50_a_std'] == pytest.approx(std, abs=1e-6)


def test_dataset_without_set_run_is_a_clear_error(tmp_path):
    with pytest.raises(TypeError, match='set_run'):
        Runner(model=QueryOracle(), work_dir=str(tmp_path),
               test_dataloader=dict(dataset=[1, 2], batch_size=1,
                                    sampler=dict(type='DefaultSampler',
                                                 shuffle=False)),
               test_evaluator=dict(type='OneShotMetric'),
               test_cfg=dict(type='OneShotTestLoop', runs=2),
               default_scope='mmdet').test()
