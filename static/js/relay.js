// マシンごとの中継: add rows, move them with buttons or by dragging, keep the positions in step,
// and warn before leaving the page with changes that were not saved.
// Without JavaScript the page still works: the position column is visible and editable.
(function () {
  "use strict";
  var table = document.getElementById("rule-table");
  var form = document.getElementById("relay-form");
  if (!table || !form) { return; }
  var total = form.querySelector("input[name$='-TOTAL_FORMS']");
  var template = document.getElementById("empty-row");
  var end = document.getElementById("rows-end");
  // A long table is edited a page at a time: positions count from the page's first row.
  var start = parseInt(form.getAttribute("data-start") || "0", 10);
  var paged = table.classList.contains("paged");
  var labels = table.dataset;
  var dirty = false;
  var submitting = false;

  function rows() { return Array.prototype.slice.call(table.querySelectorAll("tbody[data-row]")); }
  function staying(row) { return !row.hasAttribute("data-moving"); }
  // Rows keep their place on the page in order; a row given a number off this page keeps it.
  function renumber() {
    var number = start;
    rows().forEach(function (row) {
      var order = row.querySelector(".order-input");
      if (order && staying(row)) { number += 1; order.value = number; }
    });
  }
  function changed() { dirty = true; }
  function addButtons(row) {
    var cell = row.querySelector("[data-actions]");
    if (!cell || cell.querySelector("[data-move]")) { return; }
    ["up", "down"].forEach(function (direction, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-sm btn-outline-secondary me-1";
      button.setAttribute("data-move", direction);
      button.setAttribute("aria-label", direction === "up" ? labels.up : labels.down);
      button.textContent = direction === "up" ? "↑" : "↓";
      cell.insertBefore(button, cell.children[index] || null);
    });
  }
  function addSiteNote(box) {
    var cell = box.closest(".site-fields");
    if (!box.checked || !cell || cell.querySelector("input[type=text]")) { return; }
    var note = document.createElement("input");
    note.type = "text";
    note.name = box.name.replace(/outside_site$/, "site_note");
    note.className = "form-control form-control-sm";
    note.maxLength = 255;
    note.setAttribute("aria-label", labels.siteNote);
    note.placeholder = labels.siteExample;
    cell.appendChild(note);
    note.focus();
  }

  if (!paged) { table.classList.add("js-ordered"); }
  rows().forEach(addButtons);
  var add = document.getElementById("add-row");
  if (add) { add.hidden = false; }

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
    changed();
    button.focus();
  });

  // A number typed in the position column: on this page the row moves there at once; off it,
  // the row is marked and moves there when the table is saved.
  table.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-site]")) { addSiteNote(target); }
    if (!target.classList.contains("order-input")) { return; }
    var row = target.closest("tbody[data-row]");
    var wanted = parseInt(target.value, 10);
    var here = rows().filter(function (other) { return other === row || staying(other); });
    if (isNaN(wanted)) { return; }
    if (wanted > start && wanted <= start + here.length) {
      row.removeAttribute("data-moving");
      var others = here.filter(function (other) { return other !== row; });
      var before = others[wanted - start - 1];
      row.parentNode.insertBefore(row, before || end);
      renumber();
    } else {
      row.setAttribute("data-moving", String(wanted));
      renumber();
      target.value = wanted;
    }
  });

  if (add && template && total) {
    add.addEventListener("click", function () {
      var index = parseInt(total.value, 10);
      var html = template.innerHTML.replace(/__prefix__/g, String(index));
      end.insertAdjacentHTML("beforebegin", html);
      total.value = String(index + 1);
      var inserted = end.previousElementSibling;
      addButtons(inserted);
      renumber();
      changed();
      var input = inserted && inserted.querySelector("input[type=text]");
      if (input) { input.focus(); }
    });
  }

  if (window.Sortable) {
    window.Sortable.create(table, {
      draggable: "tbody[data-row]",
      handle: ".drag-handle",
      animation: 150,
      onEnd: function () { renumber(); changed(); }
    });
  }
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  form.addEventListener("submit", function () { submitting = true; renumber(); });
  // Changes not saved yet: the browser asks before the page is left (another page of a long
  // table, a menu link, closing the tab).
  window.addEventListener("beforeunload", function (event) {
    if (dirty && !submitting) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
  // A link to an effect.dat line of a long table (#line-N) that is on another page.
  var hash = /^#line-(\d+)$/.exec(window.location.hash);
  if (paged && hash && !document.getElementById("line-" + hash[1])) {
    window.location.replace("?line=" + hash[1] + "#line-" + hash[1]);
  }
  renumber();
})();
