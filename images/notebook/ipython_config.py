# twinhub: IPython's history is a SQLite file, which corrupts on NFS homes.
# The hub sets TWINHUB_IPYTHON_HIST_FILE to a path on local disk.
import os

_hist = os.environ.get("TWINHUB_IPYTHON_HIST_FILE")
if _hist:
    os.makedirs(os.path.dirname(_hist), exist_ok=True)
    c.HistoryManager.hist_file = _hist  # noqa: F821 - c is provided by IPython

# In a server the hub started, `twinhub_token` is already imported in every
# kernel: twinhub_token.access_token() is the user's current token (HBP's
# injected helper, without pasting anything).
if os.environ.get("JUPYTERHUB_API_TOKEN"):
    c.InteractiveShellApp.exec_lines = ["import twinhub_token"]  # noqa: F821
