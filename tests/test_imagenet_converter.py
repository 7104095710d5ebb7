"""tools/model_converters/imagenet_resnet_to_backbone.py: torchvision- and
timm-keyed ImageNet ResNet-50 state dicts (fabricated here, nothing is
downloaded) become weights-only files that load strictly into mmdet's
ResNet(depth=50) and through a config's init_cfg switch; a wrong-depth dict
is a clear error and writes nothing."""
import argparse
import importlib.util
import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO, 'tools', 'model_converters',
                'imagenet_resnet_to_backbone.py')
init_default_scope('mmdet')


def _tool():
    spec = importlib.util.spec_from_file_location('imagenet_converter', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conv = _tool()


def imagenet_resnet(depth: int = 50) -> 'OrderedDict[str, torch.Tensor]':
    """A torchvision-style ImageNet ResNet state dict: mmdet's ResNet keys
    (torchvision's names), no BN counters (as in torchvision's files), a
    1000-way ``fc``; random but fixed values."""
    torch.manual_seed(depth)
    model = ResNet(depth=depth)
    for p in model.parameters():
        p.data.normal_()
    state = OrderedDict((k, v.clone()) for k, v in model.state_dict().items()
                        if not k.endswith('num_batches_tracked'))
    width = 2048 if depth >= 50 else 512
    state['fc.weight'] = torch.randn(1000, width)
    state['fc.bias'] = torch.randn(1000)
    return state


@pytest.fixture(scope='module')
def r50():
    return imagenet_resnet(50)


def assert_loads_strictly(path, source):
    out = torch.load(path, map_location='cpu', weights_only=True)
    backbone = ResNet(depth=50)
    backbone.load_state_dict(out['state_dict'], strict=True)
    for k, v in backbone.state_dict().items():
        if k in source:
            assert torch.equal(v, source[k]), k
    assert not any(k.startswith('fc.') for k in out['state_dict'])
    return out


@pytest.mark.parametrize('wrap', ['torchvision', 'timm-train', 'timm-model',
                                  'mmpretrain'])
def test_keys_load_strictly_into_resnet50(r50, tmp_path, wrap):
    if wrap == 'torchvision':  # torchvision: a plain state dict
        saved = r50
    elif wrap == 'timm-train':  # timm's train.py: DDP prefix, extra entries
        saved = dict(epoch=3, arch='resnet50', state_dict=OrderedDict(
            ('module.' + k, v) for k, v in r50.items()))
    elif wrap == 'timm-model':  # a wrapper module named `model`
        saved = dict(model=OrderedDict(('model.' + k, v)
                                       for k, v in r50.items()))
    else:  # mmpretrain: backbone. + head.fc.
        saved = dict(state_dict=OrderedDict(
            ('backbone.' + k if not k.startswith('fc.') else 'head.' + k, v)
            for k, v in r50.items()))
    src, out = str(tmp_path / 'in.pth'), str(tmp_path / 'r50.pth')
    torch.save(saved, src)
    report = conv.convert(src, out)
    assert report['keys'] == len(ResNet(depth=50).state_dict())
    assert len(report['dropped']) == 2
    assert all(k.endswith('num_batches_tracked') for k in report['filled'])
    meta = assert_loads_strictly(out, r50)['meta']
    assert meta['backbone'] == 'mmdet ResNet(depth=50)'


def test_torchvision_resnet50(tmp_path):
    torchvision = pytest.importorskip('torchvision')
    model = torchvision.models.resnet50(weights=None)
    src, out = str(tmp_path / 'tv.pth'), str(tmp_path / 'r50.pth')
    torch.save(model.state_dict(), src)
    conv.convert(src, out)
    assert_loads_strictly(out, model.state_dict())


def test_safetensors_input(r50, tmp_path):
    safetensors = pytest.importorskip('safetensors.torch')
    src, out = str(tmp_path / 'in.safetensors'), str(tmp_path / 'r50.pth')
    safetensors.save_file(dict(r50), src)
    conv.convert(src, out)
    assert_loads_strictly(out, r50)


@pytest.mark.parametrize('depth, looks', [(18, 'ResNet-18'),
                                          (101, 'ResNet-101')])
def test_wrong_depth_is_a_clear_error(tmp_path, depth, looks):
    src, out = str(tmp_path / 'in.pth'), str(tmp_path / 'r50.pth')
    torch.save(imagenet_resnet(depth), src)
    with pytest.raises(conv.ConversionError) as err:
        conv.convert(src, out)
    msg = str(err.value)
    assert "does not fit mmdet's ResNet(depth=50)" in msg
    assert f'looks like {looks}' in msg and 'in.pth' in msg
    if depth == 18:
        assert 'keys missing: layer1.0.conv3.weight' in msg
        assert 'with another shape: layer1.0.conv1.weight (64, 64, 3, 3)' \
            in msg
    else:
        assert 'keys not in the backbone: layer3.6.' in msg
    assert not osp.exists(out) and not osp.exists(out + '.tmp')


def test_cli_error_and_success(r50, tmp_path):
    bad = str(tmp_path / 'r18.pth')
    torch.save(imagenet_resnet(18), bad)
    proc = subprocess.run([sys.executable, TOOL, bad, str(tmp_path / 'x.pth')],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert 'imagenet_resnet_to_backbone.py: ' in proc.stderr
    assert 'looks like ResNet-18' in proc.stderr
    assert 'Traceback' not in proc.stderr
    good = str(tmp_path / 'tv.pth')
    torch.save(r50, good)
    proc = subprocess.run([sys.executable, TOOL, good, str(tmp_path / 'o.pth'),
                           '--depth', '50'],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'Dropped the classifier: fc.weight, fc.bias' in proc.stdout


def test_untrusted_pickle_is_refused(r50, tmp_path):
    src = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict=r50, args=argparse.Namespace(lr=0.1)), src)
    with pytest.raises(conv.CheckpointError, match='weights-only'):
        conv.convert(src, str(tmp_path / 'o.pth'))
    assert not osp.exists(tmp_path / 'o.pth')


def test_config_switch_starts_the_backbone_from_the_file(r50, tmp_path):
    """The documented switch (docs/protocol.md, "Backbone pre-training"):
    --cfg-options model.backbone.init_cfg.checkpoint=OUT on a ResNet-50
    config (and roi_head.shared_head for C4) loads the converted weights
    through mmengine's own Pretrained init."""
    src, out = str(tmp_path / 'in.pth'), str(tmp_path / 'r50.pth')
    torch.save(r50, src)
    conv.convert(src, out)
    import oneshot  # noqa: F401
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'cat_r50.py'))
    cfg.merge_from_dict({
        'model.backbone.init_cfg.checkpoint': out,
        'model.roi_head.shared_head.init_cfg.checkpoint': out})
    for part in (cfg.model.backbone, cfg.model.roi_head.shared_head):
        module = MODELS.build(part)
        module.init_weights()
        state = module.state_dict()
        shared = [k for k in state if k in r50]
        assert len(shared) > 30
        for k in shared:
            assert torch.equal(state[k], r50[k]), k
