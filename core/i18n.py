"""The translation table: every UI string, Chinese (default) and English."""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

# key: (中文, English)
TABLE: dict[str, tuple[str, str]] = {
    # shell
    "app.title": ("智慧安防小区数字沙盘", "Smart-Security Community Sand-Table"),
    "app.short": ("数字沙盘", "Sand-Table"),
    "nav.wall": ("态势大屏", "Wall screen"),
    "nav.console": ("警务工作台", "Police console"),
    "nav.tasks": ("我的任务", "My tasks"),
    "nav.city": ("全市总览", "City view"),
    "nav.reports": ("态势报告", "Reports"),
    "nav.admin": ("系统管理", "Administration"),
    "nav.login": ("登录", "Sign in"),
    "nav.logout": ("退出", "Sign out"),
    "lang.switch": ("English", "中文"),
    "community.label": ("小区", "Community"),
    "status.live": ("实时", "LIVE"),
    "status.offline": ("连接中断，正在重连…", "Connection lost, reconnecting…"),
    "status.updated": ("更新于", "Updated"),
    "wall.no_community": (
        "没有可显示的小区：请先导入登记数据 (manage.py demo)",
        "No community to show: import the registry first (manage.py demo)",
    ),
    "layer.floors": ("层", "floors"),
    "layer.households": ("户", "households"),
    # map layers
    "layer.basemap": ("底图", "Base map"),
    "layer.boundary": ("小区边界", "Boundary"),
    "layer.grids": ("网格", "Grids"),
    "layer.buildings": ("楼栋", "Buildings"),
    "layer.paths": ("道路", "Roads & paths"),
    "layer.devices": ("前端设备", "Front-end devices"),
    "layer.household_devices": ("户内设备", "In-home devices"),
    "layer.guards": ("万家卫士", "Guards"),
    "layer.alerts": ("警情", "Alerts"),
    "layer.patrol": ("巡更轨迹", "Patrol coverage"),
    "legend.title": ("图例", "Legend"),
    "legend.owner": ("自住房", "Owner-occupied"),
    "legend.rental": ("出租房", "Rental"),
    "legend.group_rental": ("群租房", "Group rental"),
    "legend.vacant": ("空置房", "Vacant"),
    "legend.elder": ("独居老人户", "Elder living alone"),
    "legend.public": ("公共建筑", "Public building"),
    "legend.online": ("在线", "Online"),
    "legend.offline": ("离线", "Offline"),
    # household categories
    "category.owner": ("自住", "Owner-occupied"),
    "category.rental": ("出租房", "Rental"),
    "category.group_rental": ("群租房", "Group rental"),
    "category.vacant": ("空置", "Vacant"),
    # device types
    "device.face_gate": ("人脸门禁", "Face gate"),
    "device.vehicle_gate": ("车辆道闸", "Vehicle barrier"),
    "device.camera": ("摄像机", "Camera"),
    "device.throw_camera": ("高空抛物相机", "Thrown-object camera"),
    "device.door_sensor": ("门磁", "Door sensor"),
    "device.smart_lock": ("智能门锁", "Smart lock"),
    "device.smoke_detector": ("烟感探测器", "Smoke detector"),
    "device.wearable": ("随身终端", "Wearable"),
    "device.checkpoint": ("巡更点", "Patrol checkpoint"),
    "device.intercom": ("可视对讲", "Video intercom"),
    # guard kinds
    "guard.police": ("民警", "Police"),
    "guard.auxiliary": ("辅警", "Auxiliary police"),
    "guard.grid_worker": ("网格员", "Grid worker"),
    "guard.volunteer": ("志愿者", "Volunteer"),
    "guard.security": ("保安", "Security"),
    # person tags
    "tag.elderly_alone": ("独居老人", "Elder living alone"),
    "tag.floating": ("流动人口", "Floating population"),
    "tag.key_person": ("重点人员", "Key person"),
    "tag.disabled": ("残障人士", "Disabled"),
    "tag.minor_alone": ("留守儿童", "Child left alone"),
    # key figures
    "kpi.residents": ("实有人口", "Residents"),
    "kpi.households": ("房屋", "Households"),
    "kpi.rentals": ("出租房", "Rentals"),
    "kpi.group_rentals": ("群租房", "Group rentals"),
    "kpi.elderly": ("独居老人", "Elders alone"),
    "kpi.devices_online": ("设备在线率", "Devices online"),
    "kpi.guards_on_duty": ("在岗卫士", "Guards on duty"),
    "kpi.open_alerts": ("未结警情", "Open alerts"),
    "kpi.buildings": ("楼栋", "Buildings"),
    # alerts
    "alert.feed": ("实时警情", "Live alerts"),
    "alert.none": ("暂无未结警情", "No open alerts"),
    "alert.type.elder.inactive": ("独居老人门磁超时未开关", "Elder: door not used"),
    "alert.type.elder.routine": ("独居老人作息异常预警", "Elder: routine overdue"),
    "alert.type.sensor.silent": ("门磁离线(无数据)", "Door sensor silent"),
    "alert.type.lock.unregistered": ("未登记人员开锁", "Unregistered person at lock"),
    "alert.type.tenant.unregistered": ("租客未登记", "Unregistered tenant"),
    "alert.type.watchlist.match": ("在逃人员比中", "Wanted person match"),
    "alert.type.device.offline": ("设备离线", "Device offline"),
    "alert.type.smoke": ("烟感报警", "Smoke alarm"),
    "alert.type.gate.blacklist": ("黑名单车辆", "Blacklisted vehicle"),
    "alert.type.visitor.unapproved": ("未审批访客", "Unapproved visitor"),
    "alert.type.patrol.missed": ("巡更漏检", "Patrol checkpoint missed"),
    "alert.type.throw": ("高空抛物", "Thrown object"),
    "alert.type.fall": ("人员跌倒", "Person fallen"),
    "severity.low": ("低", "Low"),
    "severity.medium": ("中", "Medium"),
    "severity.high": ("高", "High"),
    "severity.critical": ("紧急", "Critical"),
    "status.new": ("新警情", "New"),
    "status.acknowledged": ("已确认", "Acknowledged"),
    "status.dispatched": ("已派警", "Dispatched"),
    "status.on_scene": ("已到场", "On scene"),
    "status.resolved": ("已处置", "Resolved"),
    "status.false_alarm": ("误报", "False alarm"),
    "time.ago.s": ("{n}秒前", "{n}s ago"),
    "time.ago.m": ("{n}分钟前", "{n} min ago"),
    "time.ago.h": ("{n}小时前", "{n} h ago"),
    "time.ago.d": ("{n}天前", "{n} d ago"),
    # wall
    "wall.kpis": ("关键指标", "Key figures"),
    "wall.alerts_24h": ("24小时警情分布", "Alerts in the last 24 h"),
    "wall.response": ("处置响应时长(分钟, 近7天)", "Response times (min, last 7 days)"),
    "wall.no_data": ("暂无数据", "No data yet"),
    "wall.count": ("第{n}次", "×{n}"),
    "wall.grouped": ("{n}处同类警情", "{n} of this kind"),
    "wall.floor": ("{n}层", "Floor {n}"),
    "wall.unit": ("{n}单元", "Unit {n}"),
    "wall.drill.title": ("楼栋详情", "Building"),
    "wall.drill.residents": ("住户", "Residents"),
    "wall.drill.devices": ("设备", "Devices"),
    "wall.drill.close": ("关闭", "Close"),
    "wall.drill.hidden": ("大屏不显示个人信息", "Personal data is not shown on the wall screen"),
    "wall.guards_active": ("{n}名在岗", "{n} on duty"),
    "wall.devices_reported": ("已接入{n}台", "{n} reporting"),
    "stage.acknowledged": ("确认", "Acknowledge"),
    "stage.dispatched": ("派警", "Dispatch"),
    "stage.on_scene": ("到场", "On scene"),
    "stage.resolved": ("办结", "Resolved"),
    "severity.label": ("等级", "Severity"),
    # login
    "login.title": ("用户登录", "Sign in"),
    "login.username": ("用户名", "Username"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.failed": ("用户名或密码错误", "Wrong username or password"),
    "login.locked": ("登录失败次数过多，请稍后再试", "Too many failed attempts; try again later"),
    "login.required": ("请先登录", "Please sign in"),
    # errors
    "error.forbidden": ("无权访问", "Access denied"),
    "error.not_found": ("未找到", "Not found"),
    "error.generic": ("操作失败", "Something went wrong"),
}


def t(key: str, lang: str = "zh", **values: object) -> str:
    """The text of key in lang (Chinese by default); an unknown key shows itself."""
    pair = TABLE.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "en" else pair[0]
    return text.format(**values) if values else text


def normalize_lang(value: str | None, default: Lang = "zh") -> Lang:
    """'zh' or 'en' from a cookie or query value."""
    if value == "en":
        return "en"
    if value == "zh":
        return "zh"
    return default
