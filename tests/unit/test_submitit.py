"""The SLURM GPU launcher preset composes with the settings a cluster needs.
This half needs no server, process or socket; the rest is in tests/integration/test_submitit.py."""
from __future__ import annotations


def test_slurm_gpu_launcher_preset_composes_with_the_settings_a_cluster_needs(compose):
    cfg = compose(["hydra/launcher=slurm_gpu", "hydra.launcher.partition=gpu",
                   "hydra.launcher.timeout_min=30"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 1, 30)
    assert launcher.submitit_folder.startswith(cfg.hydra.sweep.dir)  # logs beside the results
