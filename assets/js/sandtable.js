/* Sandtable's browser-side functions: map styling (dash-leaflet functional props) and UI helpers.
   Served locally from assets/; nothing here reaches the internet. */
window.sandtable = window.sandtable || {};

(function (st) {
  "use strict";

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
      var colors = (context && context.hideout && context.hideout.colors) || {};
      var p = feature.properties;
      var marker = L.circleMarker(latlng, {
        radius: p.type === "smart_lock" || p.type === "smoke_detector" ? 3 : 5,
        color: "#0b1220", weight: 1, fillColor: colors[p.type] || "#ffffff", fillOpacity: 0.95,
        className: "st-dev st-dev-" + p.type
      });
      marker.bindTooltip(st.escape(p.name || p.id), {className: "st-tooltip"});
      return marker;
    }
  };
})(window.sandtable);
