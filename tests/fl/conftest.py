"""Federated tests: Flower's telemetry and update checks off before flwr is imported."""

import importlib.util
import os

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
os.environ["FLWR_DISABLE_UPDATE_CHECK"] = "1"
os.environ.setdefault("FLWR_LOG_LEVEL", "WARNING")

if importlib.util.find_spec("flwr") is None:  # the 'fl' extra is not installed: nothing here can run
    collect_ignore_glob = ["test_*.py"]
