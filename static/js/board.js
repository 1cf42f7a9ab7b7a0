/* The live board: follow the retro's event stream and re-render the board from the server.
 *
 * The stream (retros/stream.py) says "the retro is at version v" and "who is here changed".
 * On a version newer than the one on screen this fetches the #board partial and swaps each
 * region (a direct child of #board with an id) that changed. Regions are always rendered by
 * the server from its state, so a missed or repeated event can neither lose nor double
 * anything; a reconnecting stream starts with the current version, and one comparison brings
 * the page up to date.
 *
 * A version may say which escape it changed (a why, an action, a classification), and then
 * usually carries that card's HTML (with the phase bar, overview and close region), rendered
 * once on the server for everyone of the person's role. When the board is exactly one version
 * behind, that HTML is swapped in as it is, with the person's own parts put in first
 * (`personalize`: their CSRF token, their votes and the controls on the whys they wrote, both
 * taken from the card on screen). Otherwise, when every version between the one on screen and
 * the newest announced named its escape, only those cards are fetched; a gap, or any other
 * kind of change, fetches it all. A card's test panel (evidence/) loads itself once on screen;
 * a card rendered again keeps the panel already loaded while its data-tests-key is the same.
 *
 * What the user is doing survives. What they typed and have not sent is carried into the new
 * HTML, with the hidden fields of its form (so an edit begun at an older revision still meets
 * the server's conflict check), the <details> they opened stay open, and the focus and caret
 * go back where they were. A region waits, and is refreshed once the user leaves it, only
 * while a request of theirs is on its way from it, the pointer is pressed on it (a click
 * must not lose its target) or the focus cannot be put back; while one waits, a look every
 * second makes sure it is refreshed even if the event that says the user left never comes.
 *
 * Hooks: #board[data-stream-url][data-refresh-url][data-version], #presence[data-presence-url],
 * #live-status. After a refresh, "leakseal:refreshed" is dispatched on document.
 */
(() => {
  "use strict";

  const root = document.getElementById("board");
  if (!root || !root.dataset.streamUrl || !("EventSource" in window)) return;
  const streamUrl = root.dataset.streamUrl;
  const refreshUrl = root.dataset.refreshUrl;
  const strip = document.getElementById("presence");
  const status = document.getElementById("live-status");
  const FIELDS = "input:not([type=hidden]), textarea, select";
  const CSRF = "input[name=csrfmiddlewaretoken]";

  let known = Number(root.dataset.version) || 0; // the version the board on screen shows
  let ownSeen = 0; // the newest version an answer to the person's own post showed
  let wanted = known; // the newest version the stream announced
  let fetching = false;
  let pressed = null; // what the pointer is pressed on, until released
  let heldIds = []; // the regions held back because the user is in them
  let heldTimer = 0;
  let failures = 0;
  let composing = false; // an input method is composing a word
  let lastBoard = root;
  const hints = new Map(); // announced version -> the escape it changed, or null for "any"
  const MAX_CARDS = 5; // retros/views.py MAX_CARDS_PER_REFRESH
  const typed = new WeakSet(); // fields the user changed and has not sent

  const board = () => document.getElementById("board");
  // What the board did and why, for whoever looks into a board that fell behind: the browser's
  // console at its "Verbose" level. The browser tests print it for a test that failed.
  const trace = (text) => console.debug("[live board] " + text);
  const byId = (scope, id) => scope.querySelector("#" + CSS.escape(id));

  // --- The stream.

  let source = null;
  let reconnectTimer = 0;
  let reconnectDelay = 1000;

  function connect() {
    clearTimeout(reconnectTimer);
    if (source) source.close();
    source = new EventSource(streamUrl);
    source.addEventListener("open", () => {
      trace("stream open");
      reconnectDelay = 1000;
      showLive(true);
    });
    source.addEventListener("error", () => {
      trace(`stream error (state ${source.readyState})`);
      showLive(false);
      // The browser retries by itself after a dropped connection, but gives up on an
      // answer that is not a stream (a proxy's 502, a session that expired): then we retry.
      if (source.readyState === EventSource.CLOSED) {
        reconnectTimer = setTimeout(connect, reconnectDelay);
        reconnectDelay = Math.min(reconnectDelay * 2, 30000);
      }
    });
    source.addEventListener("version", (event) => {
      const data = JSON.parse(event.data);
      const version = data.version;
      hints.set(version, Number.isInteger(data.escape) ? data.escape : null);
      trace(`version ${version} (escape ${data.escape ?? "-"}${"html" in data ? ", card" : ""}); on screen ${known}`);
      wanted = Math.max(wanted, version);
      if (version === known + 1 && typeof data.html === "string" && !fetching && !heldIds.length) {
        if (applyPushed(data.html, version)) return;
      }
      if (version > known) refresh();
    });
    source.addEventListener("presence", refreshPresence);
  }

  function showLive(up) {
    if (!status) return;
    status.hidden = false;
    status.classList.toggle("live-status-down", !up);
    status.textContent = up ? "Live" : "Reconnecting…";
  }

  // A laptop back from sleep or on a new network: do not wait for the retry timer.
  window.addEventListener("online", connect);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && source.readyState !== EventSource.OPEN) connect();
  });

  // --- Refreshing the board.

  async function refresh() {
    if (fetching) return; // the fetch in flight is followed by another if `wanted` moved on
    fetching = true;
    const before = known;
    const target = wanted;
    const cards = changedCards(known, target);
    let ok = false;
    let answered = false;
    let url = refreshUrl;
    if (cards) url += "?" + cards.map((id) => "escape=" + id).join("&");
    trace(`fetch ${cards ? "cards " + cards.join(",") : "the board"} for ${target}; on screen ${known}`);
    try {
      let response = null;
      let html = "";
      try {
        response = await fetch(url, {
          headers: { "HX-Request": "true" },
          cache: "no-store",
          credentials: "same-origin",
        });
        html = response.ok ? await response.text() : "";
        answered = true;
      } catch (error) {
        trace(`fetch failed: ${error}`); // offline: the stream's reconnect announces it again
      }
      if (answered) {
        try {
          ok = response.ok && (cards ? applyCards(parse(html), target) : apply(html));
        } catch (error) {
          console.error("live board: the refresh could not be applied", error); // a bug of ours
        }
        trace(`answer ${response.status}: ${ok ? "applied" : "not applied"}; on screen ${known}${heldIds.length ? ", a region held back" : ""}`);
      }
    } finally {
      fetching = false;
    }
    for (const version of hints.keys()) if (version <= known) hints.delete(version);
    if (cards && answered && !ok) {
      // A card that is gone (404) or a region not on screen yet: the whole board, at once.
      forget(target);
      setTimeout(refresh, 0);
      return;
    }
    if (ok && wanted <= known) {
      failures = 0;
      return;
    }
    // Failed, or still behind what the stream announced: again, at once if this fetch got
    // further, else after a pause that grows.
    failures = ok && known > before ? 0 : failures + 1;
    const delay = failures ? Math.min(500 * 2 ** failures, 30000) : 0;
    trace(`again in ${delay} ms (announced ${wanted}, on screen ${known})`);
    setTimeout(refresh, delay);
  }

  function apply(html) {
    const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("board");
    const current = board();
    if (!fresh || !current) {
      trace("the answer is not the board");
      return false; // a sign-in page, say
    }
    const version = Number(fresh.dataset.version) || 0;
    if (version < known) return true; // a swap of the user's own overtook this answer
    // Rendered before what the person's own post already shows (the board is only known to be
    // at a version by a whole refresh, not by their post's card): it would put their change
    // back for a moment. Fetch again instead.
    if (version < ownSeen) {
      trace(`answer at ${version} is older than the own post's ${ownSeen}`);
      return false;
    }
    const focus = focusOf(document.activeElement, current);
    const placed = [];
    const added = [];
    const held = [];
    let reason = ""; // why a region is held back
    for (const node of Array.from(fresh.children)) {
      const old = node.id ? current.querySelector(":scope > #" + CSS.escape(node.id)) : null;
      if (!old) {
        placed.push(node);
        added.push(node);
      } else if (sameRegion(old, node)) {
        placed.push(old);
      } else if ((reason = busy(old))) {
        placed.push(old);
        held.push(old.id);
        trace(`#${old.id} held back: ${reason}`);
      } else {
        carry(old, node);
        placed.push(node);
        added.push(node);
      }
    }
    for (const old of Array.from(current.children)) {
      if (placed.includes(old)) continue;
      if ((reason = busy(old))) {
        held.push(old.id);
        trace(`#${old.id} (gone) held back: ${reason}`);
      } else old.remove();
    }
    arrange(current, placed);
    refocus(focus);
    for (const attr of Array.from(fresh.attributes)) current.setAttribute(attr.name, attr.value);
    for (const node of added) {
      htmx.process(node);
      htmx.trigger(node, "htmx:load"); // as for content htmx swaps in itself
    }
    known = Math.max(known, version);
    holdBack(held);
    document.dispatchEvent(new CustomEvent("leakseal:refreshed", { detail: { version } }));
    return true;
  }

  // The escapes changed by versions (from, to], if every one of them said which; else null.
  function changedCards(from, to) {
    if (to <= from || heldIds.length) return null;
    const ids = new Set();
    for (let version = from + 1; version <= to; version++) {
      const id = hints.get(version);
      if (id === undefined || id === null) return null;
      ids.add(id);
    }
    return ids.size <= MAX_CARDS ? Array.from(ids) : null;
  }

  function forget(upTo) {
    for (const version of hints.keys()) if (version <= upTo) hints.set(version, null);
  }

  const parse = (html) => new DOMParser().parseFromString(html, "text/html").getElementById("board");

  // A card the stream pushed with `version`, one past the board on screen.
  function applyPushed(html, version) {
    const fresh = parse(html);
    const current = board();
    if (!fresh || !current || !personalize(fresh, current)) return false;
    if (!applyCards(fresh, version)) return false;
    for (const seen of hints.keys()) if (seen <= known) hints.delete(seen);
    trace(`pushed card applied; on screen ${known}`);
    return true;
  }

  // Put this person's own parts into a card rendered for everyone of their role. Only their
  // own actions change them, and those swap or re-fetch HTML rendered for them, so the card
  // on screen has them right: false if it has not got them (the board then re-fetches).
  function personalize(fresh, current) {
    const token = csrfToken();
    if (!token) return false;
    for (const input of fresh.querySelectorAll(CSRF)) input.value = token;
    for (const slot of fresh.querySelectorAll("[data-personal]")) {
      const key = slot.dataset.personal;
      const mine = current.querySelector(`[data-personal="${CSS.escape(key)}"]`);
      if (!mine) return false;
      slot.replaceWith(mine.cloneNode(true));
    }
    // Edit and delete of a why, and delete of a fact, shown to everyone of a member's role:
    // kept where the card on screen has them, which is on the whys and facts this person wrote.
    for (const control of fresh.querySelectorAll("[data-author-only]")) {
      const item = control.closest("li[id^='why-'], li[id^='fact-']");
      const own = item && byId(current, item.id)?.querySelector(
        item.matches(".fact") ? ":scope > .fact-meta > [data-author-only]" : ":scope > .why-controls > [data-author-only]"
      );
      if (!own) control.remove();
    }
    return true;
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  // Swap in the cards (and phase bar and close region) of a ?escape= answer or a pushed card.
  // The board is then known to be at `target`: the versions up to it changed only these cards.
  function applyCards(fresh, target) {
    const current = board();
    if (!fresh || !current || !("cards" in fresh.dataset)) return false;
    const version = Number(fresh.dataset.version) || 0;
    if (version < target || version < ownSeen) {
      trace(`cards at ${version}, wanted ${target} (own post ${ownSeen})`);
      return false;
    }
    const focus = focusOf(document.activeElement, current);
    const regions = Array.from(fresh.children).filter((node) => node.id);
    const olds = regions.map((node) => current.querySelector(":scope > #" + CSS.escape(node.id)));
    if (olds.includes(null)) {
      trace("a card is not on screen");
      return false;
    }
    const held = [];
    const added = [];
    regions.forEach((node, i) => {
      const old = olds[i];
      if (sameRegion(old, node)) return;
      const reason = busy(old);
      if (reason) {
        held.push(old.id);
        trace(`#${old.id} held back: ${reason}`);
        return;
      }
      carry(old, node);
      old.replaceWith(node);
      added.push(node);
    });
    refocus(focus);
    for (const node of added) {
      htmx.process(node);
      htmx.trigger(node, "htmx:load");
    }
    known = Math.max(known, target);
    current.dataset.version = String(known); // as a whole-board refresh leaves it
    holdBack(held);
    document.dispatchEvent(new CustomEvent("leakseal:refreshed", { detail: { version: known } }));
    return true;
  }

  // Equal but for the CSRF tokens, which are masked anew at every render, and for test
  // panels already loaded whose data did not change (keepPanels).
  function sameRegion(old, node) {
    const token = old.querySelector(CSRF);
    if (token) for (const input of node.querySelectorAll(CSRF)) input.value = token.value;
    keepPanels(old, node);
    return old.isEqualNode(node);
  }

  // A card comes with its test panel to be loaded once on screen (data-lazy). Where the card
  // on screen has loaded it and the panel's data-tests-key is the same, the new card takes
  // the loaded one: a change of the card does not make every board fetch its tests again.
  function keepPanels(old, node) {
    putBackPanels(node, loadedPanels(old), true);
  }

  function loadedPanels(region) {
    const panels = new Map();
    for (const slot of region.querySelectorAll(".escape-tests-slot[id]")) {
      if (!slot.querySelector("[data-lazy]")) panels.set(slot.id, slot);
    }
    return panels;
  }

  function testsKey(element) {
    return element.closest(".escape-tests-slot")?.dataset.testsKey;
  }

  function putBackPanels(scope, panels, copy) {
    for (const slot of scope.querySelectorAll(".escape-tests-slot[id]")) {
      const loaded = panels.get(slot.id);
      if (!loaded || loaded === slot || loaded.dataset.testsKey !== slot.dataset.testsKey) continue;
      const panel = copy ? loaded.cloneNode(true) : loaded;
      slot.replaceWith(panel);
      if (!copy) htmx.process(panel); // taken out by a swap, which let go of its buttons
    }
  }

  // A region must wait while a request of the user's is on its way from it, or while the
  // focus is on something that cannot be found again in the new HTML (or an open <select>,
  // or a word being composed with an input method). Otherwise it is replaced, and the focus
  // and caret are put back where they were.
  // The reason, or "" if none.
  function busy(region) {
    // (A panel loading itself, data-lazy, is not the user's: a new card loads its own.)
    const request = region.matches(".htmx-request")
      ? region
      : region.querySelector(".htmx-request:not([data-lazy])");
    if (request) return `a request of the person's is on its way (${describe(request)})`;
    if (pressed && region.contains(pressed)) return "the pointer is pressed on it";
    const active = document.activeElement;
    if (!active || active === document.body || !region.contains(active)) return "";
    if (composing) return "a word is being composed";
    return focusKey(active) ? "" : `the focus (${active.tagName}) could not be put back`;
  }

  function describe(element) {
    const url = element.getAttribute("hx-post") || element.getAttribute("hx-get") || "";
    return element.tagName.toLowerCase() + (element.id ? "#" + element.id : "") + (url ? " " + url : "");
  }

  // How to find the focused element again in new HTML: its id, or for a <summary> the id
  // of the first element with one in its <details>. Null if it cannot be found again.
  function focusKey(element) {
    if (element.matches("select")) return null;
    if (element.id) return { id: element.id, summary: false };
    const key = element.matches("summary") && element.parentElement.querySelector("[id]");
    return key ? { id: key.id, summary: true } : null;
  }

  function focusOf(element, scope) {
    const key = element && scope.contains(element) ? focusKey(element) : null;
    if (!key) return null;
    const caret = typeof element.selectionStart === "number";
    return { ...key, start: caret ? element.selectionStart : null, end: element.selectionEnd };
  }

  function refocus(focus) {
    let element = focus && document.getElementById(focus.id);
    if (element && focus.summary) element = element.closest("details")?.querySelector("summary");
    if (!element || element === document.activeElement) return;
    element.focus({ preventScroll: true });
    if (focus.start !== null) element.setSelectionRange(focus.start, focus.end);
  }

  // Put `nodes` in order without moving a region that has to wait.
  function arrange(parent, nodes) {
    let anchor = null;
    for (const node of nodes) {
      const here = anchor ? anchor.nextElementSibling : parent.firstElementChild;
      if (here !== node && !(node.isConnected && busy(node))) {
        if (anchor) anchor.after(node);
        else parent.prepend(node);
      }
      anchor = node;
    }
  }

  // --- Keeping what the user typed, across a refresh or a swap of their own.

  const NOTES = "[role=alert], [role=status]"; // an error or a check the server answered with

  function stash(region, skipForm) {
    const kept = [];
    const notes = [];
    for (const field of region.querySelectorAll(FIELDS)) {
      if (!typed.has(field) || !field.id || (skipForm && field.form === skipForm)) continue;
      const hidden = {};
      if (field.form) {
        for (const input of field.form.querySelectorAll("input[type=hidden]")) {
          if (input.name && input.name !== "csrfmiddlewaretoken") hidden[input.name] = input.value;
        }
        const inForm = Array.from(field.form.querySelectorAll(NOTES), (n) => n.cloneNode(true));
        if (inForm.length && !notes.some((n) => n.form === field.form)) {
          notes.push({ form: field.form, id: field.id, nodes: inForm });
        }
      }
      kept.push({ id: field.id, value: field.value, checked: field.checked, hidden });
    }
    // Open <details> (found again by their first id) stay open, but for the one holding the
    // form that posted: it closes once its post went through, as the server renders it.
    const open = [];
    for (const details of region.querySelectorAll("details[open]")) {
      const key = details.querySelector("[id]");
      if (key && !(skipForm && details.contains(skipForm))) open.push(key.id);
    }
    const alert = region.querySelector("[role=alert]:not(form *)");
    return { kept, notes, open, alert: kept.length && alert ? alert.cloneNode(true) : null };
  }

  function restore(scope, { kept, notes = [], open = [], alert = null }) {
    for (const id of open) byId(scope, id)?.closest("details")?.setAttribute("open", "");
    let firstForm = null;
    for (const item of kept) {
      const field = byId(scope, item.id);
      if (!field) continue; // what it edited is gone
      if (field.type === "checkbox" || field.type === "radio") field.checked = item.checked;
      else field.value = item.value;
      typed.add(field);
      field.closest("details")?.setAttribute("open", "");
      if (field.form) {
        for (const [name, value] of Object.entries(item.hidden)) {
          const input = field.form.querySelector(`input[type=hidden][name="${CSS.escape(name)}"]`);
          if (input) input.value = value;
        }
        firstForm = firstForm || field.form;
      }
    }
    // What the server said about a draft (a refusal, a blameless check) stays beside it
    // until the user acts on it.
    for (const note of notes) {
      const form = byId(scope, note.id)?.form;
      if (form && !form.querySelector(NOTES)) form.append(...note.nodes);
    }
    if (alert && firstForm && !scope.querySelector("[role=alert]")) firstForm.before(alert);
  }

  function carry(old, node) {
    restore(node, stash(old, null));
    keepRefusal(old, node);
  }

  // A refused close names what each escape lacks. A refresh that arrives after it (a change
  // made just before) must not wipe it while it is still true: while the board still lacks
  // exactly what it named, the refusal stays in place of the plain "Still missing" list.
  function keepRefusal(old, node) {
    const refusal = old.querySelector(".close-errors");
    const missing = node.querySelector(".missing-actions");
    if (!refusal || !missing || node.querySelector(".close-errors")) return;
    const titles = Array.from(missing.querySelectorAll("a"), (a) => a.textContent.trim());
    const named = Array.from(refusal.querySelectorAll("li"), (li) => li.textContent);
    if (titles.length !== named.length) return;
    if (!titles.every((title) => named.some((text) => text.includes(title)))) return;
    missing.previousElementSibling?.remove(); // "Still missing:"
    missing.replaceWith(refusal.cloneNode(true));
  }

  document.addEventListener("compositionstart", () => {
    composing = true;
  });
  document.addEventListener("compositionend", () => {
    composing = false;
  });
  document.addEventListener("input", (event) => {
    if (event.target.closest?.("#board")) typed.add(event.target);
  });
  document.addEventListener("change", (event) => {
    if (event.target.closest?.("#board")) typed.add(event.target);
  });

  // htmx swaps the user's own posts: the posting form may reset once it went through; one
  // refused or held back (an alert or a status in the answer) comes back with its draft,
  // which stays the user's; any other field typed in the swapped region is kept.
  let pending = null;

  // A post's form can leave the page while the post is on its way: an earlier post from the
  // same card came back and replaced the card (quick clicks), or a refresh replaced it. htmx
  // would then swap the answer into the detached copy, losing it and its out-of-band regions
  // (and its events no longer reach the document). A listener on the swap's target itself
  // still hears it: the answer goes into what the page shows now.
  document.addEventListener("htmx:beforeRequest", (event) => {
    // htmx announces the swap on the target. Added once per element (the same listener is
    // not added twice), it serves every post that targets it, including two in flight.
    const target = event.detail.target;
    if (target?.closest?.("#board")) {
      trace(`request from ${describe(event.detail.elt)} into #${target.id}`);
      target.addEventListener("htmx:beforeSwap", swapIntoPage);
    }
  });
  function swapIntoPage(event) {
    const target = event.detail.target;
    const elt = event.detail.requestConfig?.elt;
    if (!target?.id || !elt || (elt.isConnected && target.isConnected)) return;
    if (event.detail.shouldSwap === false) return;
    const live = document.getElementById(target.id);
    if (!live) return; // what it changed is gone from the board: the next refresh says so
    event.detail.shouldSwap = false;
    // A test panel's answer is for the card it was asked from. A card rendered since with
    // other tests (another data-tests-key: its category, stage, ...) loads its own panel,
    // which this answer must not overwrite.
    if (elt.matches("[data-lazy]") && testsKey(elt) !== testsKey(live)) {
      trace(`answer for #${target.id} was for other tests: the panel on the page loads its own`);
      return;
    }
    trace(`answer for #${target.id}, taken off the page meanwhile, swapped into the one on it`);
    const form = elt.closest("form") || elt.form || null;
    // The posting form's copy on the page (found by a field's id) keeps nothing: what it
    // sent went through, as for a form that was never replaced.
    const sent = form && Array.from(form.elements).find((f) => f.id && byId(document, f.id));
    pending = stash(live, sent ? byId(document, sent.id).form : null);
    pending.refusedIds = [];
    pending.panels = loadedPanels(live);
    const style = (elt.closest("[hx-swap]")?.getAttribute("hx-swap") || "innerHTML").split(" ")[0];
    htmx.swap(live, event.detail.serverResponse, { swapStyle: style }, { contextElement: live });
  }

  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    const form = event.detail.requestConfig?.elt?.closest?.("form") || null;
    const refused = /role="(alert|status)"/.test(event.detail.xhr?.responseText || "");
    if (!target || event.detail.shouldSwap === false) return;
    pending = stash(target, form);
    pending.refusedIds = [];
    pending.panels = loadedPanels(target);
    if (refused && form) {
      for (const field of form.querySelectorAll(FIELDS)) {
        if (typed.has(field) && field.id) pending.refusedIds.push(field.id);
      }
    }
  });
  document.addEventListener("htmx:afterSwap", (event) => {
    const current = board();
    // A post's answer carries the phase bar rendered after the change (out of band).
    ownSeen = Math.max(ownSeen, Number(document.getElementById("phase-bar")?.dataset.version) || 0);
    trace(`an answer was swapped into #${(event.detail.target || event.target).id} (own posts up to ${ownSeen})`);
    if (pending && current) {
      restore(current, { kept: pending.kept, notes: pending.notes, open: pending.open });
      if (pending.panels) putBackPanels(current, pending.panels, false);
      for (const id of pending.refusedIds) {
        const field = byId(current, id);
        if (field) typed.add(field);
      }
    }
    pending = null;
    if (current && current !== lastBoard) {
      // The whole board came back from a post: it shows the version it was rendered at.
      lastBoard = current;
      known = Math.max(known, Number(current.dataset.version) || 0);
      holdBack([]);
      trace(`the whole board came back from a post; on screen ${known}`);
    }
  });

  // A region the pointer is pressed on waits: replaced between the press and the release,
  // the click would reach neither copy (its target gone) and the person's click be lost.
  document.addEventListener("pointerdown", (event) => { pressed = event.target; }, true);
  function released() {
    setTimeout(() => { // after the click this release ends
      pressed = null;
      refreshIfStale();
    }, 0);
  }
  document.addEventListener("pointerup", released, true);
  document.addEventListener("pointercancel", released, true);

  // A region held back is refreshed when the user leaves it or their post returns.
  function refreshIfStale(event) {
    if (!heldIds.length) return;
    trace(`${event?.type ?? "release"}: the region held back is fetched again`);
    setTimeout(refresh, 50);
  }
  document.addEventListener("focusout", refreshIfStale);
  document.addEventListener("htmx:afterRequest", refreshIfStale);

  // Those events are the quick way. One can fail to come: htmx tells the document that a post
  // returned only through the posting form or a parent still on the page, and a swap may
  // have taken them all off it. So while a region is held back, a look every second (no
  // request) fetches the board once none of the regions held back is busy any more.
  function holdBack(ids) {
    heldIds = ids;
    clearTimeout(heldTimer);
    if (heldIds.length) heldTimer = setTimeout(lookAtHeldBack, 1000);
  }
  function lookAtHeldBack() {
    if (!heldIds.length) return;
    const current = board();
    const still = heldIds.some((id) => {
      const region = id && current && byId(current, id);
      return region && region.parentElement === current && busy(region);
    });
    if (still) {
      heldTimer = setTimeout(lookAtHeldBack, 1000);
      return;
    }
    trace(`no region held back is busy now (${heldIds.map((id) => "#" + id).join(", ")}): fetched again`);
    refresh();
  }

  // --- Presence: many boards hear the same announcement; spread their fetches a little.

  let presenceTimer = 0;
  function refreshPresence() {
    if (!strip) return;
    clearTimeout(presenceTimer);
    presenceTimer = setTimeout(async () => {
      try {
        const response = await fetch(strip.dataset.presenceUrl, {
          headers: { "HX-Request": "true" },
          cache: "no-store",
          credentials: "same-origin",
        });
        if (response.ok) strip.innerHTML = await response.text();
      } catch (error) {
        // Offline: the next announcement brings it.
      }
    }, 100 + Math.random() * 400);
  }

  connect();
})();
