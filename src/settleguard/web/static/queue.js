// The payout queue's select-all box (issue 18): ticks or clears every release box of the page's list.
// Delegated from the document, because htmx replaces the list (#queue) when a filter changes.
(function () {
  document.addEventListener("change", function (ev) {
    var box = ev.target;
    if (!box.matches || !box.matches("input[data-select-all]")) { return; }
    var form = box.closest("form") || document;
    form.querySelectorAll("input[type=checkbox][name='" + box.dataset.selectAll + "']").forEach(function (b) {
      b.checked = box.checked;
    });
  });
})();
