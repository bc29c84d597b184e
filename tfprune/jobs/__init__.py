"""Jobs: validated configs, run directories and metrics files over the library.

Each job validates its whole config before any training, writes its run directory atomically
(config.json first, the file that marks it finished last) and resumes a rerun. Nothing below
this package knows about run directories, configs or flags.
"""
