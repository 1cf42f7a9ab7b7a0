/* A refused htmx request says why, instead of seeming to do nothing.
 *
 * htmx swaps no 4xx or 5xx answer, so a click refused with 403 (the user's role changed
 * meanwhile), 404 (what it acted on was removed) or a stale CSRF token would look as if
 * nothing happened. The error views (config/errors.py) answer an htmx request with the
 * message alone, marked [data-refusal]; the 500 page carries the same mark; any other error
 * (a proxy's 502, Django's debug page) gets a general sentence. The message goes into
 * #request-problem, base.html's alert region, and stays until it is dismissed or a later
 * request goes through.
 *
 * Under DEBUG, django-htmx's helper replaces the whole page with a 400, 403, 404 or 500
 * answer so that developers see Django's technical page. One of our messages is not a page,
 * so it is kept from that helper.
 */
(() => {
  "use strict";

  const region = document.getElementById("request-problem");
  if (!region) return;

  function refusal(xhr) {
    if (!xhr || xhr.status < 400) return null;
    const doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
    const mark = doc.querySelector("[data-refusal]");
    return mark ? mark.textContent.replace(/\s+/g, " ").trim() : null;
  }

  function show(text) {
    const box = document.createElement("div");
    box.className = "request-problem-box";
    const message = document.createElement("p");
    message.textContent = text;
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.textContent = "Dismiss";
    dismiss.addEventListener("click", clear);
    box.append(message, dismiss);
    region.replaceChildren(box);
  }

  function clear() {
    region.replaceChildren();
  }

  // Capture phase: before django-htmx's DEBUG helper, listening on document, sees it.
  document.addEventListener(
    "htmx:beforeOnLoad",
    (event) => {
      if (refusal(event.detail.xhr)) event.stopPropagation();
    },
    true,
  );
  document.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    show(
      refusal(xhr) ||
        `Something went wrong (error ${xhr.status}), so this may not have been saved. ` +
          "Reload the page to see, and try again.",
    );
  });
  document.addEventListener("htmx:sendError", () => {
    show("Leakseal could not be reached, so this was not sent. Check the connection and try again.");
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.successful) clear();
  });
})();
