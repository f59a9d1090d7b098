// Progressive enhancements shared by every page. Pages work without JavaScript.
(function () {
  "use strict";
  // Buttons that ask for confirmation: <button data-confirm="...">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
  // Progress bars carry their width as data (the CSP allows no inline style attributes).
  function sizeBars(root) {
    root.querySelectorAll("[data-percent]").forEach(function (bar) {
      bar.style.width = bar.getAttribute("data-percent") + "%";
    });
  }
  if (window.htmx) {
    window.htmx.onLoad(sizeBars);
  } else {
    sizeBars(document);
  }
})();
