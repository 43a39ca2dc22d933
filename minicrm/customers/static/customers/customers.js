// A click anywhere on a customer row opens the customer; the name stays the keyboard's link.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    const row = event.target.closest("tr[data-href]");
    if (!row || event.target.closest("a, button, input, select, label")) return;
    if (window.getSelection && String(window.getSelection())) return;  // selecting text, not opening
    if (event.metaKey || event.ctrlKey) window.open(row.dataset.href, "_blank");
    else window.location.assign(row.dataset.href);
  });
})();
