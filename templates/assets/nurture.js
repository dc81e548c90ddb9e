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

// --- the canvas: zoom, pan, centring, and dragging a step onto a + --------------------------------------------

// The zoom is kept per care model for this tab, so an edit (which swaps the canvas in afresh) keeps it.
const zoomKey = (canvas) => `nurture.zoom.${canvas.dataset.model}`;
const zoomOf = (canvas) => parseFloat(sessionStorage.getItem(zoomKey(canvas)) || "1");

function applyZoom(canvas, zoom) {
  zoom = Math.min(2, Math.max(0.25, zoom));
  sessionStorage.setItem(zoomKey(canvas), String(zoom));
  const width = +canvas.dataset.width, height = +canvas.dataset.height;
  canvas.querySelector(".stage").style.transform = `scale(${zoom})`;
  const sizer = canvas.querySelector(".sizer");
  sizer.style.width = `${width * zoom}px`;
  sizer.style.height = `${height * zoom}px`;
  canvas.style.height = `${Math.max(300 * Math.min(zoom, 1), height * zoom)}px`;
  const level = document.getElementById("zoom-level");
  if (level) level.textContent = `${Math.round(zoom * 100)} %`;
}

function fitZoom(canvas) {
  const room = window.innerHeight - canvas.getBoundingClientRect().top - 16;
  return Math.min(1, canvas.clientWidth / +canvas.dataset.width, Math.max(room, 200) / +canvas.dataset.height);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-zoom]");
  const canvas = document.getElementById("canvas");
  if (!button || !canvas) return;
  const now = zoomOf(canvas), how = button.dataset.zoom;
  applyZoom(canvas, how === "in" ? now * 1.25 : how === "out" ? now / 1.25 : how === "fit" ? fitZoom(canvas) : 1);
});

// A canvas narrower than its flow opens scrolled to the selected step (or the start), not to its empty left edge.
function centreCanvas() {
  const canvas = document.getElementById("canvas");
  const node = canvas && (canvas.querySelector(".node.selected") || canvas.querySelector(".node.start"));
  if (node && canvas.scrollWidth > canvas.clientWidth) {
    const zoom = zoomOf(canvas);
    canvas.scrollLeft = (node.offsetLeft + node.offsetWidth / 2) * zoom - canvas.clientWidth / 2;
  }
}
function setUpCanvas() {
  const canvas = document.getElementById("canvas");
  if (!canvas) return;
  applyZoom(canvas, zoomOf(canvas));
  if (canvas.scrollLeft === 0) centreCanvas();
}
document.addEventListener("DOMContentLoaded", setUpCanvas);
document.addEventListener("htmx:afterSettle", setUpCanvas);

// Pan: drag the canvas's background (not a step, not a +).
document.addEventListener("mousedown", (event) => {
  const canvas = event.target.closest("#canvas");
  if (!canvas || event.button !== 0 || event.target.closest(".node, .plus, .edge-label")) return;
  const start = { x: event.clientX, y: event.clientY, left: canvas.scrollLeft, top: window.scrollY };
  canvas.classList.add("panning");
  const move = (e) => {
    canvas.scrollLeft = start.left - (e.clientX - start.x);
    window.scrollTo(window.scrollX, start.top - (e.clientY - start.y));
  };
  const stop = () => {
    canvas.classList.remove("panning");
    document.removeEventListener("mousemove", move);
    document.removeEventListener("mouseup", stop);
  };
  document.addEventListener("mousemove", move);
  document.addEventListener("mouseup", stop);
  event.preventDefault();
});

// A step on the canvas opens with Enter or Space, as a button would.
document.addEventListener("keydown", (event) => {
  if ((event.key === "Enter" || event.key === " ") && event.target.matches?.('.node[role="button"]')) {
    event.preventDefault();
    event.target.click();
  }
});

// Move: drag a step with one way out onto a + (the + menu's "move a step here" is the keyboard's way).
document.addEventListener("dragstart", (event) => {
  const node = event.target.closest?.(".node[data-move-url]");
  if (!node) return;
  event.dataTransfer.setData("text/plain", node.dataset.moveUrl);
  event.dataTransfer.effectAllowed = "move";
});
document.addEventListener("dragover", (event) => {
  const plus = event.target.closest?.(".plus");
  if (!plus) return;
  event.preventDefault();
  plus.classList.add("drop-here");
});
document.addEventListener("dragleave", (event) => {
  event.target.closest?.(".plus")?.classList.remove("drop-here");
});
document.addEventListener("drop", (event) => {
  const plus = event.target.closest?.(".plus");
  const url = event.dataTransfer.getData("text/plain");
  if (!plus || !url) return;
  event.preventDefault();
  const [source, ...field] = plus.dataset.edge.split(":");
  htmx.ajax("POST", url, { target: "#panel", swap: "outerHTML", values: { source, field: field.join(":") } });
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
