"""Imports every module that declares tables, so Base.metadata knows them all."""

from alerts import models as alert_models  # noqa: F401
from auth import models as auth_models  # noqa: F401
from closedloop import duty_models as duty_tables  # noqa: F401
from closedloop import models as loop_models  # noqa: F401
from gates import models as gate_models  # noqa: F401
from memory import case_models as case_tables  # noqa: F401
from memory import keyframes as keyframe_models  # noqa: F401
from memory import models as memory_models  # noqa: F401
from notify import models as notify_models  # noqa: F401
from registry import models as registry_models  # noqa: F401
from registry import modes as mode_models  # noqa: F401
from store import applied as applied_models  # noqa: F401
