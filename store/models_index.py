"""Imports every module that declares tables, so Base.metadata knows them all."""

from registry import models as registry_models  # noqa: F401
