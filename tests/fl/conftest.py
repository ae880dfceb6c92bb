"""Federated tests: Flower's telemetry and update checks off before flwr is imported."""

import os

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
os.environ["FLWR_DISABLE_UPDATE_CHECK"] = "1"
os.environ.setdefault("FLWR_LOG_LEVEL", "WARNING")

import pytest  # noqa: E402

pytest.importorskip("flwr")
