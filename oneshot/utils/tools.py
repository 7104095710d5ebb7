"""Small helpers shared by the command-line tools."""
import os.path as osp
from typing import Optional

from mmengine.config import Config


def resolve_work_dir(cfg: Config, config_path: str,
                     work_dir: Optional[str]) -> str:
    """Work-dir priority as in mmdet: CLI flag > config > ./work_dirs/NAME.

    Args:
        cfg (Config): The loaded config.
        config_path (str): Path of the config file (its stem names the
            default work dir).
        work_dir (str, optional): The ``--work-dir`` flag.

    Returns:
        str: The work dir to use.
    """
    if work_dir is not None:
        return work_dir
    if cfg.get('work_dir', None) is not None:
        return cfg.work_dir
    return osp.join('./work_dirs',
                    osp.splitext(osp.basename(config_path))[0])
