"""Water and power meters (issue 23): the catalogue takes their readings and says why it refuses one;
any sign of life (water, power above the fridge) resets an elder's watch; elder.no_water for an
elder watched by a water meter alone, and away mode pausing it. Through the real ingest and worker."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete

from auth.principal import Principal
from core.timefmt import iso_utc
from registry.models import Device
from store.stores import Stores
from tests import test_rules
from tests.test_rules import T0, H, Ids, M, Scenario, door
from upkeep.modes import Modes

ids = test_rules.ids  # the demo world's devices and identities (a fixture)
POLICE = Principal(kind="user", id="police.wanhu", role="police", community="wanhu", name="police")


def water_meter(ids: Ids) -> str:
    return ids.sensor.replace("DS-", "WM-", 1)


def power_meter(ids: Ids) -> str:
    return ids.sensor.replace("DS-", "PM-", 1)


def water(ids: Ids, ts: int, litres: float) -> dict[str, Any]:
    return {"type": "meter.water", "device": water_meter(ids), "ts": ts, "data": {"litres": litres}}


def power(ids: Ids, ts: int, **data: Any) -> dict[str, Any]:
    return {"type": "meter.power", "device": power_meter(ids), "ts": ts, "data": data}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"type": "meter.water", "data": {"litres": 3.5}}, None),
        ({"type": "meter.water", "data": {"litres": 0}}, None),
        ({"type": "meter.water", "data": {}}, "data.litres is required (litres since the meter's last reading)"),
        ({"type": "meter.water", "data": {"litres": -1}}, "data.litres must be between 0 and 100000"),
        ({"type": "meter.water", "data": {"litres": "3"}}, "data.litres must be a number"),
        ({"type": "meter.power", "data": {"watts": 1800}}, None),
        ({"type": "meter.power", "data": {"wh": 12.5}}, None),
        ({"type": "meter.power", "data": {}}, "data.watts (mean power since the last reading) or data.wh"),
        ({"type": "meter.power", "data": {"watts": -5}}, "data.watts must be between 0 and 50000"),
        ({"type": "meter.power", "data": {"wh": True}}, "data.wh must be a number"),
    ],
)
def test_meter_readings_are_accepted_or_refused_with_their_reason(
    world: Stores, ids: Ids, event: dict[str, Any], reason: str | None
) -> None:
    device = water_meter(ids) if event["type"] == "meter.water" else power_meter(ids)
    result = Scenario(world).ingest.ingest("wanhu", [{**event, "device": device, "ts": T0}])
    if reason is None:
        assert result.accepted == 1 and result.rejected == []
    else:
        assert result.accepted == 0 and result.rejected[0]["error"].startswith(reason)


def test_a_meter_reading_from_another_device_type_is_refused(world: Stores, ids: Ids) -> None:
    result = Scenario(world).ingest.ingest("wanhu", [{**water(ids, T0, 2.0), "device": power_meter(ids)}])
    assert result.rejected[0]["error"] == "a power_meter may not send meter.water"


@pytest.mark.parametrize(
    ("reading", "expect_open"),
    [
        (lambda ids, ts: water(ids, ts, 6.0), 0),  # a toilet flush: alive
        (lambda ids, ts: water(ids, ts, 0.0), 1),  # no water: no sign
        (lambda ids, ts: power(ids, ts, watts=420.0), 0),  # the kettle
        (lambda ids, ts: power(ids, ts, wh=100.0), 0),  # 400 W over a 15-minute reading
        (lambda ids, ts: power(ids, ts, watts=80.0), 1),  # the fridge and standby alone
    ],
)
def test_a_meter_reading_resets_the_elder_watch(world: Stores, ids: Ids, reading: Any, expect_open: int) -> None:
    s = Scenario(world).at(0, door(ids, T0))
    s.at(8 * H, reading(ids, T0 + 8 * H))
    s.at(13 * H)
    assert len(s.open("elder.inactive")) == expect_open  # the door alone would have alerted at 12 h
    if not expect_open:
        s.at(20 * H + M)
        [alert] = s.open("elder.inactive")
        assert alert["detected_at"] == iso_utc(T0 + 20 * H)  # 12 h after the reading
        assert alert["evidence"]["last_sign_at"] == iso_utc(T0 + 8 * H)


def test_water_clears_an_open_inactivity_alert(world: Stores, ids: Ids) -> None:
    s = Scenario(world).at(0, door(ids, T0))
    s.at(13 * H)
    assert len(s.open("elder.inactive")) == 1
    s.at(13 * H + M, water(ids, T0 + 13 * H + M, 1.5))
    assert s.open("elder.inactive") == []


# --- elder.no_water: an elder watched by a water meter alone ----------------------------------


@pytest.fixture
def meter_only(world: Stores, ids: Ids) -> Ids:
    """The elder's flat without its door sensor: a community with meters and no door sensors."""
    with world.sessions.begin() as session:
        session.execute(delete(Device).where(Device.id == ids.sensor))
    return ids


def test_no_water_fires_after_12_hours_with_less_than_10_litres(world: Stores, meter_only: Ids) -> None:
    s = Scenario(world).at(0, water(meter_only, T0, 6.0))
    s.at(3 * H, water(meter_only, T0 + 3 * H, 3.0))  # 9 L in all: less than 10 L
    s.at(12 * H - M)
    assert s.open("elder.no_water") == []
    s.at(12 * H + M)
    [alert] = s.open("elder.no_water")
    assert alert["severity"] == "high" and alert["subject"]["person"] == meter_only.elder
    assert alert["evidence"]["litres_in_window"] == 3.0  # the 6 L of T0 left the window at 12 h
    assert s.open("elder.inactive") == []  # no door sensor: the door rule has nothing to watch
    s.at(13 * H, water(meter_only, T0 + 13 * H, 2.0))
    assert s.open("elder.no_water") == []  # the next water clears it


def test_no_water_stays_silent_with_10_litres_or_more(world: Stores, meter_only: Ids) -> None:
    s = Scenario(world).at(0, water(meter_only, T0, 1.0))
    for hour in (4, 8, 12, 16, 20):
        s.at(hour * H, water(meter_only, T0 + hour * H - 15 * M, 0.0), water(meter_only, T0 + hour * H, 6.0))
    s.at(23 * H)
    assert s.open("elder.no_water") == []


def test_an_elder_with_a_door_sensor_gets_no_water_alert(world: Stores, ids: Ids) -> None:
    s = Scenario(world).at(0, door(ids, T0), water(ids, T0, 2.0))
    s.at(13 * H)
    assert s.open("elder.no_water") == []  # elder.inactive watches this elder, water included
    assert len(s.open("elder.inactive")) == 1


def test_away_mode_pauses_no_water_and_the_watch_resumes_from_its_end(world: Stores, meter_only: Ids) -> None:
    s = Scenario(world).at(0, water(meter_only, T0, 6.0))
    Modes(world, s.clock).start(POLICE, "away", meter_only.elder, T0 + 20 * H, "with family")
    s.at(19 * H)
    assert s.open("elder.no_water") == []  # due at 12 h: away
    s.at(31 * H)
    assert s.open("elder.no_water") == []  # counted from the end of the away time (20 h)
    s.at(32 * H + M)
    [alert] = s.open("elder.no_water")
    assert alert["detected_at"] == iso_utc(T0 + 32 * H)
