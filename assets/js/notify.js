/* The in-app notifications' alarm (issue #18): a short two-tone signal generated with WebAudio for
   each new critical notification. Served locally; no sound file, no network. A browser plays it
   without a click only when allowed: a kiosk starts Chromium with
   --autoplay-policy=no-user-gesture-required; elsewhere the first click or key unlocks it. */
window.sandtable = window.sandtable || {};

(function (st) {
  "use strict";
  var context = null;
  var rung = {};

  function audio() {
    if (context === null) {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) { return null; }
      context = new Ctx();
    }
    if (context.state === "suspended") { context.resume(); }
    return context;
  }

  ["click", "keydown", "touchstart"].forEach(function (name) {
    window.addEventListener(name, function () { audio(); }, {once: true, capture: true});
  });

  st.notifyAlarm = function (id) {
    if (id === null || id === undefined || rung[id]) { return window.dash_clientside.no_update; }
    rung[id] = true;
    var ctx = audio();
    if (ctx === null) { return id; }
    var start = ctx.currentTime;
    [0, 0.35, 0.7].forEach(function (offset, i) {
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.type = "square";
      osc.frequency.value = i % 2 ? 660 : 880;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.25, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.3);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start + offset);
      osc.stop(start + offset + 0.32);
    });
    document.documentElement.setAttribute("data-notify-rang", String(id));
    return id;
  };
})(window.sandtable);
