# twinhub: IPython's history is a SQLite file, which corrupts on NFS homes.
# The hub sets TWINHUB_IPYTHON_HIST_FILE to a path on local disk.
import os

_hist = os.environ.get("TWINHUB_IPYTHON_HIST_FILE")
if _hist:
    os.makedirs(os.path.dirname(_hist), exist_ok=True)
    c.HistoryManager.hist_file = _hist  # noqa: F821 - c is provided by IPython
