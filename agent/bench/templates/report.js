(function () {
  "use strict";
  var table = document.getElementById("task-table");
  if (!table) { return; }
  var body = table.tBodies[0];
  function pairs() {
    var out = [], rows = body.querySelectorAll("tr.task-row");
    for (var i = 0; i < rows.length; i++) {
      out.push([rows[i], document.getElementById(rows[i].getAttribute("data-detail"))]);
    }
    return out;
  }
  function key(row, col, type) {
    var v = row.cells[col].getAttribute("data-sort");
    if (v === null) { v = row.cells[col].textContent; }
    return type === "num" ? parseFloat(v) : v.toLowerCase();
  }
  var heads = table.tHead.rows[0].cells;
  for (var c = 0; c < heads.length; c++) {
    (function (th, col) {
      if (!th.hasAttribute("data-type")) { return; }
      th.addEventListener("click", function () {
        var type = th.getAttribute("data-type");
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        for (var k = 0; k < heads.length; k++) { heads[k].removeAttribute("aria-sort"); }
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        var list = pairs();
        list.sort(function (a, b) {
          var x = key(a[0], col, type), y = key(b[0], col, type);
          if (x < y) { return -dir; }
          if (x > y) { return dir; }
          return 0;
        });
        for (var i = 0; i < list.length; i++) {
          body.appendChild(list[i][0]);
          if (list[i][1]) { body.appendChild(list[i][1]); }
        }
      });
    })(heads[c], c);
  }
  body.addEventListener("click", function (ev) {
    var btn = ev.target.closest("button.expand");
    if (!btn) { return; }
    var detail = document.getElementById(btn.getAttribute("aria-controls"));
    var open = btn.getAttribute("aria-expanded") === "true";
    btn.setAttribute("aria-expanded", open ? "false" : "true");
    btn.textContent = open ? "▸" : "▾";
    detail.hidden = open;
  });
  var filter = document.getElementById("filter"), show = document.getElementById("show");
  var count = document.getElementById("count");
  function apply() {
    var text = filter.value.toLowerCase(), which = show.value, n = 0, list = pairs();
    for (var i = 0; i < list.length; i++) {
      var row = list[i][0], state = row.getAttribute("data-state");
      var hit = row.getAttribute("data-task").toLowerCase().indexOf(text) >= 0 &&
        (which === "all" || which === state ||
         (which === "unsolved" && state !== "solved"));
      row.hidden = !hit;
      if (list[i][1] && !hit) { list[i][1].hidden = true; }
      if (list[i][1] && hit) {
        var b = row.querySelector("button.expand");
        list[i][1].hidden = !(b && b.getAttribute("aria-expanded") === "true");
      }
      n += hit ? 1 : 0;
    }
    count.textContent = n + " of " + list.length + " tasks";
  }
  filter.addEventListener("input", apply);
  show.addEventListener("change", apply);
  apply();
})();
