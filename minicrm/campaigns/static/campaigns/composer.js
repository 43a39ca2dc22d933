// The campaign composer: placeholder chips, the live preview trigger, "Suggest messages", the
// subject shown only where a channel needs one, and the confirmation that says who receives it.
(function () {
  "use strict";
  const form = document.getElementById("composer");
  if (!form) return;
  const template = form.querySelector("[name=template]");
  const subject = form.querySelector("[name=subject]");
  const segment = form.querySelector("[name=segment]");
  const sendDialog = document.getElementById("send-dialog");
  const suggestDialog = document.getElementById("suggest-dialog");
  // Counts grouped in thousands, as the server writes them (the count filter), whatever the
  // browser's own language.
  const numbers = new Intl.NumberFormat("en-US");
  // Chips insert into the last text box that had the focus (the message unless it was the subject).
  let target = template;

  // ---- The live preview: asked for after a pause in typing, at once for a choice ----
  let timer = null;
  function preview(delay) {
    clearTimeout(timer);
    timer = setTimeout(() => window.htmx && window.htmx.trigger(form, "preview"), delay);
  }
  const LIVE = new Set(["segment", "channel", "subject", "template", "holdout_percent"]);
  form.addEventListener("input", (event) => {
    if (LIVE.has(event.target.name)) preview(event.target.type === "radio" ? 0 : 400);
  });
  form.addEventListener("change", (event) => {
    if (event.target.name === "segment" || event.target.name === "channel") preview(0);
    if (event.target.name === "channel") showSubject();
    if (event.target.name === "when") showSchedule();
  });

  // ---- Placeholder chips ----
  [template, subject].forEach((box) => box && box.addEventListener("focus", () => { target = box; }));
  form.addEventListener("click", (event) => {
    const chip = event.target.closest("[data-placeholder]");
    if (!chip) return;
    const box = target || template;
    const text = "{{ " + chip.dataset.placeholder + " }}";
    const start = box.selectionStart ?? box.value.length;
    const end = box.selectionEnd ?? box.value.length;
    box.setRangeText(text, start, end, "end");
    box.focus();
    box.dispatchEvent(new Event("input", { bubbles: true }));
  });

  // ---- Subject only where the channel needs one; the schedule time only when scheduling ----
  function channel() {
    const checked = form.querySelector("[name=channel]:checked");
    return checked ? checked.value : "log";
  }
  function showSubject() {
    const field = form.querySelector("[data-subject-field]");
    if (field) field.hidden = channel() === "log" && !subject.value;
  }
  function scheduling() {
    const checked = form.querySelector("[name=when]:checked");
    return checked && checked.value === "schedule";
  }
  function showSchedule() {
    const field = form.querySelector("[data-schedule-field]");
    if (field) field.hidden = !scheduling();
    const label = form.querySelector("[data-send-open-label]");
    if (label) label.textContent = scheduling() ? "Schedule…" : "Send…";
  }
  showSubject();
  showSchedule();

  // ---- Confirmation: how many people receive it, now or when ----
  form.addEventListener("click", (event) => {
    if (event.target.closest("[data-send-open]")) {
      const audience = document.querySelector("#composer-audience [data-recipients]");
      const count = audience ? Number(audience.dataset.recipients) : null;
      const people = count === null ? "everyone reachable in the segment"
        : numbers.format(count) + (count === 1 ? " person" : " people");
      const name = form.querySelector("[name=name]").value.trim() || "this campaign";
      const confirm = sendDialog.querySelector("[data-send-confirm]");
      const when = form.querySelector("[name=scheduled_at]");
      if (scheduling()) {
        const at = when && when.value ? new Date(when.value) : null;
        const day = at && !isNaN(at) ? at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "the time you chose";
        sendDialog.querySelector("[data-send-title]").textContent = "Schedule “" + name + "”?";
        sendDialog.querySelector("[data-send-text]").textContent = "It will go to " + people + " on " + day + ".";
        confirm.value = "schedule";
        confirm.querySelector("[data-send-label]").textContent = "Schedule";
      } else {
        sendDialog.querySelector("[data-send-title]").textContent = "Send “" + name + "” now?";
        sendDialog.querySelector("[data-send-text]").textContent = "It will go to " + people + " now. This cannot be undone.";
        confirm.value = "send";
        confirm.querySelector("[data-send-label]").textContent = "Send to " + people;
      }
      sendDialog.showModal();
    }
  });

  // The button that was pressed spins until the next page arrives.
  form.addEventListener("submit", (event) => {
    if (event.submitter) event.submitter.setAttribute("aria-busy", "true");
  });

  document.addEventListener("click", (event) => {
    const closer = event.target.closest("[data-dialog-close]");
    if (closer) closer.closest("dialog").close();
  });

  // ---- Suggest messages: the insights form for the chosen segment, in a dialog ----
  form.addEventListener("click", (event) => {
    if (!event.target.closest("[data-suggest-open]")) return;
    if (!segment.value) {
      window.minicrm.showToast("Choose a segment first: suggestions are written from its facts.", "warning");
      segment.focus();
      return;
    }
    const url = form.dataset.suggestUrl.replace("/0/", "/" + encodeURIComponent(segment.value) + "/");
    document.getElementById("suggest-body").innerHTML = '<p class="muted">Loading…</p>';
    window.htmx.ajax("GET", url, { target: "#suggest-body", swap: "innerHTML" });
    suggestDialog.showModal();
  });
  // Each suggestion gets a "Use this" button beside the insights form's own "Copy".
  document.body.addEventListener("htmx:afterSettle", () => {
    suggestDialog.querySelectorAll(".insight-suggestions li").forEach((item) => {
      if (item.querySelector("[data-use-message]")) return;
      const copy = item.querySelector("[data-copy]");
      if (!copy) return;
      const use = document.createElement("button");
      use.type = "button";
      use.className = "btn btn-primary btn-sm";
      use.dataset.useMessage = copy.dataset.copy;
      use.textContent = "Use this";
      copy.before(use);
    });
  });
  suggestDialog.addEventListener("click", (event) => {
    const use = event.target.closest("[data-use-message]");
    if (!use) return;
    template.value = use.dataset.useMessage;
    template.dispatchEvent(new Event("input", { bubbles: true }));
    suggestDialog.close();
    template.focus();
  });
})();
