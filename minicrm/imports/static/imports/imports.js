// The import drop zone: drag a file onto it (or pick one), see its name, and a busy button on submit.
(function () {
  "use strict";
  const zone = document.querySelector("[data-dropzone]");
  if (!zone) return;
  const input = zone.querySelector('input[type="file"]');
  const label = zone.querySelector("[data-drop-label]");
  const initialLabel = label.innerHTML;

  function show() {
    const file = input.files && input.files[0];
    zone.classList.toggle("has-file", Boolean(file));
    if (!file) {
      label.innerHTML = initialLabel;
      return;
    }
    const size = file.size >= 1048576
      ? (file.size / 1048576).toFixed(1) + " MB"
      : Math.max(1, Math.round(file.size / 1024)) + " KB";
    label.textContent = file.name + " · " + size;
  }

  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("is-dragover");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.remove("is-dragover");
    });
  });
  zone.addEventListener("drop", function (event) {
    const files = event.dataTransfer && event.dataTransfer.files;
    if (!files || !files.length) return;
    const transfer = new DataTransfer();
    transfer.items.add(files[0]);
    input.files = transfer.files;
    show();
  });
  input.addEventListener("change", show);
  show();

  const form = zone.closest("form");
  form.addEventListener("submit", function () {
    const button = form.querySelector("[data-import-submit]");
    if (button) {
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
    }
  });
})();
