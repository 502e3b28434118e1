/* Sandtable's browser-side functions: map styling (dash-leaflet functional props) and UI helpers.
   Served locally from assets/; nothing here reaches the internet. */
window.sandtable = window.sandtable || {};

(function (st) {
  "use strict";

  // the city view: a community's most serious open alert (the same colours as the CSS variables)
  var CITY_COLORS = {critical: "#ff1f5a", high: "#ff5a36", medium: "#ffb020", low: "#4fc3f7", none: "#35d07f"};

  var CATEGORY_COLORS = {
    owner: "#8a94a6",
    rental: "#2f7bff",        // 出租房: blue, as on the station's sand-table
    group_rental: "#00c8ff",
    vacant: "#4a5263",
    public: "#d9b45a"
  };

  st.clockText = function () {
    var fmt = new Intl.DateTimeFormat("zh-CN", {
      timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
    });
    return fmt.format(new Date());
  };

  st.escape = function (text) {
    return String(text == null ? "" : text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  };

  // a device's last reported battery for its popup: "<br>电量 15% · 低电量 · 12-06 14:03 上报"
  st.batteryNote = function (p, lang) {
    if (p.battery == null) { return ""; }
    var en = lang === "en";
    var low = p.battery_low ? " · <b class='st-battery-low'>" + (en ? "low battery" : "低电量") + "</b>" : "";
    var at = p.battery_at ? " · " + (en ? "reported " + st.escape(p.battery_at) : st.escape(p.battery_at) + " 上报") : "";
    return "<br>" + (en ? "battery " : "电量 ") + st.escape(p.battery) + "%" + low + at;
  };

  st.map = {
    basemapStyle: function (feature) {
      var k = feature.properties.kind;
      if (k === "land") return {fillColor: "#0e1726", fillOpacity: 1, stroke: false};
      if (k === "water") return {fillColor: "#123a5c", fillOpacity: 0.9, color: "#1d5b8c", weight: 1};
      if (k === "park") return {fillColor: "#10301f", fillOpacity: 0.8, stroke: false};
      if (k === "main") return {color: "#3a4a66", weight: 7, opacity: 0.9};
      if (k === "secondary") return {color: "#2f3d55", weight: 4, opacity: 0.9};
      return {color: "#26334a", weight: 2, opacity: 0.8};
    },
    boundaryStyle: function () {
      return {color: "#38e1ff", weight: 2.5, dashArray: "8 6", fillColor: "#0b2a3d", fillOpacity: 0.35};
    },
    gridStyle: function (feature) {
      var c = feature.properties.color || "#5b8def";
      return {color: c, weight: 1.5, dashArray: "4 4", fillColor: c, fillOpacity: 0.06};
    },
    pathStyle: function (feature) {
      var k = feature.properties.kind;
      if (k === "road") return {color: "#44557a", weight: 4, opacity: 0.9};
      if (k === "gate") return {color: "#38e1ff", weight: 4, opacity: 0.9};
      return {color: "#2c3a55", weight: 2, opacity: 0.9};
    },
    buildingStyle: function (feature, context) {
      var p = feature.properties;
      var cat = p.kind === "public" ? "public" : (p.category || "owner");
      var style = {
        color: p.elder ? "#ffb020" : "#0b1220", weight: p.elder ? 2 : 1,
        fillColor: CATEGORY_COLORS[cat] || CATEGORY_COLORS.owner, fillOpacity: 0.85,
        className: "st-bld st-cat-" + cat + (p.elder ? " st-elder" : "")
      };
      var h = (context && context.hideout) || {};
      if (h.selected && h.selected === p.id) { style.color = "#ffffff"; style.weight = 3; }
      return style;
    },
    coverageStyle: function (feature, context) {
      // a camera's field of view: a translucent sector in its device colour
      var colors = ((context && context.hideout) || {}).colors || {};
      var c = colors[feature.properties.type] || "#9b8cff";
      return {color: c, weight: 1, opacity: 0.6, fillColor: c, fillOpacity: 0.18, className: "st-fov st-fov-" + feature.properties.type};
    },
    hoverStyle: function () { return {weight: 3, color: "#ffffff"}; },
    buildingTooltip: function (feature, layer, context) {
      var p = feature.properties;
      var en = context && context.hideout && context.hideout.lang === "en";
      var parts = [st.escape((en && p.name_en) || p.name || p.id)];
      if (p.floors) parts.push(p.floors + (en ? " floors" : "层"));
      if (p.households) parts.push(p.households + (en ? " households" : "户"));
      if (p.rentals) parts.push((en ? "rentals " : "出租 ") + p.rentals);
      if (p.group_rentals) parts.push((en ? "group rentals " : "群租 ") + p.group_rentals);
      if (p.elder) parts.push((en ? "elders alone " : "独居老人 ") + p.elder);
      layer.bindTooltip(parts.join(" · "), {sticky: true, className: "st-tooltip"});
    },
    gridLabel: function (feature, layer, context) {
      var p = feature.properties;
      var en = context && context.hideout && context.hideout.lang === "en";
      layer.bindTooltip(st.escape((en && p.name_en) || p.name), {
        permanent: true, direction: "center", className: "st-grid-label"
      });
    },
    devicePoint: function (feature, latlng, context) {
      var h = (context && context.hideout) || {};
      var colors = h.colors || {};
      var p = feature.properties;
      var off = h.offline && h.offline[p.id];
      if (p.type === "checkpoint" && h.visited) {
        // patrol coverage: green when checked in within the last two hours, amber within six
        var ago = h.visited[p.id];
        var tone = ago == null ? "#5a6478" : ago <= 130 ? "#35d07f" : ago <= 360 ? "#ffb020" : "#5a6478";
        var cp = L.circleMarker(latlng, st.map.inPane({radius: 7, color: "#0b1220", weight: 2, fillColor: tone,
                                         fillOpacity: 1,
                                         className: "st-dev st-dev-checkpoint st-cp-" + (ago == null ? "never" : "seen")},
                                         context));
        cp.bindTooltip(st.escape(p.name || p.id) + (ago == null ? "" : " · " + ago + (h.lang === "en" ? " min ago" : "分钟前")),
                       {className: "st-tooltip"});
        return cp;
      }
      var upkeep = st.map.maintenanceText(p, h.lang === "en");  // in maintenance: a violet ring and its end
      // the wall's refresh keeps the low-battery marks current ([%, time] per device); else the layer's own
      var lows = h.low_battery, reading = lows && lows[p.id];
      var low = !off && (lows ? !!reading : p.battery_low);  // an amber ring: change the battery
      var marker = L.circleMarker(latlng, st.map.inPane({
        radius: (p.type === "smart_lock" || p.type === "smoke_detector" ? 3 : 5) + (low ? 2 : 0),
        color: upkeep ? "#b388ff" : off ? "#ff5a36" : low ? "#ffb020" : "#0b1220",
        weight: upkeep ? 2 : off ? 1.5 : low ? 3 : 1,
        fillColor: off ? "#3a4254" : (colors[p.type] || "#ffffff"), fillOpacity: 0.95,
        className: "st-dev st-dev-" + p.type + (off ? " st-dev-offline" : "") + (low ? " st-dev-battery-low" : "") +
                   (upkeep ? " st-dev-maintenance" : "")
      }, context));
      var battery = reading ? {battery: reading[0], battery_at: reading[1], battery_low: true}
                            : {battery: p.battery, battery_at: p.battery_at, battery_low: low};
      marker.bindTooltip(st.escape(p.name || p.id) + (upkeep ? "<br>" + st.escape(upkeep) : "") +
                         st.batteryNote(battery, h.lang), {className: "st-tooltip"});
      return marker;
    },
    inPane: function (options, context) {
      // a point drawn by pointToLayer goes to its layer's pane (the GeoJSON's pane= prop), as the
      // layer's polygons do; Leaflet gives it the overlay pane otherwise
      if (context && context.pane) { options.pane = context.pane; }
      return options;
    },
    maintenanceText: function (p, en) {
      // "维护中 至 18:00" (Beijing time; the date too when the end is on another day), "" when not in maintenance
      if (!p.maintenance_until) { return ""; }
      var end = new Date(p.maintenance_until);
      var day = function (d) {
        return new Intl.DateTimeFormat("en-CA", {timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit"}).format(d);
      };
      var time = new Intl.DateTimeFormat("zh-CN", {timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit",
                                                   hour12: false}).format(end);
      var when = day(end) === day(new Date()) ? time : day(end) + " " + time;
      return (en ? "In maintenance until " : "维护中 至 ") + when;
    },
    trailStyle: function (feature) {
      return {color: feature.properties.color || "#35d07f", weight: 2, opacity: 0.55, dashArray: "2 4"};
    },
    guardPoint: function (feature, latlng, context) {
      var p = feature.properties;
      var marker = L.circleMarker(latlng, st.map.inPane({
        radius: p.active ? 7 : 4, color: "#ffffff", weight: p.active ? 2 : 1, opacity: p.active ? 1 : 0.3,
        fillColor: p.color || "#35d07f", fillOpacity: p.active ? 1 : 0.25,
        className: "st-guard st-guard-" + p.kind + (p.active ? " st-guard-active" : "")
      }, context));
      marker.bindTooltip(st.escape(p.label + " " + (p.name || "")), {className: "st-tooltip"});
      return marker;
    },
    communityPoint: function (feature, latlng, context) {
      // one community of the city view: coloured by its most serious open alert
      var p = feature.properties;
      var en = ((context && context.hideout) || {}).lang === "en";
      var open = p.open || 0;
      var marker = L.circleMarker(latlng, {
        radius: open ? 7 + Math.min(6, Math.sqrt(open)) : 5, color: "#0b1220", weight: 1.5,
        fillColor: CITY_COLORS[p.worst] || CITY_COLORS.none, fillOpacity: open ? 0.95 : 0.7,
        className: "st-city-point st-city-" + p.worst
      });
      marker.bindTooltip(st.escape(p.name) + "<br>" + st.escape(p.district || "") + " · " +
                         (open ? (en ? open + " open" : "未处置 " + open + " 起") : (en ? "nothing open" : "无未处置警情")),
                         {className: "st-tooltip"});
      return marker;
    },
    districtLabel: function (feature, latlng) {
      var icon = L.divIcon({className: "st-district-label", html: "<span>" + st.escape(feature.properties.name) + "</span>",
                            iconSize: [120, 20], iconAnchor: [60, 34]});
      return L.marker(latlng, {icon: icon, interactive: false, keyboard: false});
    },
    communityCluster: function (feature, latlng, index) {
      // a cluster of communities: how many, and a ring in the colour of the most serious alert among them
      var leaves = index.getLeaves(feature.properties.cluster_id, Infinity);
      var rank = {critical: 0, high: 1, medium: 2, low: 3, none: 4};
      var worst = "none", open = 0;
      leaves.forEach(function (leaf) {
        var q = leaf.properties;
        open += q.open || 0;
        if (rank[q.worst] < rank[worst]) { worst = q.worst; }
      });
      var n = feature.properties.point_count;
      var size = n < 10 ? 34 : n < 100 ? 42 : 52;
      var icon = L.divIcon({
        className: "st-city-cluster st-city-" + worst,
        html: "<div style='border-color:" + CITY_COLORS[worst] + "'><b>" + n + "</b>" +
              (open ? "<i>" + open + "</i>" : "") + "</div>",
        iconSize: [size, size]
      });
      return L.marker(latlng, {icon: icon});
    },
    alertPoint: function (feature, latlng, context) {
      var p = feature.properties;
      var icon = L.divIcon({
        className: "st-alert-marker st-sev-" + p.severity + (p.status === "new" ? " st-alert-new" : ""),
        html: "<span class='st-ring'></span><span class='st-core'></span>", iconSize: [28, 28], iconAnchor: [14, 14]
      });
      var marker = L.marker(latlng, st.map.inPane({icon: icon, keyboard: false}, context));
      marker.bindTooltip(st.escape(p.label), {className: "st-tooltip", direction: "top"});
      return marker;
    }
  };
})(window.sandtable);

/* Live helpers of the wall screen: fly to new serious alerts, relative times, reconnection. */
(function (st) {
  "use strict";
  var seen = null;          // alert ids already shown (null until the first refresh)
  var lastFlight = 0;
  var FLIGHT_GAP_MS = 20000, DWELL_MS = 25000;

  st.flyToNewAlert = function (alerts) {
    var noUpdate = window.dash_clientside.no_update;
    if (!Array.isArray(alerts)) { return noUpdate; }
    var fresh = [];
    var now = Date.now();
    // the page's first list: what was there before it opened is not news, an alert detected since is
    if (seen === null) { seen = {}; alerts.forEach(function (a) { if (!a.new) { seen[a.id] = true; } }); }
    alerts.forEach(function (a) { if (!seen[a.id]) { fresh.push(a); } seen[a.id] = true; });
    if (!fresh.length || now - lastFlight < FLIGHT_GAP_MS) { return noUpdate; }
    // several at once: the most severe, then the newest; the others stay pulsing in the feed
    fresh.sort(function (a, b) { return (a.severity === "critical" ? 0 : 1) - (b.severity === "critical" ? 0 : 1); });
    var target = fresh[0];
    if (target.lat == null) { return noUpdate; }
    lastFlight = now;
    window.setTimeout(function () { st.backToOverview(); }, DWELL_MS);
    return {center: [target.lat, target.lon], zoom: 19, transition: "flyTo", options: {duration: 2}};
  };

  st.backToOverview = function () {
    var wrap = document.querySelector("[data-bounds]");
    if (!wrap || !window.dash_clientside.set_props) { return; }
    window.dash_clientside.set_props("sandtable-map", {
      viewport: {bounds: JSON.parse(wrap.getAttribute("data-bounds")), transition: "flyToBounds",
                 options: {padding: [24, 24], duration: 2}}
    });
  };

  function since(iso, lang) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    var en = lang === "en";
    if (s < 60) { return en ? s + "s ago" : s + "秒前"; }
    if (s < 3600) { return en ? Math.floor(s / 60) + " min ago" : Math.floor(s / 60) + "分钟前"; }
    if (s < 86400) { return en ? Math.floor(s / 3600) + " h ago" : Math.floor(s / 3600) + "小时前"; }
    return en ? Math.floor(s / 86400) + " d ago" : Math.floor(s / 86400) + "天前";
  }

  function tick() {
    var nodes = document.querySelectorAll("[data-since]");
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].textContent = since(nodes[i].getAttribute("data-since"), nodes[i].getAttribute("data-lang"));
    }
  }
  window.setInterval(tick, 1000);

  // The page's beat: blinking alerts, pulsing cards and rings switch with the class st-beat on <html>
  // (theme.css), twice per 1.6 s cycle, in step with the clock so that screens side by side blink
  // together. A CSS animation instead made Chromium draw the whole screen 60 times a second: more than a
  // core of a station PC without a graphics card, for as long as the wall is open. Nothing blinks for a
  // user who asked the system for reduced motion, nor in a hidden tab.
  var BEAT_MS = 800;
  var still = window.matchMedia ? window.matchMedia("(prefers-reduced-motion: reduce)") : null;
  function beat() {
    var now = Date.now();
    var on = !document.hidden && !(still && still.matches) && Math.floor(now / BEAT_MS) % 2 === 1;
    document.documentElement.classList.toggle("st-beat", on);
    window.setTimeout(beat, BEAT_MS - (now % BEAT_MS) + 5);
  }
  beat();

  // The wall runs unattended: watch the connection, show it, and reload after a long outage or a
  // server restart (a new build), so the screen always comes back by itself.
  var down = 0, bootId = null;
  function watch() {
    var live = document.querySelector(".st-live");
    fetch("/healthz", {cache: "no-store", credentials: "same-origin"}).then(function (r) {
      if (r.status === 401 || r.redirected) { window.location.reload(); return null; }
      return r.ok ? r.json() : Promise.reject(r.status);
    }).then(function (body) {
      if (!body) { return; }
      if (live) { live.classList.remove("st-offline"); live.textContent = live.getAttribute("data-live") || live.textContent; }
      if (bootId && body.boot && body.boot !== bootId) { window.location.reload(); return; }
      if (down >= 6) { window.location.reload(); return; }
      bootId = body.boot || bootId;
      down = 0;
    }).catch(function () {
      down += 1;
      if (live) {
        if (!live.getAttribute("data-live")) { live.setAttribute("data-live", live.textContent); }
        live.classList.add("st-offline");
        live.textContent = live.getAttribute("data-offline") || "…";
      }
    });
  }
  window.setInterval(watch, 5000);
})(window.sandtable);
