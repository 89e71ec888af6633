"""The automatic search (`python -m lib.search`): the study, its trials and best.json (study.py), its
journal file (journal.py) and the dask workers that run the trials (cluster.py)."""
