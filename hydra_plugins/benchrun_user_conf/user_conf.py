"""Hydra search-path plugin: the user's own configs, layered over the ones benchrun ships.

benchrun's configs travel inside the package (benchrun/conf in a wheel, conf/ in a checkout).
A user keeps their own presets, workloads, hardware profiles and experiments where they work:
`./conf/<group>/NAME.yaml` and `./experiments/NAME.yaml` (or under the directory named by
$BENCHRUN_USER_DIR). They come first on the search path, so a file named like a shipped one
replaces it. Hydra finds this module by the `hydra_plugins` namespace."""
from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class BenchrunUserConf(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from benchrun.hydra_setup import conf_dir, user_search_path

        # Every Hydra app in this environment loads the plugin: act for benchrun's alone.
        ours = f"file://{conf_dir()}"
        if not any(e.path in (ours, str(conf_dir())) for e in search_path.get_path()):
            return
        for path in reversed(user_search_path()):  # prepend: the first listed ends up first
            search_path.prepend(provider="benchrun-user", path=f"file://{path}")
