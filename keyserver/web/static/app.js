// openlock web UI: small progressive enhancements only; every page works without script.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // error pages: offer "Go back" when there is somewhere to go back to
  document.querySelectorAll("a.js-back").forEach(function (a) {
    if (window.history.length > 1) { a.hidden = false; }
    a.addEventListener("click", function (ev) { ev.preventDefault(); window.history.back(); });
  });
  // a revocation cannot be submitted twice by a double tap
  document.querySelectorAll("form").forEach(function (f) {
    f.addEventListener("submit", function () {
      f.querySelectorAll("button.danger[type=submit]").forEach(function (b) { b.disabled = true; });
    });
  });
});
