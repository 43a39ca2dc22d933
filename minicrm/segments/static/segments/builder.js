// The segment rule builder: the rule tree lives here as the rule JSON (DESIGN.md "Segment rules").
// Every edit changes that JSON in place, re-renders only the part that changed (so the control
// being used keeps its focus), writes the JSON into the hidden `rules` input and fires
// `rules-changed`; htmx listens for that event and refreshes the audience panel.
(function () {
  "use strict";

  const root = document.querySelector("[data-rule-builder]");
  if (!root) return;

  const meta = JSON.parse(document.getElementById("rule-fields").textContent);
  const FIELDS = new Map(meta.fields.map((field) => [field.key, field]));
  // A saved rule on a custom attribute the data sample no longer shows: typed by its value.
  function attributeField(key, value) {
    const type = typeof value === "number" || Array.isArray(value) && typeof value[0] === "number" ? "decimal" : "text";
    const field = { key: key, label: key.slice("attributes.".length), type: type, unit: "", group: "Custom attributes", examples: [], operators: meta.attribute_operators[type] };
    FIELDS.set(key, field);
    meta.fields.push(field);
    return field;
  }
  const MAX_DEPTH = meta.max_depth;
  const MAX_CONDITIONS = meta.max_conditions;
  const input = document.getElementById(root.dataset.input);
  const NUMERIC = new Set(["money", "integer"]);
  const icons = document.getElementById("rule-icons");
  // Values the city and tag inputs suggest (the most common ones in the data, capped); when
  // the tag list is complete, a tag outside it is one no customer has yet.
  const SUGGESTIONS = meta.suggestions || {};
  const NO_VALUE = new Set(["is_empty", "is_not_empty", "is_true", "is_false"]);

  let rules = JSON.parse(input.value || "null") || { match: "all", conditions: [] };
  // Conditions just added and not yet filled in: their "value is required" errors wait until
  // the person has had a chance to type, so a new row does not open in red.
  let pristine = new WeakSet();
  let lastErrors = [];
  let uid = 0;

  // ---- small DOM helpers -------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function icon(name) {
    const source = icons.content.querySelector(`[data-icon="${name}"] svg`);
    return source ? source.cloneNode(true) : document.createTextNode("");
  }

  function nextId(prefix) {
    uid += 1;
    return `${prefix}-${uid}`;
  }

  // ---- the rule model ----------------------------------------------------------------------
  function isGroup(node) {
    return node && Array.isArray(node.conditions);
  }

  function operatorOf(field, key) {
    return field.operators.find((operator) => operator.key === key);
  }

  function emptyValue(kind) {
    if (kind === "list") return [];
    if (kind === "range") return [null, null];
    return null;
  }

  // Carry what was typed across an operator change when the shapes allow it.
  function convertValue(value, fromKind, toKind) {
    if (fromKind === toKind) return value;
    if (toKind === "none") return null;
    if (fromKind === "single" && toKind === "range") return [value, null];
    if (fromKind === "range" && toKind === "single") return Array.isArray(value) ? value[0] : null;
    if (fromKind === "single" && toKind === "list") return value === null || value === "" ? [] : [String(value)];
    if (fromKind === "list" && toKind === "single") return Array.isArray(value) && value.length ? value[0] : null;
    return emptyValue(toKind);
  }

  function newCondition() {
    const field = meta.fields[0];
    const operator = operatorOf(field, field.default_operator) || field.operators[0];
    const condition = { field: field.key, operator: operator.key, value: emptyValue(operator.value) };
    pristine.add(condition);
    return condition;
  }

  function countConditions(group) {
    return group.conditions.reduce(
      (total, node) => total + (isGroup(node) ? countConditions(node) : 1), 0,
    );
  }

  function sync() {
    input.value = JSON.stringify(rules);
    refreshLimits();
    refreshNotes();
    input.dispatchEvent(new CustomEvent("rules-changed", { bubbles: true }));
  }

  // ---- unfinished rows and unknown tags ------------------------------------------------------
  // Unfinished: a value still to be typed (the server's draft.py says the same and leaves such
  // rows, and groups with nothing else, out of the live count; saving refuses them).
  function blank(value) {
    return value === null || value === undefined || typeof value === "string" && value.trim() === "";
  }

  function isUnfinished(condition) {
    if (NO_VALUE.has(condition.operator)) return false;
    if (Array.isArray(condition.value)) return condition.value.length === 0 || condition.value.some(blank);
    return blank(condition.value);
  }

  function unknownTags(condition) {
    const known = SUGGESTIONS.tags;
    if (condition.field !== "tags" || !known || !known.complete || !Array.isArray(condition.value)) return [];
    const names = new Set(known.values.map((name) => name.toLowerCase()));
    return condition.value.filter((name) => !blank(name) && !names.has(String(name).trim().toLowerCase()));
  }

  function notCountedBadge(text) {
    return el("span", { class: "badge rb-pending-badge" }, icon("circle-dashed"), el("span", { text: "Not counted yet" }),
      el("span", { class: "rb-note-text", text: `· ${text}` }));
  }

  function refreshNotes() {
    root.querySelectorAll(".rb-condition").forEach((item) => {
      const note = item.querySelector(":scope > .rb-note");
      const pending = isUnfinished(item._node);
      const unknown = unknownTags(item._node);
      item.classList.toggle("is-pending", pending);
      note.replaceChildren();
      if (pending) note.append(notCountedBadge("give it a value to count it"));
      if (unknown.length) {
        note.append(el("span", { class: "badge badge-warning rb-unknown-tag" }, icon("tag"),
          el("span", { text: `No customer has this tag yet: ${unknown.join(", ")}` })));
      }
      note.hidden = !note.childElementCount;
    });
    root.querySelectorAll(".rb-subgroup").forEach((item) => {
      const note = item.querySelector(":scope > .rb-group > .rb-group-note");
      const empty = item._node.conditions.length === 0;
      item.classList.toggle("is-pending", empty);
      note.replaceChildren(...(empty ? [notCountedBadge("add a condition to this group")] : []));
      note.hidden = !empty;
    });
  }

  function datalist(key) {
    const suggestion = SUGGESTIONS[key];
    if (!suggestion || !suggestion.values.length) return null;
    const id = `rb-suggest-${key}`;
    if (!document.getElementById(id)) {
      root.after(el("datalist", { id: id }, ...suggestion.values.map((value) => el("option", { value: value }))));
    }
    return id;
  }

  // ---- value inputs ------------------------------------------------------------------------
  function parseScalar(field, operator, raw) {
    if (raw === "") return null;
    if (field.type === "date" && operator.value !== "days") return raw;
    if (field.type === "text") return raw;
    // An attribute's "is"/"is not" compares as a number only when given one.
    if (field.type === "decimal" && operator.key === "eq" || field.type === "decimal" && operator.key === "ne") {
      const exact = Number(raw);
      return raw.trim() !== "" && Number.isFinite(exact) ? exact : raw;
    }
    const number = Number(raw);
    // Leave what cannot be read as a number to the server, which names the row that is wrong.
    return Number.isFinite(number) ? number : raw;
  }

  function scalarInput(field, operator, value, label, onValue) {
    const days = operator.value === "days";
    let type = "text";
    if (field.type === "date" && !days) type = "date";
    else if (field.type !== "text") type = "number";
    const attrs = {
      type: type,
      class: "rb-input",
      "aria-label": label,
      value: value === null || value === undefined ? "" : String(value),
    };
    if (type === "number" && field.type === "decimal") {
      attrs.step = "any";
      attrs.inputmode = "decimal";
    } else if (type === "number") {
      attrs.step = field.type === "money" ? "0.01" : "1";
      attrs.min = "0";
      attrs.inputmode = field.type === "money" ? "decimal" : "numeric";
    }
    if (field.type === "text") attrs.placeholder = field.examples && field.examples.length ? `e.g. ${field.examples[0]}` : "Type a value";
    if (type === "text") attrs.list = datalist(field.key);
    const control = el("input", attrs);
    control.addEventListener("input", () => onValue(parseScalar(field, operator, control.value)));
    const prefix = field.type === "money" ? el("span", { class: "rb-affix", text: meta.currency }) : null;
    const unit = days ? "days" : field.unit;
    const suffix = unit ? el("span", { class: "rb-affix", text: unit }) : null;
    if (!prefix && !suffix) return control;
    return el("span", { class: "rb-affixed" }, prefix, control, suffix);
  }

  function chipsInput(field, condition, label, onChange) {
    const values = Array.isArray(condition.value) ? condition.value : [];
    condition.value = values;
    const list = el("span", { class: "rb-chip-list" });
    const entry = el("input", {
      type: "text",
      class: "rb-chip-entry",
      "aria-label": `${label}: type a value, then Enter or comma`,
      list: datalist(field.key),
      placeholder: values.length ? "" : field.type === "tags" ? "Add a tag…" : "Add a value…",
    });
    const box = el("span", { class: "rb-chips", onclick: (event) => { if (event.target === box) entry.focus(); } }, list, entry);

    function renderChips() {
      list.replaceChildren(...values.map((value, index) => el(
        "span", { class: "rb-chip" },
        el("span", { text: value }),
        el("button", {
          type: "button",
          class: "rb-chip-remove",
          "aria-label": `Remove ${value}`,
          onclick: () => {
            values.splice(index, 1);
            renderChips();
            entry.focus();
            onChange();
          },
        }, icon("x")),
      )));
      entry.placeholder = values.length ? "" : field.type === "tags" ? "Add a tag…" : "Add a value…";
    }

    function add(text) {
      let added = false;
      for (const part of text.split(",")) {
        const value = part.trim();
        if (!value || values.some((known) => known.toLowerCase() === value.toLowerCase())) continue;
        values.push(value);
        added = true;
      }
      entry.value = "";
      if (added) {
        renderChips();
        onChange();
      }
    }

    entry.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === ",") {
        event.preventDefault();
        add(entry.value);
      } else if (event.key === "Backspace" && entry.value === "" && values.length) {
        values.pop();
        renderChips();
        onChange();
      }
    });
    // A comma typed, pasted or filled in ends a chip; what follows it stays in the box.
    entry.addEventListener("input", () => {
      if (!entry.value.includes(",")) return;
      const parts = entry.value.split(",");
      const rest = parts.pop();
      add(parts.join(","));
      entry.value = rest;
    });
    entry.addEventListener("blur", () => add(entry.value));
    renderChips();
    return box;
  }

  function renderValue(slot, condition) {
    const field = FIELDS.get(condition.field);
    const operator = field && operatorOf(field, condition.operator);
    slot.replaceChildren();
    if (!field || !operator || operator.value === "none") {
      slot.hidden = !field || !operator;
      return;
    }
    slot.hidden = false;
    const touched = () => {
      if (pristine.delete(condition)) showErrors(lastErrors);
      sync();
    };
    const label = `${field.label} value`;
    if (operator.value === "list") {
      slot.append(chipsInput(field, condition, label, touched));
    } else if (operator.value === "range") {
      if (!Array.isArray(condition.value)) condition.value = [null, null];
      const low = scalarInput(field, operator, condition.value[0], `${field.label} from`, (v) => { condition.value[0] = v; touched(); });
      const high = scalarInput(field, operator, condition.value[1], `${field.label} to`, (v) => { condition.value[1] = v; touched(); });
      slot.append(low, el("span", { class: "rb-and", text: "and" }), high);
    } else {
      slot.append(scalarInput(field, operator, condition.value, label, (v) => { condition.value = v; touched(); }));
    }
  }

  // ---- rows and groups ---------------------------------------------------------------------
  function joiner(group) {
    return el("span", { class: "rb-joiner", "aria-hidden": "true", text: group.match === "any" ? "or" : "and" });
  }

  function operatorSelect(field, condition, onChange) {
    const select = el("select", { class: "rb-operator", "aria-label": `${field.label}: comparison` });
    for (const operator of field.operators) {
      select.append(el("option", { value: operator.key, text: operator.label, selected: operator.key === condition.operator }));
    }
    select.addEventListener("change", onChange);
    return select;
  }

  function renderCondition(group, condition) {
    const item = el("li", { class: "rb-item rb-condition" });
    item._node = condition;
    const fieldSelect = el("select", { class: "rb-field", "aria-label": "Field" });
    let field = FIELDS.get(condition.field);
    if (!field && condition.field.startsWith("attributes.")) field = attributeField(condition.field, condition.value);
    if (!field) {
      // A rule saved with a field this version no longer knows: show it so it can be changed.
      fieldSelect.append(el("option", { value: condition.field, text: `Unknown field “${condition.field}”`, selected: true }));
    }
    let optgroup = null;
    for (const option of meta.fields) {
      const node = el("option", { value: option.key, text: option.label, selected: option.key === condition.field });
      if (!option.group) {
        fieldSelect.append(node);
        continue;
      }
      // Custom attributes found in the data come after the fixed fields, under their own heading.
      if (!optgroup) {
        optgroup = el("optgroup", { label: option.group });
        fieldSelect.append(optgroup);
      }
      optgroup.append(node);
    }
    const operatorSlot = el("span", { class: "rb-operator-slot" });
    const valueSlot = el("span", { class: "rb-value" });

    function onOperator(event) {
      const before = operatorOf(field, condition.operator);
      const after = operatorOf(field, event.target.value);
      condition.value = convertValue(condition.value, before ? before.value : "none", after.value);
      condition.operator = after.key;
      renderValue(valueSlot, condition);
      sync();
    }

    function renderOperator() {
      operatorSlot.replaceChildren(field ? operatorSelect(field, condition, onOperator) : "");
    }

    fieldSelect.addEventListener("change", () => {
      const previousField = field;
      const previous = field && operatorOf(field, condition.operator);
      field = FIELDS.get(fieldSelect.value);
      condition.field = field.key;
      let operator = operatorOf(field, condition.operator);
      if (!operator) operator = operatorOf(field, field.default_operator) || field.operators[0];
      // Keep what was typed only when it still means the same kind of thing (a number stays a
      // number from spend to order count; a date never becomes an amount).
      const sameShape = previous && previous.value === operator.value
        && NUMERIC.has(previousField.type) === NUMERIC.has(field.type)
        && (previousField.type === field.type || NUMERIC.has(field.type));
      condition.operator = operator.key;
      if (!sameShape) condition.value = emptyValue(operator.value);
      renderOperator();
      renderValue(valueSlot, condition);
      sync();
    });

    const remove = el("button", {
      type: "button",
      class: "btn btn-ghost btn-icon btn-sm rb-remove",
      "aria-label": "Remove this condition",
      title: "Remove this condition",
      onclick: () => removeItem(group, item),
    }, icon("x"));

    renderOperator();
    renderValue(valueSlot, condition);
    item.append(
      joiner(group),
      el("div", { class: "rb-row" }, fieldSelect, operatorSlot, valueSlot, remove),
      el("p", { class: "rb-error", role: "alert", hidden: true }),
      el("p", { class: "rb-note", hidden: true }),
    );
    return item;
  }

  function renderItem(group, node, depth) {
    if (isGroup(node)) {
      const item = el("li", { class: "rb-item rb-subgroup" });
      item._node = node;
      item.append(joiner(group), renderGroup(node, depth + 1, group, item));
      return item;
    }
    return renderCondition(group, node);
  }

  function renderGroup(group, depth, parent, parentItem) {
    const name = nextId("rb-match");
    const card = el("div", { class: "rb-group", "data-depth": String(depth), role: "group" });
    card._node = group;
    const items = el("ol", { class: "rb-items" });
    const empty = el("li", { class: "rb-empty muted small", text: depth === 1
      ? "No conditions yet: every customer matches. Add a condition to narrow the audience."
      : "This group is empty and matches every customer." });

    const matchControl = el("div", { class: "rb-match", role: "radiogroup", "aria-label": "Match" });
    for (const [value, text] of [["all", "All"], ["any", "Any"]]) {
      const radio = el("input", { type: "radio", name: name, value: value, checked: group.match === value });
      radio.addEventListener("change", () => {
        group.match = value;
        items.querySelectorAll(":scope > .rb-item > .rb-joiner").forEach((node) => {
          node.textContent = value === "any" ? "or" : "and";
        });
        sync();
      });
      matchControl.append(el("label", {}, radio, el("span", { text: text })));
    }

    const head = el("div", { class: "rb-group-head" },
      el("span", { class: "rb-group-lead", text: depth === 1 ? "Customers who match" : "Match" }),
      matchControl,
      el("span", { class: "rb-group-lead", text: "of these conditions" }),
    );
    if (parent) {
      head.append(el("button", {
        type: "button",
        class: "btn btn-ghost btn-sm rb-remove-group",
        onclick: () => removeItem(parent, parentItem),
      }, icon("trash-2"), el("span", { text: "Remove group" })));
    }

    items.append(empty);
    for (const node of group.conditions) items.append(renderItem(group, node, depth));
    empty.hidden = group.conditions.length > 0;

    // A new row or group goes at the end, takes the keyboard, and counts at once.
    function append(node) {
      group.conditions.push(node);
      const item = renderItem(group, node, depth);
      items.append(item);
      empty.hidden = true;
      renumber();
      item.querySelector(".rb-field").focus();
      sync();
    }

    const addCondition = el("button", {
      type: "button",
      class: "btn btn-secondary btn-sm rb-add-condition",
      onclick: () => append(newCondition()),
    }, icon("plus"), el("span", { text: "Add condition" }));
    const actions = el("div", { class: "rb-group-actions" }, addCondition);
    if (depth < MAX_DEPTH) {
      actions.append(el("button", {
        type: "button",
        class: "btn btn-ghost btn-sm rb-add-group",
        // The opposite of the parent's match: nesting the same match would change nothing.
        onclick: () => append({ match: group.match === "all" ? "any" : "all", conditions: [newCondition()] }),
      }, icon("folder-plus"), el("span", { text: "Add group" })));
    }
    card.append(head, items, el("p", { class: "rb-group-note rb-note", hidden: true }),
      el("p", { class: "rb-error rb-group-error", role: "alert", hidden: true }), actions);
    return card;
  }

  function removeItem(group, item) {
    const index = group.conditions.indexOf(item._node);
    if (index < 0) return;
    // Keep the keyboard where the person was: the next row, else the previous, else "Add".
    const neighbour = item.nextElementSibling || item.previousElementSibling;
    group.conditions.splice(index, 1);
    const list = item.parentElement;
    item.remove();
    list.querySelector(":scope > .rb-empty").hidden = group.conditions.length > 0;
    renumber();
    const target = neighbour && !neighbour.classList.contains("rb-empty")
      ? neighbour.querySelector("select, input, button")
      : list.parentElement.querySelector(":scope > .rb-group-actions .rb-add-condition");
    if (target) target.focus();
    sync();
  }

  // Paths name each row the way the server's validator does: conditions[1].conditions[0].
  function renumber() {
    (function walk(card, path) {
      card.dataset.path = path;
      let index = 0;
      for (const item of card.querySelectorAll(":scope > .rb-items > .rb-item")) {
        const itemPath = `${path ? path + "." : ""}conditions[${index}]`;
        item.dataset.path = itemPath;
        const child = item.querySelector(":scope > .rb-group");
        if (child) walk(child, itemPath);
        index += 1;
      }
    })(tree(), "");
  }

  function refreshLimits() {
    const full = countConditions(rules) >= MAX_CONDITIONS;
    root.querySelectorAll(".rb-add-condition, .rb-add-group").forEach((button) => {
      button.disabled = full;
      button.title = full ? `A segment holds at most ${MAX_CONDITIONS} conditions.` : "";
    });
  }

  function tree() {
    return root.querySelector(":scope > .rb-group");
  }

  function render() {
    pristine = new WeakSet();
    root.replaceChildren(renderGroup(rules, 1, null, null));
    renumber();
    refreshLimits();
    refreshNotes();
  }

  // ---- errors from the server, under the row they belong to --------------------------------
  function ownerOf(path) {
    const targets = [tree(), ...root.querySelectorAll(".rb-item")];
    let best = tree();
    let bestLength = -1;
    for (const node of targets) {
      const candidate = node.dataset.path || "";
      const matches = candidate === ""
        || path === candidate
        || path.startsWith(candidate + ".")
        || path.startsWith(candidate + "[");
      if (matches && candidate.length > bestLength) {
        best = node;
        bestLength = candidate.length;
      }
    }
    // A group's own errors go under its card, not inside the list item that holds it.
    return best.classList.contains("rb-subgroup") ? best.querySelector(":scope > .rb-group") : best;
  }

  function errorSlot(owner) {
    return owner.classList.contains("rb-group")
      ? owner.querySelector(":scope > .rb-group-error")
      : owner.querySelector(":scope > .rb-error");
  }

  function showErrors(errors) {
    lastErrors = errors || [];
    root.querySelectorAll(".rb-error").forEach((slot) => {
      slot.hidden = true;
      slot.replaceChildren();
    });
    root.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
    for (const error of lastErrors) {
      const owner = ownerOf(error.path || "");
      if (owner._node && pristine.has(owner._node)) continue;
      const slot = errorSlot(owner);
      const message = String(error.message || "");
      slot.append(el("span", { text: message.charAt(0).toUpperCase() + message.slice(1) }));
      slot.hidden = false;
      const row = owner.querySelector(":scope > .rb-row");
      if (row) {
        const part = (error.path || "").split(".").pop();
        const selector = part === "field" ? ".rb-field" : part === "operator" ? ".rb-operator" : ".rb-value input";
        row.querySelectorAll(selector).forEach((node) => node.setAttribute("aria-invalid", "true"));
      }
    }
  }

  // ---- describe your audience --------------------------------------------------------------
  function setupDescribe() {
    const form = document.querySelector("[data-describe]");
    if (!form) return;
    const text = form.querySelector("textarea, input[type=text]");
    const button = form.querySelector("button[type=submit]");
    const status = form.querySelector("[data-describe-status]");
    let undo = null;

    // One message block; `append` adds it under the others (what was left out goes apart).
    function say(message, level, withUndo, append) {
      const block = el("div", { class: `rb-describe-block rb-describe-${level}` }, el("span", { text: message }));
      if (append) status.append(block);
      else status.replaceChildren(block);
      status.hidden = false;
      if (withUndo) {
        block.append(el("button", {
          type: "button",
          class: "btn btn-ghost btn-sm",
          onclick: () => {
            if (undo) loadRules(undo);
            undo = null;
            say("The previous rules are back.", "info", false);
          },
        }, icon("undo-2"), el("span", { text: "Undo" })));
      }
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const description = text.value.trim();
      if (!description) {
        say("Describe the customers you want, for example “spent over 5000 and no order in 90 days”.", "error", false);
        text.focus();
        return;
      }
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
      try {
        const response = await fetch(form.dataset.describe, {
          method: "POST",
          headers: {
            "Content-Type": "application/json",
            Accept: "application/json",
            "X-CSRFToken": document.querySelector('meta[name="csrf-token"]').content,
          },
          credentials: "same-origin",
          body: JSON.stringify({ text: description }),
        });
        const body = await response.json().catch(() => ({}));
        if (response.ok && isGroup(body.rules) && body.rules.conditions.length) {
          undo = JSON.parse(JSON.stringify(rules));
          loadRules(body.rules);
          const { understood, unused } = splitExplanation(body);
          say(understood || "The builder now holds these rules. Review them, then save.", "success", true);
          if (unused.length) {
            say("Not used (the builder does not hold these yet: add them by hand or rephrase):", "warning", false, true);
            status.lastElementChild.append(el("ul", { class: "rb-unused", "data-testid": "describe-unused" },
              ...unused.map((part) => el("li", { text: part }))));
          }
        } else if (response.ok) {
          say("Nothing in that description could be turned into rules, so the builder is unchanged. Try phrases like “spent over 5000” or “from Mumbai”.", "error", false);
        } else if (response.status === 404) {
          say("Describing an audience in words is not available on this server yet. Build the rules below instead.", "error", false);
        } else {
          say(readableError(body) || "That description could not be turned into rules. Try rephrasing it.", "error", false);
        }
      } catch (_error) {
        say("The server could not be reached. Check the connection and try again.", "error", false);
      } finally {
        button.removeAttribute("aria-busy");
        button.disabled = false;
      }
    });
  }

  // What the parser understood, in words, and apart from it the phrases it could not use: the
  // `unparsed` list when the server sends one, else the "Left out…" sentence of the explanation.
  function splitExplanation(body) {
    const explanation = String(body.explanation || "");
    const marker = explanation.search(/Left out because[^:]*:/);
    let understood = explanation;
    let unused = Array.isArray(body.unparsed) ? body.unparsed.map(String) : null;
    if (marker >= 0) {
      const rest = explanation.slice(marker);
      const end = rest.search(/[”"]\.(\s|$)/);
      const sentence = end >= 0 ? rest.slice(0, end + 2) : rest;
      understood = (explanation.slice(0, marker) + explanation.slice(marker + sentence.length)).replace(/\s+/g, " ").trim();
      if (!unused) unused = Array.from(sentence.matchAll(/“([^”]+)”/g), (match) => match[1]);
    }
    return { understood: understood, unused: unused || [] };
  }

  function readableError(body) {
    if (typeof body.detail === "string") return body.detail;
    if (typeof body.message === "string") return body.message;
    if (Array.isArray(body.detail) && body.detail.length) return body.detail.map((d) => d.msg || d.message).join(" ");
    return "";
  }

  function loadRules(next) {
    rules = isGroup(next) ? next : { match: "all", conditions: [] };
    render();
    showErrors([]);
    sync();
  }

  // ---- the audience panel ------------------------------------------------------------------
  function readPanel() {
    const source = document.getElementById("preview-errors");
    showErrors(source ? JSON.parse(source.textContent) : []);
    document.querySelectorAll("[data-updated]").forEach((node) => {
      node.dataset.updatedAt = String(Date.now());
    });
  }

  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target && event.detail.target.id === "audience") readPanel();
  });

  // "Updated just now" stays true as time passes.
  setInterval(() => {
    document.querySelectorAll("[data-updated]").forEach((node) => {
      const seconds = Math.round((Date.now() - Number(node.dataset.updatedAt)) / 1000);
      node.textContent = seconds < 10 ? "Updated just now"
        : seconds < 60 ? `Updated ${seconds} s ago`
          : `Updated ${Math.floor(seconds / 60)} min ago`;
    });
  }, 5000);

  render();
  input.value = JSON.stringify(rules);
  readPanel();
  // After a failed save the page carries the validator's errors for the posted rules.
  const initialErrors = document.getElementById("rule-errors");
  if (initialErrors) showErrors(JSON.parse(initialErrors.textContent));
  setupDescribe();
})();
