// Sortable, filterable sample tables with a detail view. Each <section class="datatable"
// data-source="ID"> reads its rows and settings from the JSON block #ID. Text from the data
// reaches the page only through textContent: a story holding markup shows as text.
"use strict";
(function () {
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function show(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(3);
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function compare(a, b) {
    const na = a === null || a === undefined, nb = b === null || b === undefined;
    if (na || nb) return na - nb;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b));
  }

  function detailField(field, row) {
    const box = el("div", "field");
    box.appendChild(el("h4", null, field.label));
    const value = row[field.key];
    if (field.kind === "kv" || field.kind === "cols") {
      const grid = el("div", field.kind === "cols" ? "cols" : "kv");
      for (const [k, v] of Object.entries(value || {})) {
        const cell = el("div");
        cell.appendChild(el(field.kind === "cols" ? "h5" : "b", null, k));
        cell.appendChild(el(field.kind === "cols" ? "pre" : "span", null, show(v)));
        grid.appendChild(cell);
      }
      if (!grid.childNodes.length) grid.appendChild(el("span", "muted", "–"));
      box.appendChild(grid);
    } else {
      box.appendChild(el("pre", null, show(value)));
    }
    return box;
  }

  function setup(section) {
    const spec = JSON.parse(document.getElementById(section.dataset.source).textContent);
    const state = { sort: null, desc: false, limit: spec.page || 200 };
    const controls = el("div", "filters");
    const search = el("input", "search");
    search.type = "search";
    search.placeholder = "search text…";
    controls.appendChild(search);
    let select = null, lo = null, hi = null;
    if (spec.select) {
      select = el("select", "filter-select");
      select.appendChild(el("option", null, "all " + spec.select.label)).value = "";
      const seen = [...new Set(spec.rows.map((r) => r[spec.select.key]))].sort(compare);
      for (const v of seen) select.appendChild(el("option", null, show(v))).value = show(v);
      controls.appendChild(select);
    }
    if (spec.range) {
      controls.appendChild(el("label", null, spec.range.label));
      lo = el("input", "range-min");
      hi = el("input", "range-max");
      for (const [input, hint] of [[lo, "min"], [hi, "max"]]) {
        input.type = "number";
        input.step = "any";
        input.placeholder = hint;
        controls.appendChild(input);
      }
    }
    const count = el("span", "count");
    controls.appendChild(count);
    section.appendChild(controls);

    const table = el("table", "rows");
    const headRow = table.createTHead().insertRow();
    const body = table.createTBody();
    spec.columns.forEach((col) => {
      const th = el("th", col.num ? "num" : null, col.label);
      th.tabIndex = 0;
      th.addEventListener("click", () => {
        state.desc = state.sort === col.key ? !state.desc : !!col.num;
        state.sort = col.key;
        for (const other of headRow.children) other.removeAttribute("aria-sort");
        th.setAttribute("aria-sort", state.desc ? "descending" : "ascending");
        draw();
      });
      headRow.appendChild(th);
    });
    const wrap = el("div", "scroll");
    wrap.appendChild(table);
    section.appendChild(wrap);
    const more = el("button", "more", "show more");
    more.addEventListener("click", () => { state.limit += spec.page || 200; draw(); });
    section.appendChild(more);

    const dialog = el("dialog", "detail");
    section.appendChild(dialog);
    function open(row) {
      dialog.replaceChildren();
      const close = el("button", "close", "close ×");
      close.addEventListener("click", () => dialog.close());
      dialog.appendChild(close);
      for (const field of spec.detail) dialog.appendChild(detailField(field, row));
      dialog.showModal();
    }

    function matches(row) {
      const q = search.value.trim().toLowerCase();
      if (q && !spec.search.some((k) => show(row[k]).toLowerCase().includes(q))) return false;
      if (select && select.value && show(row[spec.select.key]) !== select.value) return false;
      if (spec.range && (lo.value !== "" || hi.value !== "")) {
        const v = row[spec.range.key];
        if (typeof v !== "number") return false;
        if (lo.value !== "" && v < Number(lo.value)) return false;
        if (hi.value !== "" && v > Number(hi.value)) return false;
      }
      return true;
    }

    function draw() {
      let rows = spec.rows.filter(matches);
      if (state.sort) {
        const k = state.sort, sign = state.desc ? -1 : 1;
        rows = rows.slice().sort((a, b) => {
          const nullA = a[k] === null || a[k] === undefined, nullB = b[k] === null || b[k] === undefined;
          return nullA || nullB ? nullA - nullB : sign * compare(a[k], b[k]);
        });
      }
      const shown = rows.slice(0, state.limit);
      const fragment = document.createDocumentFragment();
      for (const row of shown) {
        const tr = el("tr");
        for (const col of spec.columns) {
          let text = show(row[col.key]);
          if (text.length > 140) text = text.slice(0, 140) + "…";
          tr.appendChild(el("td", col.num ? "num" : null, text));
        }
        tr.tabIndex = 0;
        tr.addEventListener("click", () => open(row));
        tr.addEventListener("keydown", (e) => { if (e.key === "Enter") open(row); });
        fragment.appendChild(tr);
      }
      body.replaceChildren(fragment);
      count.textContent = `${shown.length.toLocaleString()} of ${rows.length.toLocaleString()} shown`;
      more.hidden = shown.length >= rows.length;
    }

    for (const input of [search, select, lo, hi]) if (input) input.addEventListener("input", draw);
    draw();
  }

  document.querySelectorAll("section.datatable").forEach(setup);
})();
