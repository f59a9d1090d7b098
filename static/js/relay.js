// マシンごとの中継: add rows, move them with buttons or by dragging, keep ORDER in step.
// Without JavaScript the page still works: the order column is visible and editable.
(function () {
  "use strict";
  var table = document.getElementById("rule-table");
  var form = document.getElementById("relay-form");
  if (!table || !form) { return; }
  var total = form.querySelector("input[name$='-TOTAL_FORMS']");
  var template = document.getElementById("empty-row");
  var end = document.getElementById("rows-end");

  function rows() { return Array.prototype.slice.call(table.querySelectorAll("tbody[data-row]")); }
  function renumber() {
    rows().forEach(function (row, index) {
      var order = row.querySelector(".order-input");
      if (order) { order.value = index + 1; }
    });
  }
  table.classList.add("js-ordered");
  Array.prototype.forEach.call(document.querySelectorAll("[data-move], #add-row"), function (b) { b.hidden = false; });

  table.addEventListener("click", function (event) {
    var button = event.target.closest("[data-move]");
    if (!button) { return; }
    var row = button.closest("tbody[data-row]");
    if (button.getAttribute("data-move") === "up") {
      var previous = row.previousElementSibling;
      if (previous && previous.hasAttribute("data-row")) { row.parentNode.insertBefore(row, previous); }
    } else {
      var next = row.nextElementSibling;
      if (next && next.hasAttribute("data-row")) { row.parentNode.insertBefore(next, row); }
    }
    renumber();
    button.focus();
  });

  var add = document.getElementById("add-row");
  if (add && template && total) {
    add.addEventListener("click", function () {
      var index = parseInt(total.value, 10);
      var html = template.innerHTML.replace(/__prefix__/g, String(index));
      end.insertAdjacentHTML("beforebegin", html);
      total.value = String(index + 1);
      renumber();
      var inserted = end.previousElementSibling;
      Array.prototype.forEach.call(inserted.querySelectorAll("[data-move]"), function (b) { b.hidden = false; });
      var input = inserted && inserted.querySelector("input[type=text]");
      if (input) { input.focus(); }
    });
  }

  if (window.Sortable) {
    window.Sortable.create(table, {
      draggable: "tbody[data-row]",
      handle: ".drag-handle",
      animation: 150,
      onEnd: renumber
    });
  }
  form.addEventListener("submit", renumber);
  renumber();
})();
