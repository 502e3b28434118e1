/* The grid worker's map on the tasks page (layouts/mymap.py): the walking route, the tasks'
   targets and the worker's own position. Served locally from assets/. */
window.sandtable = window.sandtable || {};

(function (st) {
  "use strict";

  st.mymap = {
    routeStyle: function () {
      return {color: "#35d07f", weight: 5, opacity: 0.95, dashArray: "10 6", className: "st-mymap-route"};
    },
    targetPoint: function (feature, latlng) {
      var p = feature.properties;
      var icon = L.divIcon({
        className: "st-mymap-target" + (p.selected ? " st-mymap-target-selected" : ""),
        html: "<span class='st-ring'></span><span class='st-core'></span>",
        iconSize: [28, 28], iconAnchor: [14, 14]
      });
      var marker = L.marker(latlng, {icon: icon, keyboard: false, zIndexOffset: p.selected ? 500 : 0});
      marker.bindTooltip(st.escape(p.label), {className: "st-tooltip", direction: "top", permanent: !!p.selected});
      return marker;
    },
    mePoint: function (feature, latlng) {
      var marker = L.circleMarker(latlng, {
        radius: 8, color: "#ffffff", weight: 3, fillColor: "#2f7bff", fillOpacity: 1, className: "st-mymap-me"
      });
      marker.bindTooltip(st.escape(feature.properties.label), {className: "st-tooltip"});
      return marker;
    }
  };
})(window.sandtable);
