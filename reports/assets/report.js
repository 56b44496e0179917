// ws-analyzer report: severity filter, row filter, open <details> when a link targets them.
// Our only script; the page's Content-Security-Policy allows this one by its hash.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var boxes = document.querySelectorAll("#severity-filters input[data-severity]");
  function applySeverity() {
    var shown = {};
    boxes.forEach(function (b) { shown[b.getAttribute("data-severity")] = b.checked; });
    document.querySelectorAll("article.finding").forEach(function (a) {
      a.classList.toggle("hidden", shown[a.getAttribute("data-severity")] === false);
    });
  }
  boxes.forEach(function (b) { b.addEventListener("change", applySeverity); });
  document.querySelectorAll("input.rowfilter").forEach(function (input) {
    input.addEventListener("input", function () {
      var table = document.getElementById(input.getAttribute("data-table"));
      if (!table) { return; }
      var needle = input.value.toLowerCase();
      table.querySelectorAll("tbody tr").forEach(function (row) {
        row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) < 0;
      });
    });
  });
  function openTarget() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var el = id ? document.getElementById(id) : null;
    for (var p = el; p; p = p.parentElement) {
      if (p.tagName === "DETAILS") { p.open = true; }
    }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
