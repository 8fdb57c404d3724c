#!/usr/bin/env python
"""ntkexp entry point.

    python run.py                                    # the default: 100 NB201 nets (C16N5) on shipped CIFAR-10, NTK at init
    python run.py search_space=nasbench201 dataset=cifar10_npz metric=ntk bn_mode=eval n_archs=1000 \
        paths.data_root=../shared/data
    python run.py --multirun seed=0,1,2 metric=lga,ncn
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ntkexp.main import check_group_overrides, check_output_dirs, open_settings, register_schemas, run_cli
from ntkexp.registry import PluginError, load_plugins

try:  # installed plug-ins first, so that their metrics' settings are in the schema's defaults
    load_plugins()
except PluginError as err:
    print(f"ntkexp: error: {err}", file=sys.stderr)
    sys.exit(2)
register_schemas()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run_cli(cfg)


if __name__ == "__main__":
    sys.argv[1:] = open_settings(sys.argv[1:])
    try:
        check_group_overrides(sys.argv[1:], Path(__file__).parent / "conf")
        check_output_dirs(sys.argv[1:])
    except ValueError as err:
        print(f"ntkexp: error: {err}", file=sys.stderr)
        sys.exit(2)
    try:
        main()
    except SystemExit as done:
        import ntkexp.main

        if done.code == 1 and not ntkexp.main.COMPOSED:  # Hydra refused the config: bad settings, status 2 as ours
            sys.exit(2)
        raise
