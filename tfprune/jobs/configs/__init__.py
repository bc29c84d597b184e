"""The job configs: each job's dataclass, validated whole on construction, and the names its
script's flags choose from, importable without TensorFlow (the job modules import them back:
``from tfprune.jobs.prune import PruneConfig`` still works). A script parses its flags and
builds its config from here, then imports its job."""
