"use strict";
// The playground page. Model output is only ever added as text nodes (append of a string,
// textContent), never parsed as HTML. Each column streams /api/generate's NDJSON lines.
(function () {
  const $ = (id) => document.getElementById(id);
  const controls = ["temperature", "top_k", "top_p", "max_tokens", "seed"];
  const columns = [];
  let models = [];

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function problem(message) {
    const box = $("problem");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function settings() {
    const out = {};
    for (const name of controls) {
      const raw = $(name).value.trim();
      out[name] = raw === "" ? null : Number(raw);
    }
    return out;
  }

  function addColumn(index) {
    const node = $("column").content.firstElementChild.cloneNode(true);
    const column = {
      node,
      model: index,
      mode: models[index].mode,
      history: [],
      controller: null,
      pick: node.querySelector("select.model"),
      modes: node.querySelector("select.mode"),
      transcript: node.querySelector(".transcript"),
      status: node.querySelector(".status"),
    };
    models.forEach((m, i) => column.pick.append(new Option(`${m.name} (${m.kind})`, String(i))));
    column.pick.value = String(index);
    column.pick.addEventListener("change", () => {
      column.model = Number(column.pick.value);
      column.mode = models[column.model].mode;
      reset(column);
    });
    column.modes.addEventListener("change", () => {
      column.mode = column.modes.value;
      reset(column);
    });
    node.querySelector("button.clear").addEventListener("click", () => reset(column));
    columns.push(column);
    $("columns").append(node);
    reset(column);
  }

  function reset(column) {
    if (column.controller) column.controller.abort();
    column.controller = null;
    column.history = [];
    column.transcript.replaceChildren();
    setStatus(column, "idle", "");
    const allowed = models[column.model].modes;
    for (const option of column.modes.options) option.hidden = !allowed.includes(option.value);
    column.modes.value = column.mode;
    column.modes.disabled = allowed.length < 2;
    column.node.dataset.model = models[column.model].name;
    column.node.dataset.mode = column.mode;
  }

  function setStatus(column, state, text, isError) {
    column.node.dataset.state = state;
    column.status.textContent = text;
    column.status.classList.toggle("error", Boolean(isError));
  }

  function busy() {
    $("stop").disabled = !columns.some((c) => c.node.dataset.state === "streaming");
  }

  async function failure(response) {
    try {
      const body = await response.json();
      return body.error || `HTTP ${response.status}`;
    } catch (e) {
      return `HTTP ${response.status}`;
    }
  }

  async function classify(column, text, signal) {
    column.transcript.replaceChildren(el("div", "prompt", text));
    setStatus(column, "streaming", "classifying…");
    const response = await fetch("api/classify", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: column.model, text }),
      signal,
    });
    if (!response.ok) {
      setStatus(column, "error", `error: ${await failure(response)}`, true);
      return;
    }
    const { labels } = await response.json();
    const table = el("table", "labels");
    for (const { label, probability } of labels) {
      const row = table.insertRow();
      row.append(el("td", "label", label));
      const bar = el("progress");
      bar.max = 1;
      bar.value = probability;
      const cell = el("td", "bar");
      cell.append(bar);
      row.append(cell, el("td", "p", probability.toFixed(3)));
    }
    column.transcript.append(table);
    setStatus(column, "done", `${labels[0].label} (${labels[0].probability.toFixed(3)})`);
  }

  async function generate(column, text, signal) {
    const story = column.mode === "story";
    const history = column.history; // a reset gives the column a new one
    let answer;
    let messages;
    if (story) {
      answer = el("span", "answer");
      column.transcript.replaceChildren(el("span", "prompt", text), answer);
      messages = [{ role: "user", content: text }];
    } else {
      history.push({ role: "user", content: text });
      answer = el("div", "turn assistant");
      column.transcript.append(el("div", "turn user", text), answer);
      messages = history.slice();
    }
    setStatus(column, "streaming", "…");
    column.node.dataset.reads = "0";
    const response = await fetch("api/generate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: column.model, mode: column.mode, messages, settings: settings() }),
      signal,
    });
    if (!response.ok) {
      if (!story) history.pop();
      answer.remove();
      setStatus(column, "error", `error: ${await failure(response)}`, true);
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let written = "";
    let reads = 0;
    let ended = false;
    try {
      await read();
    } finally {
      // Even a stopped answer is part of the conversation the model is shown next.
      if (!story) history.push({ role: "assistant", content: written });
    }
    if (!ended) setStatus(column, "error", "error: the answer stopped before its end", true);

    async function read() {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        const lines = buffer.split("\n");
        buffer = lines.pop();
        let pieces = 0;
        for (const line of lines) {
          if (line) pieces += show(JSON.parse(line));
        }
        if (pieces) column.node.dataset.reads = String((reads += 1));
      }
    }

    function show(event) {
      if (event.event === "piece") {
        answer.append(event.text); // a text node: markup in an answer stays text
        written += event.text;
        return 1;
      }
      ended = true;
      if (event.event === "error") {
        setStatus(column, "error", `error: ${event.message}`, true);
        return 0;
      }
      const rate = event.seconds > 0 ? (event.tokens / event.seconds).toFixed(1) : "–";
      let summary = `${event.tokens} tokens · ${rate} tok/s · ${event.finish_reason}`;
      if (event.replaced) {
        summary += ` · ${event.replaced} × � where the model wrote bytes that are not UTF-8`;
      }
      setStatus(column, "done", summary);
      return 0;
    }
  }

  async function run(column, text) {
    if (column.controller) column.controller.abort();
    const controller = new AbortController();
    column.controller = controller;
    try {
      if (column.mode === "classify") await classify(column, text, controller.signal);
      else await generate(column, text, controller.signal);
    } catch (e) {
      if (column.controller !== controller) return; // reset or replaced: nothing to report
      if (e.name === "AbortError") setStatus(column, "stopped", "stopped");
      else setStatus(column, "error", `error: ${e.message}`, true);
    } finally {
      if (column.controller === controller) column.controller = null;
      busy();
    }
  }

  function send(event) {
    event.preventDefault();
    const text = $("prompt").value;
    if (!text.trim()) return;
    problem("");
    for (const column of columns) run(column, text);
    $("stop").disabled = false;
  }

  async function start() {
    let data;
    try {
      const response = await fetch("api/models");
      data = await response.json();
    } catch (e) {
      problem(`cannot reach the playground server: ${e.message}`);
      return;
    }
    models = data.models;
    for (const name of controls) {
      const value = data.defaults[name];
      $(name).value = value === null || value === undefined ? "" : String(value);
    }
    models.forEach((_, i) => addColumn(i));
    $("ask").addEventListener("submit", send);
    $("prompt").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(e);
    });
    $("stop").addEventListener("click", () => {
      for (const column of columns) if (column.controller) column.controller.abort();
    });
    document.body.dataset.ready = "true";
  }

  start();
})();
