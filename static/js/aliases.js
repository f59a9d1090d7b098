// エイリアス管理: "select every alias on this page" and the count of the selection.
// Without JavaScript the page still works: tick rows one by one; the server asks before deleting.
(function () {
  "use strict";
  var all = document.querySelector("[data-select-all]");
  if (!all) { return; }
  var count = document.querySelector("[data-selected-count]");
  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-select-row]"));
  }
  function update() {
    var rows = boxes();
    var ticked = rows.filter(function (box) { return box.checked; }).length;
    all.checked = rows.length > 0 && ticked === rows.length;
    all.indeterminate = ticked > 0 && ticked < rows.length;
    if (count) {
      count.textContent = count.getAttribute("data-template")
        .replace("%(count)s", String(ticked))
        .replace("%(total)s", String(rows.length));
      count.hidden = ticked === 0;
    }
  }
  all.hidden = false;
  all.addEventListener("change", function () {
    boxes().forEach(function (box) { box.checked = all.checked; });
    update();
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("[data-select-row]")) { update(); }
  });
  // The browser may restore ticks on "back": show them.
  window.addEventListener("pageshow", update);
  update();
})();
