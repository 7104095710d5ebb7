"""Distributed training and testing without GPUs (gloo on CPU).

mmengine 0.10.7 assumes CUDA when launched with ``--launcher pytorch``: its
``init_dist`` calls ``torch.cuda.set_device`` (an AttributeError on CPU builds
of torch) and ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to
``DistributedDataParallel``, which DDP rejects for CPU modules. CPU
distributed runs are how the project tests multi-process training on
machines without GPUs (and work for users on CPU clusters), so the tools call
:func:`setup_cpu_distributed` when no GPU is available.
"""
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUCompatibleDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that drops ``device_ids`` for a module
    whose parameters live on the CPU (DDP only accepts ``None`` there)."""

    def __init__(self, module: torch.nn.Module, device_ids=None,
                 **kwargs) -> None:
        if not any(p.is_cuda for p in module.parameters()):
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)


def setup_cpu_distributed(cfg: Config) -> None:
    """Prepare ``cfg`` for a ``--launcher pytorch`` run on CPUs.

    Initialises the default process group with gloo from torchrun's
    environment (so mmengine's CUDA-only ``init_dist`` is skipped: the Runner
    only initialises when no process group exists) and makes the Runner wrap
    the model with :class:`CPUCompatibleDistributedDataParallel`.

    Args:
        cfg (Config): The full config; ``model_wrapper_cfg`` and
            ``env_cfg.dist_cfg.backend`` are updated in place.
    """
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if key not in os.environ:
            raise RuntimeError(
                f'--launcher pytorch needs the environment variable {key}; '
                'start the tool with tools/dist_train.sh / dist_test.sh '
                '(torchrun).')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo', init_method='env://')
    wrapper = dict(cfg.get('model_wrapper_cfg', None) or {})
    wrapper['type'] = 'CPUCompatibleDistributedDataParallel'
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
