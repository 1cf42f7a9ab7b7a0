/* Every board follows the facilitator's focus (templates/retros/_facilitation.html).
 *
 * The facilitation bar carries data-focus-escape, the id of the escape in focus (empty for
 * none). Whenever htmx brings in a new bar with another id, the card of that escape is
 * scrolled into view; a bar re-rendered with the same focus leaves the page where it is, so
 * nobody is pulled away from what they are reading or typing by unrelated changes.
 */
(function () {
  "use strict";

  var followed = null;

  function follow() {
    var bar = document.querySelector("[data-focus-escape]");
    if (!bar) return;
    var id = bar.getAttribute("data-focus-escape");
    if (id === followed) return;
    followed = id;
    var card = id ? document.getElementById("escape-" + id) : null;
    if (card) card.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  document.addEventListener("htmx:load", follow);
  document.addEventListener("htmx:afterSwap", follow);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", follow);
  else follow();
})();
