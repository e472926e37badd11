// openlock web UI: small progressive enhancements only; every page works without script.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // error pages: offer "Go back" when there is somewhere to go back to
  document.querySelectorAll("a.js-back").forEach(function (a) {
    if (window.history.length > 1) { a.hidden = false; }
    a.addEventListener("click", function (ev) { ev.preventDefault(); window.history.back(); });
  });
  // a token shown once: a Copy button (the token stays selectable without script)
  document.querySelectorAll("button.js-copy").forEach(function (b) {
    var src = document.getElementById(b.getAttribute("data-copy"));
    if (!src || !navigator.clipboard) { return; }
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(src.textContent).then(function () { b.textContent = "Copied"; });
    });
  });
  // a revocation cannot be submitted twice by a double tap
  document.querySelectorAll("form").forEach(function (f) {
    f.addEventListener("submit", function () {
      f.querySelectorAll("button.danger[type=submit]").forEach(function (b) { b.disabled = true; });
    });
  });
});
