/* Copy buttons for code a person pastes elsewhere (the CI setup page's snippets).
 *
 * Each <pre data-copy> gets a "Copy" button before it, named after what it copies; pressing it
 * puts the code on the clipboard and says "Copied" in the button and to screen readers (a
 * polite live region). Without the Clipboard API (an insecure origin, an old browser) no
 * button is added: the code stays selectable as it is.
 */
(() => {
  "use strict";

  function addButtons() {
    if (!navigator.clipboard) return;
    const status = document.createElement("p");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    document.querySelector("main")?.append(status);
    for (const pre of document.querySelectorAll("pre[data-copy]")) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "copy-button";
      button.textContent = "Copy";
      button.setAttribute("aria-label", `Copy ${pre.dataset.copy}`);
      button.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(pre.innerText.replace(/\n$/, ""));
          button.textContent = "Copied";
          status.textContent = `${pre.dataset.copy} copied`;
        } catch {
          button.textContent = "Select and copy";
          status.textContent = "The browser did not allow copying; select the text instead";
        }
        setTimeout(() => { button.textContent = "Copy"; }, 2000);
      });
      pre.before(button);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", addButtons);
  } else {
    addButtons();
  }
})();
