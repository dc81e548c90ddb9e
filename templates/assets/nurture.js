// Nurture's own script (the pages allow no inline script).

// Every htmx request carries the session's CSRF token, read from the page's meta tag.
document.addEventListener("htmx:configRequest", (event) => {
  const token = document.querySelector('meta[name="csrf-token"]');
  if (token) event.detail.headers["X-CSRF-Token"] = token.content;
});

// <select data-submit>, <input type="checkbox" data-submit>: a change sends the form.
document.addEventListener("change", (event) => {
  if (event.target.matches("[data-submit]")) event.target.form.requestSubmit();
});

// Ctrl+Z / Ctrl+Shift+Z (Cmd on a Mac) undo and redo the draft, unless the key is meant for a text box.
document.addEventListener("keydown", (event) => {
  if (!(event.ctrlKey || event.metaKey) || event.key.toLowerCase() !== "z") return;
  if (event.target.closest("input, textarea, select, [contenteditable]")) return;
  const form = document.getElementById(event.shiftKey ? "redo-form" : "undo-form");
  if (form && !form.querySelector("button").disabled) {
    event.preventDefault();
    form.requestSubmit();
  }
});

// A canvas narrower than its flow opens scrolled to the selected step (or the start), not to its empty left edge.
function centreCanvas() {
  const canvas = document.getElementById("canvas");
  const node = canvas && (canvas.querySelector(".node.selected") || canvas.querySelector(".node.start"));
  if (node && canvas.scrollWidth > canvas.clientWidth) {
    canvas.scrollLeft = node.offsetLeft + node.offsetWidth / 2 - canvas.clientWidth / 2;
  }
}
document.addEventListener("DOMContentLoaded", centreCanvas);
// An edit swaps the canvas in afresh, scrolled to its left edge: centre it again.
document.addEventListener("htmx:afterSettle", () => {
  const canvas = document.getElementById("canvas");
  if (canvas && canvas.scrollLeft === 0) centreCanvas();
});

// The content editor's merge-field picker: the chosen field goes in at the cursor, and the text box saves as if typed.
document.addEventListener("change", (event) => {
  const picker = event.target.closest("select[data-insert-into]");
  if (!picker || !picker.value) return;
  const box = document.getElementById(picker.dataset.insertInto);
  const at = box.selectionStart ?? box.value.length;
  box.value = box.value.slice(0, at) + picker.value + box.value.slice(box.selectionEnd ?? at);
  box.focus();
  box.selectionStart = box.selectionEnd = at + picker.value.length;
  picker.value = "";
  box.dispatchEvent(new Event("change", { bubbles: true }));
});

// Copy keeps a step (or a branch with its own steps) in this browser's storage, so it pastes at any + of any care
// model; the + menu offers it while it is there.
const CLIPBOARD = "nurture.clipboard";
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-url]");
  if (!button) return;
  const answer = await fetch(button.dataset.copyUrl, { headers: { Accept: "application/json" } });
  const status = document.getElementById("copied");
  if (!answer.ok) {
    status.textContent = "Could not copy: " + answer.status;
    return;
  }
  const clip = await answer.json();
  localStorage.setItem(CLIPBOARD, JSON.stringify(clip));
  const count = clip.steps.length;
  status.textContent = `Copied “${clip.label}”${count > 1 ? ` with ${count - 1} step${count > 2 ? "s" : ""} after it` : ""}: paste it at any +.`;
});

function offerPaste() {
  const form = document.getElementById("paste-form");
  const stored = localStorage.getItem(CLIPBOARD);
  if (!form || !stored) return;
  const clip = JSON.parse(stored);
  document.getElementById("paste-clip").value = stored;
  const count = clip.steps.length;
  document.getElementById("paste-button").textContent =
    `Paste “${clip.label}”${count > 1 ? ` (${count} steps)` : ""}${clip.model ? ` from ${clip.model}` : ""}`;
  form.hidden = false;
}
document.addEventListener("DOMContentLoaded", offerPaste);
document.addEventListener("htmx:afterSettle", offerPaste);
