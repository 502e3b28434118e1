/* The residents' page (/resident): the status of the household's calls to the police, polled from
   /resident/calls (the household's signed link) so that it moves without a reload. Dash loads every
   file in assets/ on its pages too: without the calls section this does nothing. */
(function () {
  "use strict";
  var section = document.getElementById("st-calls");
  if (!section || !window.fetch) { return; }
  var list = document.getElementById("st-call-list");
  var src = section.getAttribute("data-src");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text) { node.textContent = text; }
    return node;
  }

  function render(calls) {
    section.hidden = calls.length === 0;
    list.replaceChildren.apply(list, calls.map(function (c) {
      var row = el("div", "st-notice st-call st-call-" + c.stage);
      row.setAttribute("data-call", c.id);
      row.appendChild(el("div", "st-muted", c.when));
      row.appendChild(el("div", "st-call-text", c.text));
      row.appendChild(el("b", "st-call-stage", c.label));
      if (c.feedback) { row.appendChild(el("div", "st-call-feedback", c.feedback)); }
      return row;
    }));
  }

  function poll() {
    fetch(src, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (calls) { if (Array.isArray(calls)) { render(calls); } })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(function () { window.setTimeout(poll, 4000); });
  }
  window.setTimeout(poll, 4000);
}());
