/* Which escape the board shows in detail (templates/retros/retro_detail.html, css/board.css).
 *
 * With scripts, the board is the overview of every escape beside (on a phone: above) one
 * escape's card; the other cards stay in the page, hidden, so what was typed into them
 * survives. The open card is the one the facilitator put in focus (the facilitation bar's
 * data-focus-escape) until the person opens another from the overview or any
 * [data-open-escape] link; a new focus opens its card for everyone again, except while
 * someone is typing in the open card (the bar's "In focus" link takes them there).
 * Without a focus or a choice, the first card is open. Without scripts every card shows.
 *
 * One constructed style sheet says which card shows, so a card re-rendered by a live refresh is
 * shown or hidden at once, without waiting for this script.
 */
(function () {
  "use strict";

  var board = document.getElementById("board");
  if (!board) return;
  // A constructed style sheet: the CSP forbids inline <style>, not the CSSOM, and it leaves
  // the regions' HTML untouched (board.js compares it to tell what changed).
  if (!("adoptedStyleSheets" in document)) return; // an old browser keeps every card in view
  var sheet = new CSSStyleSheet();
  document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
  document.documentElement.classList.add("board-split");

  var followed = null; // the focus last followed
  var chosen = null; // the escape this person opened themselves, until the focus moves
  var shown = null;

  function focusId() {
    var bar = document.querySelector("[data-focus-escape]");
    return bar ? bar.getAttribute("data-focus-escape") : "";
  }

  function cardIds() {
    return Array.prototype.map.call(
      document.querySelectorAll("#board > .escape-card"),
      function (card) { return card.id.replace("escape-", ""); }
    );
  }

  function typingIn(id) {
    var card = id && document.getElementById("escape-" + id);
    var active = document.activeElement;
    return !!(card && active && card.contains(active) && active.matches("input, textarea, select"));
  }

  function show(id) {
    shown = id;
    sheet.replaceSync(id
      ? ".board-split #board > .escape-card:not(#escape-" + id + ") { display: none; }\n" +
        ".board-split #overview tr[data-escape=\"" + id + "\"] { background: #eef4ff; }\n" +
        ".board-split #overview tr[data-escape=\"" + id + "\"] > th { box-shadow: inset 4px 0 var(--accent); }"
      : "");
    var links = document.querySelectorAll("#overview [data-open-escape]");
    for (var i = 0; i < links.length; i++) {
      if (links[i].getAttribute("data-open-escape") === id) links[i].setAttribute("aria-current", "true");
      else links[i].removeAttribute("aria-current");
    }
  }

  function inView(element) {
    var box = element.getBoundingClientRect();
    return box.top >= 0 && box.top < window.innerHeight * 0.6;
  }

  function reveal(id, moveFocus) {
    var card = document.getElementById("escape-" + id);
    if (!card) return;
    if (!inView(card)) card.scrollIntoView({ behavior: "smooth", block: "start" });
    if (moveFocus) {
      var title = document.getElementById("escape-" + id + "-title");
      if (title) title.focus({ preventScroll: true });
    }
  }

  // After every change of the page: follow a new focus, keep the open card open if it is
  // still on the board, else fall back to the focus or the first card.
  function update() {
    var ids = cardIds();
    var focus = focusId();
    if (focus !== followed) {
      var first = followed === null;
      followed = focus;
      if (focus && !typingIn(shown)) {
        chosen = null;
        show(focus);
        if (!first) reveal(focus, false);
        return;
      }
    }
    var id = [chosen, shown, focus, ids[0]].filter(function (x) { return x && ids.indexOf(x) >= 0; })[0];
    show(id || null);
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-open-escape]");
    var current = document.getElementById("board"); // htmx may have swapped the first one
    if (!link || !current || !current.contains(link)) return;
    var id = link.getAttribute("data-open-escape");
    if (!document.getElementById("escape-" + id)) return; // not on this board: follow the link
    event.preventDefault();
    chosen = id;
    show(id);
    reveal(id, true);
  });

  document.addEventListener("htmx:load", update);
  document.addEventListener("htmx:afterSwap", update);
  document.addEventListener("leakseal:refreshed", update);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", update);
  else update();
})();
