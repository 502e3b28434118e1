/* The 3D sand-table in the browser (issue 26): the kiosk's slow turn of the model, the flight to a new
 * serious alert, and the pulse of the alert cells in a building's 3D drill-down. Camera changes go
 * through Plotly's GUI relayout so that the figure's uirevision keeps them across the wall's patches. */
(function () {
  "use strict";
  var st = window.sandtable = window.sandtable || {};
  var TICK_MS = 100;
  var FLIGHT_MS = 2500;
  var DWELL_MS = 25000;  // as long as the 2D map stays on a new alert
  var seen = null;
  var flight = null;  // {from, to, start} while flying
  var holdUntil = 0;  // no turning before this (looking at an alert)
  var home = null;  // the figure's own camera, the one the model turns around
  var pulse = 0;  // the last beat of the alert cells' blink
  var PULSE_MS = 700;  // the alert cells blink at about 0.7 Hz: each blink redraws the building (software GL too)
  var lastTurn = 0;  // when the model last moved in its turn (0: not turning)

  function sceneGraph() { return document.querySelector("#scene-3d .js-plotly-plot"); }
  function wrap() { return document.getElementById("map-wrap"); }
  function shown() { var w = wrap(); return !!w && w.classList.contains("st-view-3d"); }
  function turnSeconds() { var w = wrap(); return w ? parseFloat(w.getAttribute("data-turn") || "0") || 0 : 0; }

  function relayout(gd, update) {
    if (!window.Plotly) { return; }
    var call = window.Plotly._guiRelayout || window.Plotly.relayout;
    try { call(gd, update); } catch (e) { /* a graph drawn again meanwhile: the next tick tries again */ }
  }

  function currentCamera(gd) {
    var scene = gd._fullLayout && gd._fullLayout.scene;
    if (!scene || !scene.camera) { return null; }
    return JSON.parse(JSON.stringify(scene.camera));
  }

  function lerp(a, b, s) { return a + (b - a) * s; }
  function mix(p, q, s) { return {x: lerp(p.x, q.x, s), y: lerp(p.y, q.y, s), z: lerp(p.z, q.z, s)}; }

  // a point in metres → the scene's normalised coordinates (the box spans ±aspectratio/2 on each axis)
  function normalised(gd, p) {
    var scene = gd._fullLayout.scene;
    var out = {};
    ["x", "y", "z"].forEach(function (axis) {
      var range = scene[axis + "axis"].range;
      var span = range[1] - range[0];
      out[axis] = ((p[axis] - (range[0] + range[1]) / 2) / span) * scene.aspectratio[axis];
    });
    return out;
  }

  function fly(gd, to, alertId) {
    var from = currentCamera(gd);
    if (!from) { return; }
    flight = {from: from, to: to, start: Date.now(), alert: alertId || null};
  }

  // one move of the camera (a flight's, or the turn's) and the alert cells' blink; true when it asked for a draw
  function step() {
    var now = Date.now();
    var drew = false, turned = false;
    var gd = sceneGraph();
    if (gd && gd._fullLayout && gd._fullLayout.scene && shown()) {
      if (home === null) { home = currentCamera(gd); }
      if (flight) {
        var s = Math.min(1, (now - flight.start) / FLIGHT_MS);
        s = s * s * (3 - 2 * s);
        relayout(gd, {"scene.camera": {
          eye: mix(flight.from.eye, flight.to.eye, s), center: mix(flight.from.center, flight.to.center, s),
          up: {x: 0, y: 0, z: 1}
        }});
        drew = true;
        if (s >= 1) {
          // where the last flight ended (an alert's id, or null: back to the whole community)
          st.lastFlight = {alert: flight.alert, camera: currentCamera(gd), at: now};
          // the page's recent flights, newest last (a check that looks late still finds the flight to
          // an alert after the flight back)
          st.flights = (st.flights || []).concat([st.lastFlight]).slice(-20);
          flight = null;
        }
      } else if (holdUntil && now > holdUntil) {
        holdUntil = 0;
        fly(gd, home);  // back to the whole community
      } else if (!holdUntil && turnSeconds() > 0) {
        var cam = currentCamera(gd);
        if (cam) {
          // the angle of the time since the last move (the moves come further apart on a slow renderer:
          // the model turns as fast, in bigger steps), at most a second's worth after a pause
          var a = 2 * Math.PI * Math.min(1000, now - (lastTurn || now - TICK_MS)) / (turnSeconds() * 1000);
          lastTurn = now;
          turned = true;
          var dx = cam.eye.x - cam.center.x, dy = cam.eye.y - cam.center.y;
          var c = Math.cos(a), sn = Math.sin(a);
          relayout(gd, {"scene.camera.eye": {x: cam.center.x + dx * c - dy * sn, y: cam.center.y + dx * sn + dy * c, z: cam.eye.z}});
          drew = true;
        }
      }
    }
    if (!turned) { lastTurn = 0; }  // a turn starts afresh after a pause (a flight, the turn switched off)
    var beat = Math.floor(now / PULSE_MS);
    if (beat !== pulse) {
      pulse = beat;
      drew = pulseCells(beat) || drew;
    }
    return drew;
  }

  // The moves are paced by the drawing, not by a clock: a move asks WebGL to draw the scene again in the
  // next animation frame, and the next move waits until that frame is over and then as long again. On a
  // fast graphics card that is every TICK_MS; on a station PC without one (software WebGL, a draw of the
  // whole community can take a second) the turn gets at most half of the page's time, and the page still
  // answers its user, its refreshes and its new alerts. (A fixed 100 ms interval asked for draws faster
  // than they were made, and the page did nothing else.)
  function loop() {
    var began = window.performance.now();
    var drew = false;
    try { drew = step(); } catch (e) { /* a graph drawn again meanwhile: the next move tries again */ }
    if (!drew) { window.setTimeout(loop, TICK_MS); return; }
    window.requestAnimationFrame(function () {
      window.requestAnimationFrame(function () {
        var spent = window.performance.now() - began;
        st.drawMs = Math.round(spent);  // the last move's cost, for a look from the console
        window.setTimeout(loop, Math.max(TICK_MS - spent, spent));
      });
    });
  }

  // the alert cells of a building in 3D pulse, like the alert cards of the feed
  function pulseCells(beat) {
    var gd = document.querySelector("#drill-3d-graph .js-plotly-plot");
    if (!gd || !gd.data || !window.Plotly) { return false; }
    var idx = [];
    gd.data.forEach(function (trace, i) { if (trace.meta === "pulse" && trace.x && trace.x.length) { idx.push(i); } });
    if (!idx.length) { return false; }
    var opacity = beat % 2 ? 0.4 : 1.0;
    try { window.Plotly.restyle(gd, {opacity: opacity}, idx); } catch (e) { return false; /* redrawn meanwhile */ }
    return true;
  }

  // the wall's serious alerts changed (the refresh's alert state): fly to a new one in the 3D view
  st.sceneAlerts = function (alerts) {
    var noUpdate = window.dash_clientside.no_update;
    if (!Array.isArray(alerts)) { return noUpdate; }
    // the page's first list: what was there before it opened is not news, an alert detected since is
    if (seen === null) { seen = {}; alerts.forEach(function (a) { if (!a.new) { seen[a.id] = true; } }); }
    var fresh = alerts.filter(function (a) { return !seen[a.id]; });
    alerts.forEach(function (a) { seen[a.id] = true; });
    var target = fresh.filter(function (a) { return a.scene; }).sort(function (a, b) {
      return (a.severity === "critical" ? 0 : 1) - (b.severity === "critical" ? 0 : 1);
    })[0];
    var gd = sceneGraph();
    if (!target || !gd || !gd._fullLayout || !gd._fullLayout.scene || !shown()) { return noUpdate; }
    if (home === null) { home = currentCamera(gd); }
    var centre = normalised(gd, target.scene);
    fly(gd, {center: centre, eye: {x: centre.x + 0.42, y: centre.y - 0.42, z: centre.z + 0.32}, up: {x: 0, y: 0, z: 1}},
        target.id);
    holdUntil = Date.now() + FLIGHT_MS + DWELL_MS;
    return {id: target.id, x: target.scene.x, y: target.scene.y, at: Date.now()};
  };

  loop();
})();
