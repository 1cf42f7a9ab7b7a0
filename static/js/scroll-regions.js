/* A table that scrolls sideways can be scrolled from the keyboard (WCAG 2.1.1).
 *
 * On a phone every wide table scrolls inside itself (css/app.css), and a table of plain text
 * has nothing to focus, so a keyboard could not reach the columns off the screen. While a
 * table (or a .table-scroll box) is wider than its box it takes a place in the tab order
 * (tabindex="0": the arrow keys then scroll it) and is named after itself for the focus;
 * once it fits again that place goes away. Only tabindexes this script set are removed.
 */
(() => {
  "use strict";

  const SELECTOR = "main table, main .table-scroll";
  const MARK = "scrollRegion";

  function update() {
    for (const box of document.querySelectorAll(SELECTOR)) {
      const scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.tabIndex = 0;
        box.dataset[MARK] = "1";
      } else if (!scrolls && box.dataset[MARK]) {
        box.removeAttribute("tabindex");
        delete box.dataset[MARK];
      }
    }
  }

  let pending = false;
  function soon() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      update();
    });
  }

  update();
  window.addEventListener("resize", update);
  document.addEventListener("htmx:afterSettle", soon);
})();
