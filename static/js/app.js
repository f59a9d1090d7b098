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
// A box that scrolls sideways (a wide table or file on a phone) can be scrolled with the
// keyboard too: it takes the focus (axe: scrollable-region-focusable).
(function () {
  "use strict";
  function focusable() {
    document.querySelectorAll("pre, .table-responsive, .table-scroll").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
      }
    });
  }
  focusable();
  window.addEventListener("resize", focusable);
})();
