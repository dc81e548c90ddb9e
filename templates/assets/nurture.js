// Nurture's own script (the pages allow no inline script).

// Every htmx request carries the session's CSRF token, read from the page's meta tag.
document.addEventListener("htmx:configRequest", (event) => {
  const token = document.querySelector('meta[name="csrf-token"]');
  if (token) event.detail.headers["X-CSRF-Token"] = token.content;
});

// <select data-submit>: choosing an option sends its form.
document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-submit]")) event.target.form.requestSubmit();
});
