"""Residents' page: calls to the property (a task) and the police (the console), notices, bad links."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from api.resident import resident_link
from closedloop.models import Notice, ResidentReport, Task
from store.stores import Stores
from tests.conftest import LiveServer, http_login

HOUSEHOLD = "wanhu-B002-1-101"


@pytest.mark.also_on_cluster
def test_a_resident_calls_the_property_and_the_police(world: Stores) -> None:
    with world.sessions.begin() as session:
        session.add(
            Notice(
                community_id="wanhu",
                grid_id=None,
                title="防范电信诈骗",
                body="不要向陌生人转账",
                created_by="police.wanhu",
            )
        )
    server = LiveServer(world.settings)
    try:
        link = resident_link(world, HOUSEHOLD, server.url)
        page = requests.get(link, timeout=30)
        assert page.status_code == 200 and "防范电信诈骗" in page.text and "呼叫物业" in page.text
        key = link.split("k=")[1]
        form = {"h": HOUSEHOLD, "k": key, "text": "楼道灯坏了 <script>alert(1)</script>", "contact": "13812345678"}
        sent = requests.post(server.url + "/resident/report", data=form | {"to": "property"}, timeout=30)
        assert sent.status_code == 200 and "已通知物业" in sent.text
        assert "<script>alert(1)</script>" not in sent.text
        police = requests.post(
            server.url + "/resident/report", data=form | {"to": "police", "text": "有人撬车"}, timeout=30
        )
        assert "已通知社区民警" in police.text
        empty = requests.post(server.url + "/resident/report", data=form | {"to": "police", "text": " "}, timeout=30)
        assert empty.status_code == 400
        forged = requests.get(f"{server.url}/resident?h={HOUSEHOLD}&k=0000", timeout=30)
        assert forged.status_code == 404
        console = http_login(server.url, "police.wanhu")
        assert console.get(server.url + "/console", timeout=30).status_code == 200
    finally:
        server.stop()
    with world.sessions() as session:
        reports = {r.to: r for r in session.scalars(select(ResidentReport))}
        assert set(reports) == {"property", "police"}
        task = session.scalars(select(Task).where(Task.report_id == reports["property"].id)).one()
        assert (task.assignee, task.kind, task.status) == ("property", "report", "offered")
