// limn serve: the web page. Plain JavaScript, no build step, no libraries; talks to the jobs API
// (POST /v1/jobs, GET/DELETE /v1/jobs/{id}, GET /v1/jobs/{id}/result, GET /v1/models), or, where
// the server has jobs off (behind Ray Serve: /v1/models says "jobs": false), waits on POST /v1/OP.
"use strict";

(() => {
  const KEY_STORAGE = "limn.apiKey";
  const TERMINAL = new Set(["done", "failed", "cancelled", "timed_out"]);
  const IN_FLIGHT = new Set(["uploading", "waiting", "queued", "running", "cancelling"]);
  const SUFFIX = { "cartoonize": "cartoon", "restore-faces": "restored" };
  const EXTENSION = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp" };

  const $ = (selector, root = document) => root.querySelector(selector);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  const ui = {
    status: $("#server-status"),
    opInputs: document.querySelectorAll('input[name="op"]'),
    opRestore: $("#op-restore"),
    headRow: $("#head-row"),
    head: $("#head"),
    model: $("#model"),
    modelHint: $("#model-hint"),
    strength: $("#strength"),
    strengthValue: $("#strength-value"),
    strengthMin: $("#strength-min"),
    strengthMax: $("#strength-max"),
    size: $("#size"),
    sizeHint: $("#size-hint"),
    format: $("#format"),
    qualityRow: $("#quality-row"),
    quality: $("#quality"),
    qualityValue: $("#quality-value"),
    keyBox: $("#apikey-box"),
    key: $("#apikey"),
    keyState: $("#apikey-state"),
    dropzone: $("#dropzone"),
    pick: $("#pick"),
    fileInput: $("#file-input"),
    start: $("#start"),
    downloadAll: $("#download-all"),
    clear: $("#clear"),
    count: $("#photo-count"),
    empty: $("#empty"),
    cards: $("#cards"),
    template: $("#card-template"),
    announcer: $("#announcer"),
  };

  const page = { models: [], defaults: {}, jobs: true, cards: [], headOffered: false, modelsLost: false };

  // ---- small helpers ------------------------------------------------------------------------

  function formatBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  function stem(name) {
    const dot = name.lastIndexOf(".");
    return (dot > 0 ? name.slice(0, dot) : name) || "photo";
  }

  function announce(text) {
    ui.announcer.textContent = text;
  }

  // ---- ZIP (store only, CRC-32) -------------------------------------------------------------

  const CRC_TABLE = (() => {
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
    return table;
  })();

  function crc32(bytes) {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  // files: [{name: string, data: Uint8Array}] -> Blob of a ZIP archive with every entry stored.
  function makeZip(files, when = new Date()) {
    if (files.length > 0xffff) throw new Error("too many files for one ZIP archive");
    const encoder = new TextEncoder();
    const time = (when.getHours() << 11) | (when.getMinutes() << 5) | (when.getSeconds() >> 1);
    const date = ((Math.max(when.getFullYear(), 1980) - 1980) << 9) | ((when.getMonth() + 1) << 5) | when.getDate();
    const parts = [];
    const central = [];
    let offset = 0;
    let centralSize = 0;
    for (const file of files) {
      const name = encoder.encode(file.name);
      const size = file.data.length;
      const crc = crc32(file.data);
      if (offset + 30 + name.length + size > 0xffffffff) throw new Error("the results are too large for one ZIP archive");
      const local = new DataView(new ArrayBuffer(30));
      local.setUint32(0, 0x04034b50, true);   // local file header
      local.setUint16(4, 20, true);            // version needed: 2.0
      local.setUint16(6, 0x0800, true);        // flags: UTF-8 names
      local.setUint16(8, 0, true);             // method: stored
      local.setUint16(10, time, true);
      local.setUint16(12, date, true);
      local.setUint32(14, crc, true);
      local.setUint32(18, size, true);         // compressed size
      local.setUint32(22, size, true);         // uncompressed size
      local.setUint16(26, name.length, true);
      local.setUint16(28, 0, true);            // extra length
      parts.push(local, name, file.data);

      const entry = new DataView(new ArrayBuffer(46));
      entry.setUint32(0, 0x02014b50, true);   // central directory header
      entry.setUint16(4, 20, true);            // version made by
      entry.setUint16(6, 20, true);            // version needed
      entry.setUint16(8, 0x0800, true);
      entry.setUint16(10, 0, true);
      entry.setUint16(12, time, true);
      entry.setUint16(14, date, true);
      entry.setUint32(16, crc, true);
      entry.setUint32(20, size, true);
      entry.setUint32(24, size, true);
      entry.setUint16(28, name.length, true);
      // extra, comment, disk number, internal and external attributes: 0
      entry.setUint32(42, offset, true);
      central.push(entry, name);
      centralSize += 46 + name.length;
      offset += 30 + name.length + size;
    }
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, 0x06054b50, true);       // end of central directory
    end.setUint16(8, files.length, true);
    end.setUint16(10, files.length, true);
    end.setUint32(12, centralSize, true);
    end.setUint32(16, offset, true);
    return new Blob([...parts, ...central, end], { type: "application/zip" });
  }

  function saveBlob(blob, name) {
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  // ---- the API ------------------------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, code, message, retryAfter) {
      super(message);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter;
    }
  }

  function apiKey() {
    return ui.key.value.trim();
  }

  async function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    const key = apiKey();
    if (key) headers.set("Authorization", `Bearer ${key}`);
    let response;
    try {
      response = await fetch(path, { ...options, headers });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiFailure(0, "network", "Cannot reach the server.");
    }
    if (response.ok) return response;
    let code = `http_${response.status}`;
    let message = `${response.status} ${response.statusText}`.trim();
    try {
      const body = await response.json();
      if (body && body.error && typeof body.error === "object") {
        code = body.error.code || code;
        message = body.error.message || message;
      } else if (body && typeof body.error === "string") {
        message = body.error;
      }
    } catch (_) { /* not JSON: keep the status line */ }
    const retry = Number.parseFloat(response.headers.get("Retry-After") || "");
    if (response.status === 401) keyNeeded(true);
    throw new ApiFailure(response.status, code, message, Number.isFinite(retry) ? retry : null);
  }

  // What went wrong, led by what the user can do about it (unless the server's message says it).
  function describe(error) {
    if (!(error instanceof ApiFailure)) return `Something went wrong: ${error.message || error}`;
    const { status, code } = error;
    const message = error.message ? error.message[0].toUpperCase() + error.message.slice(1) : "";
    const lead = (title, phrase) => (message.toLowerCase().includes(phrase) ? message : `${title} ${message}`.trim());
    if (code === "image_too_large" || code === "payload_too_large" || status === 413) return lead("Too big.", "too large");
    if (code === "unsupported_media_type" || code === "invalid_image" || status === 415) return lead("Not an image.", "not an image");
    if (status === 401 || code === "unauthorized") return lead("API key needed or wrong.", "key");
    if (code === "timeout" || status === 504) return lead("Timed out.", "timed out");
    if (code === "draining") return lead("The server is shutting down.", "shutting down");
    if (code === "model_not_found") return lead("Unknown model.", "model");
    return message || `Error ${status}`;
  }

  // ---- settings -----------------------------------------------------------------------------

  function currentOp() {
    return document.querySelector('input[name="op"]:checked').value;
  }

  function roleOf(op) {
    return op === "restore-faces" ? "restore" : "cartoon";
  }

  function readSettings() {
    const op = currentOp();
    const settings = {
      op,
      model: ui.model.value,
      strength: ui.strength.value,
      max_side: ui.size.value,
      format: ui.format.value,
    };
    if (op === "restore-faces") delete settings.max_side;   // restoring keeps the photo's size
    if (settings.format !== "png") settings.quality = ui.quality.value;
    if (op === "cartoonize" && !ui.headRow.hidden) settings.head = ui.head.checked ? "true" : "false";
    return settings;
  }

  function refreshSettings() {
    const op = currentOp();
    const role = roleOf(op);
    const models = page.models.filter((m) => m.role === role);
    const previous = ui.model.value;
    ui.model.replaceChildren(...models.map((m) => {
      const option = new Option(m.name, m.name);
      option.dataset.role = m.role;
      return option;
    }));
    if (!models.length) ui.model.append(new Option(page.models.length ? `No ${role} model loaded` : "Loading…", ""));
    const preferred = models.find((m) => m.name === previous) ? previous : page.defaults[role];
    if (preferred && models.find((m) => m.name === preferred)) ui.model.value = preferred;
    ui.model.disabled = models.length === 0;
    describeModel();
    const hasHead = page.models.some((m) => m.role === "head");
    if (hasHead && !page.headOffered) ui.head.checked = true;   // on by default once a head model shows up
    page.headOffered = hasHead;
    ui.headRow.hidden = !(op === "cartoonize" && hasHead);
    ui.opRestore.disabled = page.models.length > 0 && !page.models.some((m) => m.role === "restore");
    ui.opRestore.closest(".segmented").title = ui.opRestore.disabled ? "No face restorer is loaded on the server" : "";
    ui.qualityRow.hidden = ui.format.value === "png";
    ui.strengthMin.textContent = op === "restore-faces" ? "Original" : "Photo";
    ui.strengthMax.textContent = op === "restore-faces" ? "Fully restored" : "Full cartoon";
    ui.size.disabled = op === "restore-faces";
    ui.sizeHint.textContent = op === "restore-faces" ? "Restoring faces keeps the photo's size." : "";
    updateToolbar();
  }

  function describeModel() {
    const model = page.models.find((m) => m.name === ui.model.value);
    if (!model) { ui.modelHint.textContent = ""; return; }
    const bits = [model.kind, model.device, model.precision, model.license && `licence ${model.license}`];
    ui.modelHint.textContent = bits.filter(Boolean).join(" · ");
  }

  async function loadModels() {
    let problem = "";
    try {
      const response = await api("/v1/models");
      const body = await response.json();
      page.models = Array.isArray(body.models) ? body.models : [];
      page.defaults = body.default || {};
      page.jobs = body.jobs !== false;
      page.modelsLost = false;
      keyNeeded(false);
      if (!page.models.length) problem = "The server has no models loaded.";
    } catch (error) {
      page.models = [];
      page.defaults = {};
      page.modelsLost = !(error instanceof ApiFailure) || error.status === 0 || error.status >= 500;
      problem = describe(error);
    }
    refreshSettings();
    if (problem) ui.modelHint.textContent = problem;
  }

  function keyNeeded(needed) {
    ui.keyBox.classList.toggle("needed", needed);
    ui.keyState.textContent = needed ? "(required)" : apiKey() ? "(set)" : "(optional)";
    if (needed) ui.keyBox.open = true;
  }

  async function checkHealth() {
    const set = (state, text) => {
      ui.status.dataset.state = state;
      $(".text", ui.status).textContent = text;
    };
    const key = apiKey();
    try {
      const response = await fetch("/readyz", { cache: "no-store", headers: key ? { Authorization: `Bearer ${key}` } : {} });
      if (response.ok) set("ready", "Server ready");
      else set("starting", response.status === 503 ? "Server not ready" : `Server: ${response.status}`);
      if (response.ok && page.modelsLost) loadModels();   // back after an outage or a restart
    } catch (_) {
      set("down", "Server unreachable");
    }
  }

  // ---- one photo ----------------------------------------------------------------------------

  class Card {
    constructor(file) {
      this.file = file;
      this.run = null;
      this.job = null;
      this.result = null;      // {blob, url, name}
      this.previewUrl = URL.createObjectURL(file);
      this.el = ui.template.content.firstElementChild.cloneNode(true);
      this.parts = {
        name: $(".name", this.el),
        remove: $(".remove", this.el),
        compare: $(".compare", this.el),
        before: $(".before", this.el),
        after: $(".after", this.el),
        divider: $(".divider", this.el),
        range: $(".compare-range", this.el),
        tags: this.el.querySelectorAll(".tag"),
        placeholder: $(".placeholder", this.el),
        progress: $(".progress", this.el),
        bar: $(".bar", this.el),
        status: $(".status", this.el),
        error: $(".error", this.el),
        cancel: $(".cancel", this.el),
        retry: $(".retry", this.el),
        download: $(".download", this.el),
      };
      const p = this.parts;
      p.name.textContent = file.name;
      p.name.title = file.name;
      p.remove.setAttribute("aria-label", `Remove ${file.name}`);
      p.progress.setAttribute("aria-label", `Progress of ${file.name}`);
      p.range.setAttribute("aria-label", `Compare before and after for ${file.name}`);
      p.before.alt = `${file.name}, original`;
      p.before.addEventListener("load", () => {
        this.size = `${p.before.naturalWidth} × ${p.before.naturalHeight}`;
        if (!this.result) p.compare.style.setProperty("--ratio", `${p.before.naturalWidth} / ${p.before.naturalHeight}`);
        if (this.state === "ready") this.setStatus(`Ready · ${this.size} · ${formatBytes(file.size)}`);
      });
      p.before.addEventListener("error", () => {
        if (this.result) return;
        p.compare.hidden = true;
        p.placeholder.hidden = false;
      });
      p.before.src = this.previewUrl;
      p.range.addEventListener("input", () => this.showSplit());
      p.remove.addEventListener("click", () => removeCard(this));
      p.cancel.addEventListener("click", () => this.cancel());
      p.retry.addEventListener("click", () => this.start(readSettings()));
      this.setState("ready");
      this.setStatus(`Ready · ${formatBytes(file.size)}`);
    }

    get state() {
      return this.el.dataset.state;
    }

    setState(state) {
      this.el.dataset.state = state;
      const p = this.parts;
      const busy = IN_FLIGHT.has(state);
      p.cancel.hidden = !busy;
      p.cancel.disabled = state === "cancelling";
      p.retry.hidden = !(TERMINAL.has(state));
      p.retry.textContent = state === "done" ? "Run again" : "Retry";
      p.download.hidden = !(state === "done" && this.result);
      p.progress.classList.toggle("indeterminate", state === "uploading" || state === "cancelling" ||
        (state === "running" && !(this.job && this.job.progress && this.job.progress.total > 1)));
      updateToolbar();
    }

    setStatus(text) {
      this.parts.status.textContent = text;
    }

    setProgress(percent) {
      const value = Math.max(0, Math.min(100, Math.round(percent)));
      this.parts.bar.style.width = `${value}%`;
      this.parts.progress.setAttribute("aria-valuenow", String(value));
      this.parts.progress.setAttribute("aria-valuetext", `${value} %`);
    }

    setError(text, busy = false) {
      const e = this.parts.error;
      e.hidden = !text;
      e.textContent = text || "";
      e.classList.toggle("busy", busy);
    }

    showSplit() {
      const value = this.parts.range.value;
      this.parts.compare.style.setProperty("--pos", `${value}%`);
      this.parts.range.setAttribute("aria-valuetext", `${value} % original, ${100 - value} % result`);
    }

    // Submit with these settings; each run has its own token so a stale loop stops by itself.
    start(settings) {
      if (IN_FLIGHT.has(this.state)) return;
      const run = { settings, controller: new AbortController(), timer: null, cancelled: false, busyAnnounced: false };
      this.run = run;
      this.job = null;
      this.setError("");
      this.setProgress(0);
      this.submit(run);
    }

    async submit(run) {
      this.setState("uploading");
      this.setStatus("Uploading…");
      const form = new FormData();
      form.append("image", this.file, this.file.name);
      for (const [key, value] of Object.entries(run.settings)) {
        if (value !== undefined && value !== "") form.append(key, value);
      }
      if (!page.jobs) return this.submitAndWait(run, form);
      let job;
      try {
        const response = await api("/v1/jobs", { method: "POST", body: form, signal: run.controller.signal });
        job = await response.json();
      } catch (error) {
        return this.submitFailed(run, error);
      }
      if (this.run !== run) return;
      this.job = job;
      if (run.cancelled) this.requestCancel(run);
      this.poll(run);
    }

    // A submission failed: cancelled, busy (wait for Retry-After, then submit again) or an error.
    submitFailed(run, error) {
      if (this.run !== run) return;
      if (error.name === "AbortError" || run.cancelled) return this.finish("cancelled", "Cancelled");
      const retry = error instanceof ApiFailure && (error.status === 429 || (error.status === 503 && error.retryAfter !== null));
      if (retry) return this.waitAndRetry(run, error.retryAfter);
      return this.fail(describe(error));
    }

    // Jobs off: one request that answers with the result (no queue position, no progress); Cancel
    // aborts it, and the server cancels the work of a client that went away.
    async submitAndWait(run, form) {
      run.sync = true;
      this.setState("running");
      this.setStatus("Working…");
      try {
        const response = await api(`/v1/${run.settings.op || "cartoonize"}`,
                                   { method: "POST", body: form, signal: run.controller.signal });
        const blob = await response.blob();
        if (this.run !== run) return;
        const seconds = Number.parseFloat(response.headers.get("X-Limn-Seconds") || "");
        this.job = { id: null, state: "done", content_type: blob.type, seconds: Number.isFinite(seconds) ? seconds : null };
        this.showResult(blob, run.settings);
      } catch (error) {
        return this.submitFailed(run, error);
      }
    }

    // Server busy: count down Retry-After seconds beside the photo, then submit again.
    waitAndRetry(run, seconds) {
      let left = Math.max(1, Math.ceil(seconds || 2));
      if (!run.busyAnnounced) announce(`${this.file.name}: the server is busy; retrying after ${left} s.`);
      run.busyAnnounced = true;
      this.setState("waiting");
      this.setStatus("Waiting for the server");
      const tick = () => {
        if (this.run !== run) return;
        if (left <= 0) {
          this.setError("");
          this.submit(run);
          return;
        }
        this.setError(`Server busy: retrying after ${left} s`, true);
        left -= 1;
        run.timer = setTimeout(tick, 1000);
      };
      tick();
    }

    async poll(run) {
      let failures = 0;
      while (this.run === run) {
        this.showJob(this.job);
        if (TERMINAL.has(this.job.state)) break;
        const queuedFar = this.job.state === "queued" && (this.job.queue_position || 0) > 2;
        await sleep(queuedFar ? 1200 : 350);
        if (this.run !== run) return;
        try {
          const response = await api(`/v1/jobs/${encodeURIComponent(this.job.id)}`, { cache: "no-store" });
          this.job = await response.json();
          failures = 0;
        } catch (error) {
          if (this.run !== run) return;
          if (error instanceof ApiFailure && error.status === 404) return this.fail("The job is gone: it expired or the server restarted.");
          if (++failures >= 8) return this.fail(describe(error));
          await sleep(500 * failures);
        }
      }
      if (this.run !== run) return;
      const job = this.job;
      if (job.state === "done") return this.fetchResult(run);
      if (job.state === "cancelled") return this.finish("cancelled", "Cancelled");
      const message = job.error ? job.error.message : "";
      if (job.state === "timed_out") return this.fail(describe(new ApiFailure(504, "timeout", message)), "timed_out");
      const error = job.error ? new ApiFailure(0, job.error.code, job.error.message) : new Error("the job failed");
      return this.fail(describe(error));
    }

    showJob(job) {
      if (this.state === "cancelling" && !TERMINAL.has(job.state)) return;
      if (job.state === "queued") {
        this.setState("queued");
        const position = job.queue_position;
        this.setStatus(position === null || position === undefined ? "In queue" : `In queue · position ${position + 1}`);
        this.setProgress(0);
      } else if (job.state === "running") {
        const { done = 0, total = 0 } = job.progress || {};
        this.setState("running");
        if (total > 1) {
          this.setProgress(Math.min(99, (100 * done) / total));
          this.setStatus(`Working · step ${Math.min(done, total)} of ${total}`);
        } else {
          this.setStatus("Working…");
        }
      }
    }

    async fetchResult(run) {
      this.setStatus("Downloading the result…");
      try {
        const response = await api(`/v1/jobs/${encodeURIComponent(this.job.id)}/result`, { cache: "no-store" });
        const blob = await response.blob();
        if (this.run !== run) return;
        this.showResult(blob, run.settings);
      } catch (error) {
        if (this.run !== run) return;
        this.fail(`Could not download the result. ${describe(error)}`);
      }
    }

    showResult(blob, settings) {
      const p = this.parts;
      if (this.result) URL.revokeObjectURL(this.result.url);
      const type = (blob.type || this.job.content_type || "").split(";")[0].trim();
      const extension = EXTENSION[type] || settings.format || "png";
      const name = `${stem(this.file.name)}-${SUFFIX[settings.op] || "result"}.${extension}`;
      this.result = { blob, url: URL.createObjectURL(blob), name };
      p.after.alt = `${this.file.name}, result`;
      p.after.onload = () => {
        const { naturalWidth: w, naturalHeight: h } = p.after;
        p.compare.style.setProperty("--ratio", `${w} / ${h}`);
        const seconds = typeof this.job.seconds === "number" ? ` in ${this.job.seconds.toFixed(2)} s` : "";
        this.setStatus(`Done${seconds} · ${w} × ${h} · ${formatBytes(blob.size)}`);
      };
      p.after.src = this.result.url;
      p.after.hidden = false;
      const comparable = p.placeholder.hidden;
      p.compare.hidden = false;
      p.placeholder.hidden = true;
      p.compare.classList.toggle("has-result", comparable);
      p.before.closest(".before-clip").hidden = !comparable;
      p.divider.hidden = p.range.hidden = !comparable;
      p.tags.forEach((tag) => { tag.hidden = !comparable; });
      p.range.value = "50";
      this.showSplit();
      p.download.href = this.result.url;
      p.download.download = name;
      p.download.setAttribute("aria-label", `Download ${name}`);
      this.setProgress(100);
      this.setStatus("Done");
      this.setState("done");
      announce(`${this.file.name} is done.`);
    }

    finish(state, status) {
      this.setStatus(status);
      this.setState(state);
    }

    fail(message, state = "failed") {
      this.setError(message);
      this.finish(state, state === "timed_out" ? "Timed out" : "Failed");
      announce(`${this.file.name}: ${message}`);
    }

    cancel() {
      const run = this.run;
      if (!run || !IN_FLIGHT.has(this.state)) return;
      run.cancelled = true;
      if (this.state === "waiting") {
        clearTimeout(run.timer);
        this.setError("");
        this.finish("cancelled", "Cancelled");
      } else if (this.state === "uploading" || run.sync) {
        run.controller.abort();
      } else if (this.job) {
        this.requestCancel(run);
      }
    }

    async requestCancel(run) {
      this.setState("cancelling");
      this.setStatus("Cancelling…");
      try {
        const response = await api(`/v1/jobs/${encodeURIComponent(this.job.id)}`, { method: "DELETE" });
        if (this.run === run) this.job = await response.json();
      } catch (error) {
        if (this.run !== run) return;
        if (error instanceof ApiFailure && error.status === 404) {
          this.run = null;
          this.finish("cancelled", "Cancelled");
        }
        // otherwise the poll loop finds the job's final state
      }
    }

    // Forget the photo: its run stops, its in-flight job is cancelled, its URLs are released.
    dispose() {
      if (this.run && IN_FLIGHT.has(this.state)) {
        this.run.controller.abort();
        clearTimeout(this.run.timer);
        if (this.job && !TERMINAL.has(this.job.state)) {
          api(`/v1/jobs/${encodeURIComponent(this.job.id)}`, { method: "DELETE" }).catch(() => {});
        }
      }
      this.run = null;
      URL.revokeObjectURL(this.previewUrl);
      if (this.result) URL.revokeObjectURL(this.result.url);
      this.el.remove();
    }
  }

  // ---- the list of photos -------------------------------------------------------------------

  function addFiles(files) {
    const added = [];
    for (const file of files) {
      if (!file || file.size === undefined) continue;
      const card = new Card(file);
      page.cards.push(card);
      ui.cards.append(card.el);
      added.push(card);
    }
    if (added.length) announce(`${added.length} photo${added.length > 1 ? "s" : ""} added.`);
    updateToolbar();
  }

  function removeCard(card) {
    const index = page.cards.indexOf(card);
    if (index >= 0) page.cards.splice(index, 1);
    const next = page.cards[index] || page.cards[index - 1];
    card.dispose();
    updateToolbar();
    (next ? next.parts.remove : ui.pick).focus();
  }

  function updateToolbar() {
    const cards = page.cards;
    const ready = cards.filter((c) => c.state === "ready").length;
    const done = cards.filter((c) => c.state === "done" && c.result).length;
    ui.start.disabled = ready === 0 || !ui.model.value;
    ui.start.textContent = ready > 1 ? `Start ${ready} photos` : "Start";
    ui.downloadAll.disabled = done === 0;
    ui.downloadAll.textContent = done > 1 ? `Download all as .zip (${done})` : "Download all as .zip";
    ui.clear.disabled = cards.length === 0;
    ui.count.textContent = cards.length ? `(${cards.length})` : "";
    ui.empty.hidden = cards.length > 0;
  }

  function startAll() {
    const settings = readSettings();
    for (const card of page.cards) if (card.state === "ready") card.start(settings);
  }

  async function downloadAll() {
    const done = page.cards.filter((c) => c.state === "done" && c.result);
    if (!done.length) return;
    ui.downloadAll.disabled = true;
    try {
      const used = new Set();
      const files = [];
      for (const card of done) {
        let name = card.result.name;
        for (let n = 2; used.has(name); n++) name = card.result.name.replace(/(\.[^.]*)?$/, ` (${n})$1`);
        used.add(name);
        files.push({ name, data: new Uint8Array(await card.result.blob.arrayBuffer()) });
      }
      saveBlob(makeZip(files), "limn-results.zip");
    } catch (error) {
      announce(`Could not make the ZIP archive: ${error.message}`);
    } finally {
      updateToolbar();
    }
  }

  function clearAll() {
    for (const card of page.cards.splice(0)) card.dispose();
    updateToolbar();
    ui.pick.focus();
  }

  // ---- wiring -------------------------------------------------------------------------------

  function wireDrop() {
    let depth = 0;
    const hasFiles = (event) => Array.from(event.dataTransfer ? event.dataTransfer.types : []).includes("Files");
    window.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      depth += 1;
      ui.dropzone.classList.add("over");
    });
    window.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) ui.dropzone.classList.remove("over");
    });
    window.addEventListener("dragover", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    window.addEventListener("drop", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth = 0;
      ui.dropzone.classList.remove("over");
      addFiles(event.dataTransfer.files);
    });
    window.addEventListener("paste", (event) => {
      const files = event.clipboardData ? Array.from(event.clipboardData.files) : [];
      if (files.length) addFiles(files);
    });
  }

  function wire() {
    ui.pick.addEventListener("click", () => ui.fileInput.click());
    ui.fileInput.addEventListener("change", () => {
      addFiles(ui.fileInput.files);
      ui.fileInput.value = "";
    });
    wireDrop();
    ui.opInputs.forEach((input) => input.addEventListener("change", refreshSettings));
    ui.model.addEventListener("change", describeModel);
    ui.format.addEventListener("change", refreshSettings);
    const showStrength = () => { ui.strengthValue.value = Number(ui.strength.value).toFixed(2); };
    ui.strength.addEventListener("input", showStrength);
    showStrength();
    ui.quality.addEventListener("input", () => { ui.qualityValue.value = ui.quality.value; });
    ui.start.addEventListener("click", startAll);
    ui.downloadAll.addEventListener("click", downloadAll);
    ui.clear.addEventListener("click", clearAll);

    try { ui.key.value = localStorage.getItem(KEY_STORAGE) || ""; } catch (_) { /* storage off */ }
    $("#apikey-form").addEventListener("submit", (event) => { event.preventDefault(); loadModels(); });
    let keyTimer = null;
    ui.key.addEventListener("input", () => {
      try {
        if (apiKey()) localStorage.setItem(KEY_STORAGE, apiKey());
        else localStorage.removeItem(KEY_STORAGE);
      } catch (_) { /* storage off */ }
      keyNeeded(false);
      clearTimeout(keyTimer);
      keyTimer = setTimeout(loadModels, 400);
    });
    keyNeeded(false);
  }

  wire();
  refreshSettings();
  loadModels().finally(checkHealth);
  setInterval(checkHealth, 15000);

  // For tests and the curious: the ZIP writer, with no other state.
  window.limnPage = { makeZip, crc32 };
})();
