// Small behaviours of the shell: theme toggle, mobile menu, toasts, CSRF for htmx.
(function () {
  "use strict";
  const root = document.documentElement;

  function applyTheme(theme) {
    if (theme === "light" || theme === "dark") root.dataset.theme = theme;
    else delete root.dataset.theme;
  }
  applyTheme(localStorage.getItem("minicrm-theme"));

  document.addEventListener("click", function (event) {
    const toggle = event.target.closest("[data-theme-toggle]");
    if (toggle) {
      const dark = root.dataset.theme
        ? root.dataset.theme === "dark"
        : window.matchMedia("(prefers-color-scheme: dark)").matches;
      const next = dark ? "light" : "dark";
      localStorage.setItem("minicrm-theme", next);
      applyTheme(next);
    }
    const menu = event.target.closest("[data-menu-toggle]");
    if (menu) document.querySelector(".shell").classList.toggle("nav-open");
    const close = event.target.closest("[data-toast-close]");
    if (close) close.closest(".toast").remove();
    const copy = event.target.closest("[data-copy]");
    if (copy) {
      navigator.clipboard.writeText(copy.dataset.copy).then(function () {
        showToast("Copied to the clipboard.", "success");
      });
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      document.querySelectorAll("details.dropdown[open]").forEach((d) => d.removeAttribute("open"));
      document.querySelector(".shell")?.classList.remove("nav-open");
    }
  });

  function showToast(message, level) {
    const container = document.querySelector(".toasts");
    if (!container) return;
    const toast = document.createElement("div");
    toast.className = "toast toast-" + (level || "info");
    toast.setAttribute("role", "status");
    const text = document.createElement("span");
    text.textContent = message;
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-label", "Dismiss");
    button.dataset.toastClose = "";
    button.textContent = "×";
    toast.append(text, button);
    container.append(toast);
    setTimeout(() => toast.remove(), 6000);
  }
  window.minicrm = { showToast: showToast };

  // Server-sent toasts: an htmx response may carry HX-Trigger: {"toast": {"message", "level"}}.
  document.body.addEventListener("toast", function (event) {
    showToast(event.detail.message, event.detail.level);
  });
  document.querySelectorAll(".toast[data-autohide]").forEach(function (toast) {
    setTimeout(() => toast.remove(), 6000);
  });

  // Inline handlers (onsubmit=, onchange=) are refused by the Content-Security-Policy, so
  // forms say what they need with data attributes: a question to confirm, a select that submits.
  // A form with data-confirm (the question), data-confirm-detail and data-confirm-action (the
  // button's words) submits only after the shared dialog in base.html is confirmed.
  const confirmDialog = document.getElementById("confirm-dialog");
  document.addEventListener("submit", function (event) {
    const form = event.target.closest("form[data-confirm]");
    if (!form || !confirmDialog) return;
    if (form.dataset.confirmed === "yes") {
      delete form.dataset.confirmed;
      return;
    }
    event.preventDefault();
    const submitter = event.submitter;
    confirmDialog.querySelector("#confirm-dialog-title").textContent = form.dataset.confirm;
    confirmDialog.querySelector("#confirm-dialog-detail").textContent = form.dataset.confirmDetail || "";
    confirmDialog.querySelector("[data-confirm-button]").textContent = form.dataset.confirmAction || "Confirm";
    confirmDialog.returnValue = "";
    confirmDialog.addEventListener("close", function () {
      if (confirmDialog.returnValue !== "confirm") return;
      form.dataset.confirmed = "yes";
      form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
    }, { once: true });
    confirmDialog.showModal();
  });

  // Dialogs on a page open from a button naming them (data-dialog-open) and close from one inside
  // (data-dialog-close); Escape closes them too.
  document.addEventListener("click", function (event) {
    const opener = event.target.closest("[data-dialog-open]");
    if (opener) document.getElementById(opener.dataset.dialogOpen).showModal();
    const closer = event.target.closest("[data-dialog-close]");
    if (closer) closer.closest("dialog").close();
  });
  document.addEventListener("change", function (event) {
    const field = event.target.closest("[data-autosubmit]");
    if (field && field.form) field.form.requestSubmit();
  });

  // htmx sends the CSRF token with every unsafe request.
  document.body.addEventListener("htmx:configRequest", function (event) {
    const token = document.querySelector('meta[name="csrf-token"]');
    if (token) event.detail.headers["X-CSRFToken"] = token.content;
  });
})();
