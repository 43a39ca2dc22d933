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

  // A chip's remove link (and Clear all) empties its inputs in the filter form and submits it, so
  // the form and the results agree afterwards (swapping the results alone would leave the old
  // value in its input, and the next keystroke would bring the filter back). Without htmx the
  // link itself loads the list without that filter.
  document.addEventListener("click", function (event) {
    const link = event.target.closest("a[data-clear-filter]");
    const form = document.getElementById("customer-filters");
    if (!link || !form || !window.htmx || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    const key = link.dataset.clearFilter;
    for (const field of form.elements) {
      if (field.name && field.name !== "sort" && (key === "all" || field.name === key)) field.value = "";
    }
    // The chip goes away with the old results: the keyboard lands on the new total instead.
    document.body.addEventListener("htmx:afterSettle", function () {
      const total = document.getElementById("customer-total");
      if (total) total.focus();
    }, { once: true });
    form.requestSubmit();
  });
})();
