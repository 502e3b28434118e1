"""All of Sandtable's settings, in one pydantic-settings class (env prefix ``SANDTABLE_``)."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
ROLE_NAMES = ("admin", "police", "grid_worker", "guard", "property", "wall")  # auth.principal.ROLES, checked by a test


class Settings(BaseSettings):
    """Every tunable of the system; nothing else reads the environment."""

    model_config = SettingsConfigDict(env_prefix="SANDTABLE_", extra="forbid", validate_default=True, frozen=True)

    # --- stores -------------------------------------------------------------------------
    redis_url: str | None = Field(
        default=None, description="Redis URL (redis://, rediss://, or redis+cluster://); unset = embedded server"
    )
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; unset = SQLite at var/sandtable.db")
    var_dir: Path = Field(default=ROOT / "var", description="where embedded stores keep their data")
    embedded_redis_port: int = Field(default=6390, ge=1, le=65535)
    key_prefix: str = Field(default="st", pattern=r"^[a-z][a-z0-9_]{0,15}$")

    # --- web ----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8050, ge=1, le=65535)
    web_workers: int = Field(default=1, ge=1, le=64)
    web_threads: int = Field(default=8, ge=1, le=256)
    secret_key: str | None = Field(
        default=None, description="signs session cookies and keys ID hashes; unset = generated once into var/"
    )
    session_hours: float = Field(default=12.0, gt=0)
    default_lang: Literal["zh", "en"] = "zh"
    refresh_seconds: float = Field(default=2.0, gt=0.1, le=60)

    # --- map ----------------------------------------------------------------------------
    tile_url: str | None = Field(default=None, description="intranet XYZ tile URL template; unset = vector basemap")
    tile_crs: Literal["wgs84", "gcj02"] = "wgs84"
    tile_attribution: str = ""
    wall_view: Literal["2d", "3d"] = Field(
        default="2d", description="the wall's view when it opens (?view=2d|3d in the address overrides it)"
    )
    wall_3d_turn_seconds: float = Field(
        default=240.0,
        ge=0,
        le=3600,
        description="kiosk: seconds per turn of the 3D model while no alert is new; 0 = still",
    )

    # --- ingest -------------------------------------------------------------------------
    ingest_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    ingest_max_batch: int = Field(default=1000, ge=1)
    ingest_rate_per_minute: int = Field(default=600, ge=1, description="requests per token per minute")
    future_tolerance_s: int = Field(default=300, ge=0)
    ingest_max_age_days: float = Field(
        default=30.0,
        gt=0,
        le=3650,
        description="events older than this are refused (kept in the dead letters with the reason); replay is exempt",
    )
    dedup_hours: int = Field(default=24, ge=1)
    dead_letter_max_bytes: int = Field(
        default=4096,
        ge=2048,  # room for a truncated entry's reason and small fields at their caps (store/events.py)
        le=65_536,
        description="a rejected or poison event is kept whole up to this much JSON; a larger one is kept "
        "truncated (reason, small fields, the head of its data, its original size) and counted",
    )
    dead_letter_budget_mb: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="per community: the dead-letter stream keeps the newest entries that fit this budget "
        "(its length is capped at this / SANDTABLE_DEAD_LETTER_MAX_BYTES)",
    )
    stream_maxlen: int = Field(default=200_000, ge=1000, description="soft cap; never trims unacknowledged entries")

    # --- workers ------------------------------------------------------------------------
    worker_batch: int = Field(default=500, ge=1)
    worker_batch_max: int = Field(
        default=4000, ge=1, description="in a backlog the batch doubles after each full read, up to this many entries"
    )
    worker_block_ms: int = Field(default=1000, ge=1)
    archive_batch: int = Field(default=2000, ge=1, description="stream entries the archiver copies to SQL per pass")
    archive_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="the archive process's CPU niceness: in a burst it gives the cores to ingest and the analytics "
        "(the alert path) and catches up after them; 0 shares them equally",
    )
    archive_in_workers: bool = Field(
        default=False,
        description="the analytics workers also copy the events into the archive and keep the state keyframes "
        "(one process for everything); by default manage.py archive does, a process of its own (make run starts it)",
    )
    # the sand-table at any moment (memory/state.py): a keyframe every N minutes, events forward from it
    keyframe_minutes: int = Field(default=10, ge=1, le=1440, description="minutes between state keyframes")
    worker_cluster_block_ms: int = Field(
        default=100, ge=1, description="on a Redis Cluster: the longest a worker blocks on one slot group when idle"
    )
    worker_claim_idle_ms: int = Field(default=30_000, ge=100)
    worker_max_deliveries: int = Field(default=5, ge=1)

    # --- rules --------------------------------------------------------------------------
    elder_inactive_hours: float = Field(default=12.0, gt=0)
    # signs of life from the flat's meters (docs/rules.md "Signs of life"): a power reading above this
    # mean is an appliance switched on (the fridge and standby stay below it); a reading given as
    # ``wh`` is taken over meter_reading_minutes
    elder_power_active_watts: float = Field(default=150.0, gt=0)
    meter_reading_minutes: float = Field(default=15.0, gt=0, description="the interval of a wh power reading")
    # elder.no_water: less than this many litres in elder_no_water_hours (the water companies' 0.01 m³ in 12 h)
    elder_no_water_litres: float = Field(default=10.0, gt=0)
    elder_no_water_hours: float = Field(default=12.0, gt=0)
    sensor_silent_hours: float = Field(default=2.0, gt=0)
    device_offline_hours: float = Field(default=1.0, gt=0)
    sweep_seconds: float = Field(default=30.0, gt=0)
    # elder.routine (docs/rules.md): the allowed gap after a door use in local hour h is
    # quantile(gaps that started within routine_pool_hours of h) × margin + slack, at least the
    # floor; at or beyond the elder's fixed threshold the routine rule stays silent
    routine_min_history_days: float = Field(default=7.0, ge=1, description="door history needed before alerting")
    routine_quantile: float = Field(default=0.98, gt=0.5, le=1.0)
    routine_margin: float = Field(default=1.5, ge=1.0, description="multiplies the learned gap quantile")
    routine_slack_minutes: float = Field(default=90.0, ge=0, description="added to the learned gap")
    routine_floor_hours: float = Field(default=2.0, gt=0, description="the allowed gap is never shorter")
    routine_window: int = Field(default=80, ge=5, le=500, description="newest gaps kept per local hour")
    routine_pool_hours: int = Field(default=1, ge=0, le=6, description="neighbouring hours pooled on each side")
    routine_min_samples: int = Field(default=20, ge=1, description="pooled gaps needed before an hour may alert")
    routine_merge_minutes: float = Field(default=10.0, ge=0, description="door events this close are one use")
    # weekly habits (docs/rules.md): silences of at least routine_long_hours are remembered 4 weeks;
    # one that began at this weekday and time (± routine_pool_hours) in routine_weekly_min of them
    # allows its length plus the slack; 0 turns the weekly habits off
    routine_long_hours: float = Field(
        default=3.0, gt=0, description="a silence this long is remembered for the weekly habits"
    )
    routine_weekly_min: int = Field(default=2, ge=0, le=4, description="weeks of the last 4 that make a weekly habit")
    tenant_days: int = Field(default=2, ge=1, description="days an unregistered opener is seen before tenant alert")
    tenant_window_days: int = Field(default=7, ge=1)
    stream_backlog_limit: int = Field(default=2_000_000, ge=0, description="0 = no limit")
    stream_retain_minutes: int = Field(default=60, ge=0, description="acknowledged events kept for inspection")

    # --- closed loop --------------------------------------------------------------------
    dispatch_accept_minutes: float = Field(default=3.0, gt=0, description="re-dispatch when not accepted in time")
    walking_speed_m_s: float = Field(default=1.25, gt=0)
    geofence_m: float = Field(default=30.0, gt=0, description="arrival is recorded inside this radius")
    sla_ack_minutes: dict[str, float] = Field(
        default={"critical": 2, "high": 5, "medium": 15, "low": 60}, description="per severity"
    )
    sla_dispatch_minutes: float = Field(default=10.0, gt=0)
    sla_arrive_minutes: float = Field(default=15.0, gt=0)
    sla_close_minutes: float = Field(default=60.0, gt=0)
    duty_checkin_hours: float = Field(
        default=12.0,
        gt=0,
        le=72,
        description="a check-in on the tasks page counts as on duty this long without a check-out",
    )

    # --- the demo's simulator ------------------------------------------------------------
    simulate_people: bool = Field(
        default=True,
        description="the simulator also plays the people (operator, guards, property) who handle alerts",
    )

    # --- reports ------------------------------------------------------------------------
    report_max_days: int = Field(default=366, ge=1, description="longest period one report may cover")
    report_daily_at: str = Field(
        default="07:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="local time of the daily PDFs"
    )
    report_daily_enabled: bool = True
    report_daily_batch: int = Field(default=4, ge=1, description="daily PDFs rendered per sweep at most")
    report_daily_wait_minutes: int = Field(
        default=60,
        ge=0,
        description="a community with no event after the day's end (quiet, or not sending yet) gets its daily "
        "report this long after it was due",
    )
    report_daily_recheck_minutes: int = Field(
        default=10, ge=1, description="how often the recent daily reports are checked for late data"
    )
    report_daily_recheck_days: int = Field(
        default=3, ge=1, le=31, description="how many recent days of daily reports are checked for late data"
    )
    report_pdf_max_rows: int = Field(
        default=400, ge=10, description="rows of a long table shown in the PDF (CSV/XLSX hold them all)"
    )
    report_map_limit: int = Field(default=12, ge=1, description="more communities than this: one overview map")
    report_keep_hours: float = Field(default=24.0, gt=0, description="how long reports made on the page are kept")
    report_font_regular: Path = Field(
        default=Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
        description="CJK font of the PDFs (Debian package fonts-noto-cjk)",
    )
    report_font_bold: Path = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")

    # --- retention (PIPL, issue #19): days each data class is kept (memory/retention.py) ----
    retain_events_days: int = Field(
        default=180, ge=1, le=36_500, description="archived events: kept, and searchable, this long; then purged"
    )
    retain_evidence_days: int = Field(
        default=90, ge=1, le=36_500, description="evidence images (unless pinned by a case still kept)"
    )
    retain_gate_captures_days: int = Field(
        default=90, ge=1, le=36_500, description="gate passages, plate captures and lock openings (identities)"
    )
    retain_visitor_passes_days: int = Field(default=30, ge=1, le=36_500, description="visitor passes, after expiry")
    retain_alerts_days: int = Field(
        default=365, ge=1, le=36_500, description="closed alerts, their steps, tasks, resident reports, notifications"
    )
    retain_cases_days: int = Field(default=1825, ge=1, le=36_500, description="case files, after they are closed")
    retain_audit_days: int = Field(default=1095, ge=1, le=36_500, description="the audit log")
    retain_heartbeats_full_days: int = Field(
        default=7, ge=1, le=36_500, description="then heartbeats: one per device per hour, and every change"
    )
    purge_daily_at: str = Field(
        default="03:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="local time of the nightly purge"
    )
    purge_daily_enabled: bool = True
    scheduled_jobs: Literal["workers", "timers"] = Field(
        default="workers",
        description="who runs the daily reports and the nightly purge: the analytics workers (what make run "
        "uses), or systemd timers calling manage.py daily-reports and manage.py purge (deploy/, docs/operations.md)",
    )

    # --- the wanted list -----------------------------------------------------------------
    watchlist_visible_to: str = Field(
        default="police",
        description="roles (comma-separated) that see wanted-list hits and notes besides admins; empty = admins only",
    )

    # --- login --------------------------------------------------------------------------
    # a lock per account and client address, doubling (auth/lockout.py); per account, a slow-down only
    login_max_failures: int = Field(
        default=5, ge=1, description="wrong passwords from one client address before that address is locked out"
    )
    login_lockout_minutes: int = Field(
        default=15, ge=1, description="the first lock of an account for one address; each further lock doubles"
    )
    login_lockout_max_minutes: int = Field(
        default=24 * 60, ge=1, description="the longest lock, and how long an address's failures are remembered"
    )
    login_account_max_failures: int = Field(
        default=20, ge=1, description="failures of one account from all addresses in a window before it is slowed"
    )
    login_account_window_minutes: int = Field(default=15, ge=1)
    login_account_delay_seconds: int = Field(
        default=5, ge=1, le=60, description="on a slowed account: the wait before each attempt from each address"
    )
    login_rate_per_minute: int = Field(default=30, ge=1, description="login attempts per client address per minute")

    # --- visitors' self-applications (public page /visit) -------------------------------
    visit_rate_per_hour: int = Field(
        default=20,
        ge=1,
        description="visitors' applications (every POST /visit, good or bad) per client address per hour; "
        "residents' invitations (POST /resident/invite) have a bucket of this size per address as well",
    )
    invite_rate_per_hour: int = Field(
        default=10, ge=1, description="residents' visitor invitations (POST /resident/invite) per household per hour"
    )

    # --- incidents and residents' calls (issue 18) -----------------------------------------
    resident_calls_per_hour: int = Field(
        default=10,
        ge=1,
        description="residents' calls (POST /resident/report, property or police) per household per hour",
    )
    battery_low_percent: float = Field(
        default=20.0,
        ge=0,
        le=100,
        description="device.battery_low: a heartbeat's battery at or below this percentage raises the alert",
    )

    # --- reverse proxy --------------------------------------------------------------------
    trusted_proxies: str = Field(
        default="",
        description="comma-separated addresses or networks (CIDR) of the reverse proxies in front of the web app; "
        "only a request from one of them has its client address taken from X-Forwarded-For (empty: none)",
    )

    # --- operations (issue #25, docs/operations.md): what manage.py doctor warns about ----------
    clock_skew_warn_seconds: float = Field(
        default=2.0, gt=0, description="doctor warns when this host's clock and Redis's TIME differ by more"
    )
    disk_free_warn_percent: float = Field(
        default=10.0,
        ge=0,
        le=100,
        description="doctor warns when the disk of the Redis AOF or of the evidence has less free space than this",
    )
    tls_certs: str = Field(
        default="",
        description="comma-separated paths of PEM certificates (the reverse proxy's) whose expiry doctor checks",
    )
    tls_cert_warn_days: int = Field(default=21, ge=1, description="doctor warns this many days before expiry")

    # --- notifications (issue #18, interfaces §8; docs/closed-loop.md "Notifications") ------
    notify_allowed_networks: str = Field(
        default="",
        description="comma-separated networks (CIDR) a webhook or SMS gateway may be on although they are "
        "loopback, private or otherwise not public (e.g. the station's intranet); empty: public addresses only",
    )
    notify_supervisors: str = Field(
        default="",
        description="comma-separated usernames of the station supervisors (police or admin accounts): a missed "
        "SLA (the closed loop's escalation) is notified to them",
    )
    notify_retry_hours: float = Field(default=24.0, gt=0, description="a delivery failing this long is dead")
    notify_backoff_seconds: float = Field(default=2.0, gt=0, description="the first retry's delay; doubles")
    notify_backoff_max_seconds: float = Field(default=300.0, gt=0, description="the longest delay between retries")
    notify_timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="one webhook or SMS request")
    notify_concurrency: int = Field(default=32, ge=1, le=512, description="requests in flight per sender")
    notify_lease_seconds: float = Field(
        default=120.0, gt=0, description="a delivery claimed by a sender that died is taken up again after this"
    )
    notify_poll_seconds: float = Field(default=0.2, gt=0, le=60, description="the sender's pause when idle")
    notify_batch: int = Field(default=500, ge=1, description="deliveries one sender claims at a time")

    # --- metrics (issue #25, GET /metrics; docs/metrics.md) ---------------------------------
    metrics_dir: Path | None = Field(
        default=None,
        description="where the web app's, the workers', the sender's and the video watcher's processes write "
        "their figures (prometheus_client's multiprocess files), one folder per running service; GET /metrics "
        "reads them all; unset = var/metrics",
    )
    metrics_allow: str = Field(
        default="127.0.0.0/8,::1",
        description="comma-separated addresses or networks (CIDR) whose clients may read GET /metrics without "
        "a token (empty: none)",
    )
    metrics_token: str | None = Field(
        default=None,
        min_length=16,
        description="a bearer token (at least 16 characters) that opens GET /metrics from any address "
        "(Authorization: Bearer TOKEN); unset: only SANDTABLE_METRICS_ALLOW's networks",
    )

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def metrics_directory(self) -> Path:
        """Where the processes' figures live."""
        return self.metrics_dir or self.var_dir / "metrics"

    @property
    def metrics_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The networks that may read GET /metrics without a token."""
        return _networks(self.metrics_allow)

    @field_validator("trusted_proxies", "notify_allowed_networks", "metrics_allow")
    @classmethod
    def _check_networks(cls, value: str) -> str:
        for item in filter(None, (v.strip() for v in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as err:
                raise ValueError(f"{item!r} is not an IP address or network") from err
        return value

    @property
    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The trusted proxies as networks."""
        return _networks(self.trusted_proxies)

    @property
    def notify_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The non-public networks a notification target may be on."""
        return _networks(self.notify_allowed_networks)

    @property
    def supervisors(self) -> frozenset[str]:
        """The usernames of the station supervisors."""
        return frozenset(v.strip() for v in self.notify_supervisors.split(",") if v.strip())

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://", "redis+cluster://")):
            raise ValueError("must start with redis://, rediss://, unix:// or redis+cluster://")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None

        try:
            make_url(value)
        except ArgumentError as err:
            raise ValueError("is not a SQLAlchemy database URL") from err
        return value

    @field_validator("watchlist_visible_to")
    @classmethod
    def _check_watchlist_roles(cls, value: str) -> str:
        roles = [r.strip() for r in value.split(",") if r.strip()]
        unknown = [r for r in roles if r not in ROLE_NAMES]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a role (roles: {', '.join(ROLE_NAMES)})")
        return ",".join(roles)

    @property
    def watchlist_roles(self) -> frozenset[str]:
        """The roles that see wanted-list hits and notes (admins always do)."""
        return frozenset(r for r in self.watchlist_visible_to.split(",") if r)

    @property
    def sqlite_path(self) -> Path:
        """Where the embedded SQLite database lives."""
        return self.var_dir / "sandtable.db"

    @property
    def effective_database_url(self) -> str:
        """The configured database, or the embedded SQLite file."""
        return self.database_url or f"sqlite:///{self.sqlite_path}"


def _networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in value.split(",") if v.strip())


ENV_PREFIX = "SANDTABLE_"
NOT_SETTINGS = ("SANDTABLE_TEST_", "SANDTABLE_BENCH_")  # the test suite's and the benchmarks' own variables


def unknown_variables() -> list[str]:
    """SANDTABLE_ variables in the environment that name no setting (misspelt, or retired)."""
    return sorted(
        name
        for name in os.environ
        if name.upper().startswith(ENV_PREFIX)
        and not name.upper().startswith(NOT_SETTINGS)
        and name[len(ENV_PREFIX) :].lower() not in Settings.model_fields
    )


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; a bad value, or a SANDTABLE_ variable that names no
    setting, raises ConfigError naming it."""
    unknown = unknown_variables()
    if unknown:
        raise ConfigError(f"{unknown[0]}: no such setting (misspelt?); the settings are listed in core/settings.py")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        first = err.errors()[0]
        name = "SANDTABLE_" + "_".join(str(p) for p in first["loc"]).upper()
        raise ConfigError(f"{name}: {first['msg']}") from err


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
