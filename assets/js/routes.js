/* The patrol route editor (layouts/routes.py): checkpoints on the map, numbered in the order of the
   route being edited, and the route drawn through them. Served locally from assets/. */
window.sandtable = window.sandtable || {};

(function (st) {
  "use strict";

  st.routes = {
    checkpointPoint: function (feature, latlng) {
      var p = feature.properties;
      var picked = p.order != null;
      var icon = L.divIcon({
        className: "st-rt-cp" + (picked ? " st-rt-cp-picked" : ""),
        html: "<span>" + (picked ? st.escape(p.order) : "") + "</span>",
        iconSize: [22, 22], iconAnchor: [11, 11]
      });
      var marker = L.marker(latlng, {icon: icon, keyboard: false, zIndexOffset: picked ? 400 : 0});
      marker.bindTooltip(st.escape(p.name || p.id), {className: "st-tooltip", direction: "top"});
      return marker;
    },
    lineStyle: function () {
      return {color: "#35d07f", weight: 4, opacity: 0.9, dashArray: "8 6", className: "st-rt-line"};
    },
    placePoint: function (feature, latlng) {
      return L.circleMarker(latlng, {radius: 8, color: "#ffb020", weight: 3, fillColor: "#ffb020", fillOpacity: 0.35,
                                     className: "st-rt-place"});
    }
  };
})(window.sandtable);
