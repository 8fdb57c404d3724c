"""The scoring layer, below tasks and search: the typed run context, the conventions and cache keys, the arch
scorer (at initialisation and after training, one error policy, typed records), arch selection and progress."""

from ntkexp.scoring.context import RunContext, build_space, device_name, resolve_device, to_run_config
from ntkexp.scoring.keys import SCORE_SCHEMA, cache_key, fingerprint
from ntkexp.scoring.progress import Progress
from ntkexp.scoring.scorer import ArchScorer, DataDraw, NothingScored, ScoreRecord, TrackRecord, score_archs, scoring_counts
from ntkexp.scoring.selection import band_archs, choose_archs, decile_pool, read_arch_file

__all__ = ["SCORE_SCHEMA", "ArchScorer", "DataDraw", "NothingScored", "Progress", "RunContext", "ScoreRecord", "TrackRecord",
           "band_archs", "build_space", "cache_key", "choose_archs", "decile_pool", "device_name", "fingerprint",
           "read_arch_file", "resolve_device", "score_archs", "scoring_counts", "to_run_config"]
