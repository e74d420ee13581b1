// chanlog's site index (copied to OUTDIR/_assets/ beside the pages; works from file://, no network).
// Sorts table#sessions by a column when its header is clicked (again: the other way), numbers as numbers
// (a cell's data-sort when it has one), text in natural order; a filter box (#filter) keeps the rows that
// hold every word typed (any column, a cut value's full text and the errors' detail included), and #shown
// counts them. Plain JavaScript. Sets body[data-index="ready"] once wired.
(function () {
  "use strict";
  var table = document.getElementById("sessions");
  if (!table || !table.tBodies.length) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  var filter = document.getElementById("filter");
  var shown = document.getElementById("shown");

  // What the filter searches in a row: its text and every title (full values of cut cells, error detail).
  var haystacks = rows.map(function (row) {
    var titles = Array.prototype.slice.call(row.querySelectorAll("[title]")).map(function (el) {
      return el.getAttribute("title");
    });
    return (row.textContent + "\n" + titles.join("\n")).toLowerCase();
  });
  rows.forEach(function (row, i) { row.setAttribute("data-order", String(i)); });

  function value(row, column, numeric) {
    var cell = row.cells[column];
    var text = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (!numeric) { return text; }
    var n = parseFloat(text);
    return isNaN(n) ? -Infinity : n;
  }

  function sortBy(column) {
    var th = headers[column];
    var numeric = th.getAttribute("data-type") === "number";
    var descending = th.getAttribute("aria-sort") === "ascending";
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var sign = descending ? -1 : 1;
    var sorted = rows.slice().sort(function (a, b) {
      var x = value(a, column, numeric);
      var y = value(b, column, numeric);
      var c = numeric ? (x < y ? -1 : x > y ? 1 : 0) : collator.compare(x, y);
      return c * sign || Number(a.getAttribute("data-order")) - Number(b.getAttribute("data-order"));
    });
    var fragment = document.createDocumentFragment();
    sorted.forEach(function (row) { fragment.appendChild(row); });
    body.appendChild(fragment);
  }

  function applyFilter() {
    var words = (filter ? filter.value : "").toLowerCase().split(/\s+/).filter(Boolean);
    var count = 0;
    rows.forEach(function (row, i) {
      var keep = words.every(function (w) { return haystacks[i].indexOf(w) !== -1; });
      row.hidden = !keep;
      if (keep) { count += 1; }
    });
    if (shown) { shown.textContent = count + " of " + rows.length + " shown"; }
  }

  headers.forEach(function (th, column) {
    var button = th.querySelector("button") || th;
    button.addEventListener("click", function () { sortBy(column); });
  });
  if (filter) {
    filter.disabled = false;
    filter.addEventListener("input", applyFilter);
    if (filter.value) { applyFilter(); }  // a value the browser restored on going back
  }
  document.body.setAttribute("data-index", "ready");
})();
