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
