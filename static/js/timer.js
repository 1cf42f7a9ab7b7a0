/* The retro timer's countdown (templates/retros/_facilitation.html).
 *
 * The server renders the timer with data-ends-at (ISO, UTC) while it runs, or
 * data-paused-remaining (seconds) while paused, and data-server-now: the clock of the server
 * when it rendered, so a laptop whose clock is off still counts down to the same moment.
 * One interval updates every [data-timer] on the page, so a board region that htmx
 * re-renders (a version ping, an out-of-band swap) is picked up at the next tick, and at once
 * on htmx:load / htmx:afterSwap.
 */
(function () {
  "use strict";

  var skews = new WeakMap(); // element -> server clock minus this clock, in ms, at first sight

  function skew(el) {
    if (!skews.has(el)) {
      var server = Date.parse(el.getAttribute("data-server-now") || "");
      skews.set(el, isNaN(server) ? 0 : server - Date.now());
    }
    return skews.get(el);
  }

  function format(seconds) {
    var m = Math.floor(seconds / 60);
    var s = seconds % 60;
    return (m < 10 ? "0" : "") + m + ":" + (s < 10 ? "0" : "") + s;
  }

  function show(el, text, up) {
    var out = el.querySelector(".timer-display");
    if (out && out.textContent !== text) out.textContent = text;
    el.classList.toggle("timer-up", up);
  }

  function tick() {
    var timers = document.querySelectorAll("[data-timer]");
    for (var i = 0; i < timers.length; i++) {
      var el = timers[i];
      var endsAt = Date.parse(el.getAttribute("data-ends-at") || "");
      var paused = el.getAttribute("data-paused-remaining");
      if (!isNaN(endsAt)) {
        var left = Math.ceil((endsAt - (Date.now() + skew(el))) / 1000);
        if (left > 0) show(el, format(left), false);
        else show(el, "Time's up", true);
      } else if (paused !== null && paused !== "") {
        show(el, format(Math.max(0, parseInt(paused, 10) || 0)), false);
      }
    }
  }

  setInterval(tick, 250);
  document.addEventListener("htmx:load", tick);
  document.addEventListener("htmx:afterSwap", tick);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", tick);
  else tick();
})();
