/*
 * "Find my probe" on the home page.
 *
 * The host inputs go through naming.js (the port of builder/core/naming.py), which gives
 * the exact file name the chosen Falco release requests. The probe is then looked up
 * in api/<driver version>/<arch>/find/<n>.json, the shard chosen by the 32-bit FNV-1a
 * hash of that file name (builder/site/api.py computes the same), so one answer
 * costs one small fetch whatever the size of the catalog; shards are cached.
 * Every value from the catalog or the user is inserted as text, never as HTML,
 * and only http(s) URLs become links. The inputs are mirrored in the query string.
 * Each rendered answer fires an "fp-answer" event on the form (detail: state).
 */
(function () {
  "use strict";

  var N = window.FalcoNaming;
  var FIELDS = ["os", "r", "v", "m", "falco", "driver", "etc", "fallback"];

  function fnv1a(text) {
    var bytes = new TextEncoder().encode(text);
    var hash = 0x811c9dc5;
    for (var i = 0; i < bytes.length; i += 1) {
      hash = Math.imul(hash ^ bytes[i], 0x01000193) >>> 0;
    }
    return hash >>> 0;
  }

  function httpUrl(url) {
    return typeof url === "string" && /^https?:\/\/[^\s<>"'`\\]+$/i.test(url) ? url : "";
  }

  function shellQuote(text) {
    return /^[A-Za-z0-9._+~\/:%=@-]+$/.test(text) ? text : "'" + text.replace(/'/g, "'\\''") + "'";
  }

  /* The directory store a probe URL belongs to, when it follows the loader's layout. */
  function storeBase(url, driver, arch, file) {
    var spellings = [driver, driver.replace(/\+/g, "%2B")];
    for (var i = 0; i < spellings.length; i += 1) {
      var tail = "/" + spellings[i] + "/" + arch + "/" + file;
      if (url.length > tail.length && url.slice(-tail.length) === tail) {
        return url.slice(0, -tail.length);
      }
    }
    return "";
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function link(url, text) {
    var href = httpUrl(url);
    return href ? el("a", { href: href, text: text }) : el("span", { text: text });
  }

  function copyable(text, label) {
    return el("div", { "class": "fp-copyline" }, [
      el("code", { text: text }),
      el("button", { type: "button", "class": "fp-copy", "data-copy": text,
                     title: "Copy " + label, text: "copy" })
    ]);
  }

  /* A shard row as an object: {file: .., sha256: ..} from fields and values. */
  function row(fields, rows, name) {
    if (!Object.prototype.hasOwnProperty.call(rows, name)) { return null; }
    var out = {};
    fields.forEach(function (field, i) { out[field] = rows[name][i]; });
    return out;
  }

  function Finder(form, manifest) {
    this.form = form;
    this.manifest = manifest;
    this.api = form.getAttribute("data-api") || "api/";
    this.result = document.getElementById("fp-result");
    this.shards = new Map();
    this.sequence = 0;
    this.answered = null;
  }

  Finder.prototype.value = function (name) {
    var field = this.form.elements.namedItem(name);
    return field ? field.value : "";
  };

  /* The driver version a Falco release loads: the site's own table (api.find_manifest),
     the same answer `falco-probes find` gives; no rules re-derived here. */
  Finder.prototype.driverForFalco = function (falco) {
    var table = this.manifest.falco;
    var key = String(falco);
    return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : null;
  };

  /* What to compute: {falco, driver, rules} or {error}. */
  Finder.prototype.choice = function () {
    var falcoText = this.value("falco").trim();
    var driver = this.value("driver");
    if (falcoText) {
      var falco;
      try {
        falco = N.parseVersion(falcoText);
        N.checkSupported(falco);
      } catch (err) {
        return { error: err.message + (err.hint ? " (" + err.hint + ")" : "") };
      }
      var loaded = this.driverForFalco(falco);
      if (!driver && !loaded) {
        return { error: "This index does not know which driver version Falco " + falco +
          " loads. Pick the driver version it reports (falco --version, \"Default driver\")." };
      }
      return { falco: falco, driver: driver || loaded, override: Boolean(driver && driver !== loaded) };
    }
    if (driver) {
      var info = this.manifest.drivers[driver];
      var served = info && info.falco.length ? info.falco : this.manifest.override_releases;
      return { falco: null, driver: driver, served: served.map(N.parseVersion) };
    }
    return { error: "Pick a Falco version or a driver version." };
  };

  Finder.prototype.shard = function (driver, arch, index) {
    var info = this.manifest.drivers[driver];
    var key = driver + "/" + arch + "/" + index;
    if (!this.shards.has(key)) {
      var url = this.api + info.api + arch + "/find/" + index + ".json";
      this.shards.set(key, fetch(url, { credentials: "same-origin" }).then(function (response) {
        if (!response.ok) { throw new Error(url + ": HTTP " + response.status); }
        return response.json();
      }));
    }
    return this.shards.get(key);
  };

  Finder.prototype.update = function () {
    var self = this;
    // A "change" event follows the "input" events when a field loses focus, for
    // instance on the mousedown of a copy button: answering again would replace the
    // button under the pointer and swallow the click. Same inputs, same answer.
    var key = FIELDS.map(function (name) { return self.value(name); }).join("\u0000");
    if (key === this.answered) { return; }
    this.answered = key;
    var sequence = ++this.sequence;
    this.saveState();
    var answer = this.answer();
    if (answer.then) {
      answer.then(function (final) {
        if (sequence === self.sequence) { self.show(final, sequence); }
      }, function (err) {
        if (sequence === self.sequence) {
          self.show({ state: "error", title: "The lookup failed", text: String(err.message || err) },
            sequence);
        }
      });
    } else {
      this.show(answer, sequence);
    }
  };

  /* An answer object, or a promise of one. */
  Finder.prototype.answer = function () {
    var unameR = this.value("r");
    if (!unameR.trim()) {
      return { state: "idle", title: "", text: "Fill in uname -r to see the answer." };
    }
    var choice = this.choice();
    if (choice.error) { return { state: "error", title: "Which Falco?", text: choice.error }; }
    var osText = this.value("os");
    var etc = this.value("etc");
    var host;
    try {
      host = N.hostFromInputs(osText.trim() ? osText : null, unameR,
        this.value("v").replace(/[\r\n]+$/, ""), this.value("m"),
        etc.trim() ? etc : null, this.value("fallback"));
    } catch (err) {
      if (!(err instanceof N.InputError)) { throw err; }
      return { state: "error", title: "Check the inputs", text: err.message + ". " + err.hint + "." };
    }
    var name;
    var falco = choice.falco;
    try {
      if (falco) {
        name = N.probeName(host, falco);
      } else {
        name = N.namesForDriver(host, choice.served).name;
        falco = choice.served.slice().sort(N.compareVersions).pop();
      }
    } catch (err) {
      if (!(err instanceof N.NoRequest)) { throw err; }
      return { state: "none", title: "The loader requests no probe for this node",
               text: err.reason, name: err.probeName };
    }
    var context = { name: name, falco: falco, choice: choice, driver: choice.driver };
    if (!name.kernel_release) {
      return this.missing(context, "falcoctl cannot parse this kernel release: it requests " +
        name.file + ", which names no kernel, so no probe can match.");
    }
    var info = this.manifest.drivers[choice.driver];
    if (!info) {
      return this.missing(context, "This index has no probes for driver version " +
        choice.driver + ".");
    }
    var shards = info.arches[name.arch];
    if (!shards) {
      return this.missing(context, "This index has no " + name.arch + " probes for driver " +
        "version " + choice.driver + (Object.prototype.hasOwnProperty.call(N.MIN_KERNEL, name.arch) ?
        "." : " (legacy eBPF probes exist for x86_64 and aarch64 only)."));
    }
    var self = this;
    return this.shard(choice.driver, name.arch, fnv1a(name.file) % shards).then(function (doc) {
      var probe = row(doc.probe_fields, doc.probes, name.file);
      if (probe) { return self.found(context, probe); }
      var failure = row(doc.failure_fields, doc.failures, name.file);
      if (failure) { return self.failed(context, failure); }
      return self.missing(context, null);
    });
  };

  Finder.prototype.settings = function (context, base) {
    var shell = N.clientFor(context.falco) === N.CLIENT_SHELL;
    var repo = base || this.manifest.drivers_repo || "";
    var path = N.requestPath(context.driver, context.name, context.falco);
    var lines = [];
    var where = repo || "http://<your mirror>";
    if (shell) {
      lines.push("DRIVERS_REPO=" + shellQuote(where) +
        (context.choice.override ? " DRIVER_VERSION=" + shellQuote(context.driver) : "") +
        " falco-driver-loader bpf");
    } else {
      lines.push("FALCOCTL_DRIVER_REPOS=" + shellQuote(where) +
        (context.choice.override ? " FALCOCTL_DRIVER_VERSION=" + shellQuote(context.driver) : "") +
        " falcoctl driver install --type ebpf");
    }
    return { lines: lines, url: where + "/" + path, known: Boolean(repo), shell: shell };
  };

  Finder.prototype.facts = function (context) {
    var n = context.name;
    return el("dl", { "class": "fp-facts" }, [
      el("dt", { text: "File the loader requests" }), el("dd", {}, [el("code", { "class": "fp-file", text: n.file })]),
      el("dt", { text: "Driver version" }), el("dd", {}, [this.manifest.drivers[context.driver] ?
        el("a", { href: this.manifest.drivers[context.driver].page, text: context.driver }) :
        context.driver]),
      el("dt", { text: "Target, kernel release, kernel version, arch" }),
      el("dd", { text: [n.target, n.kernel_release, n.kernel_version, n.arch].join(", ") }),
      el("dt", { text: "Rules of" }),
      el("dd", { text: (N.clientFor(context.falco) === N.CLIENT_SHELL ? "falco-driver-loader" :
        "falcoctl") + " of Falco " + context.falco })
    ]);
  };

  Finder.prototype.found = function (context, probe) {
    var file = context.name.file;
    var curl = "curl -fLo " + shellQuote(file) + " " + shellQuote(probe.url) + " && echo \"" +
      probe.sha256 + "  " + file + "\" | sha256sum -c";
    var settings = this.settings(context, storeBase(probe.url, context.driver, context.name.arch,
      probe.file));
    var nodes = [
      this.facts(context),
      el("p", {}, ["Download: ", link(probe.url, probe.url)]),
      el("p", {}, ["sha256:"]), copyable(probe.sha256, "the sha256"),
      el("p", {}, ["Download and verify in one line:"]), copyable(curl, "the command"),
      el("p", {}, [String(Math.round(probe.size / 1000)) + " kB, built " +
        (probe.built || "(unknown)").replace("T", " ").replace("Z", " UTC") + ", ",
        link(probe.log, "build log"), "."])
    ];
    if (probe.file !== file) {
      nodes.push(el("p", { text: "Published as " + probe.file + ", which this Falco release " +
        "requests under the name above (same bytes, same digest)." }));
    }
    nodes.push(el("p", { text: settings.known ?
      "Or let the loader fetch it (it requests " + settings.url + "):" :
      "To let the loader fetch it, mirror the probes into a directory store " +
      "(falco-probes mirror) served by any web server, then:" }));
    settings.lines.forEach(function (line) { nodes.push(copyable(line, "the setting")); });
    return { state: "found", title: "Probe found", nodes: nodes };
  };

  Finder.prototype.failed = function (context, failure) {
    return {
      state: "failed", title: "The build of this probe failed",
      nodes: [
        this.facts(context),
        el("p", {}, ["Step ", el("strong", { text: failure.step }), ": ",
          el("span", { "class": "fp-reason", text: failure.reason })]),
        el("p", {}, [String(failure.attempts) + " attempt(s), last " +
          (failure.last_attempt || "(unknown)").replace("T", " ").replace("Z", " UTC") + ". ",
          link(failure.log, "Build log"), ". The nightly build retries it with a backoff."])
      ]
    };
  };

  Finder.prototype.missing = function (context, reason) {
    var name = context.name;
    var text = reason;
    if (!text) {
      var numbers = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(name.kernel_release) ||
        /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(this.value("r").trim());
      var minimum = N.MIN_KERNEL[name.arch];
      var release = numbers ? [parseInt(numbers[1], 10), parseInt(numbers[2], 10),
        parseInt(numbers[3] || "0", 10)] : null;
      var tooOld = release && minimum && (release[0] < minimum[0] ||
        (release[0] === minimum[0] && (release[1] < minimum[1])));
      if (tooOld) {
        text = "Kernel too old: legacy eBPF probes need Linux " + minimum.slice(0, 2).join(".") +
          " or newer on " + name.arch + ", so none is built. Use the kernel module driver.";
      } else {
        text = "Not built yet: the catalog has no probe and no failed build for this file " +
          "with driver version " + context.driver + ". New kernels are picked up by the " +
          "nightly build if their target is configured.";
      }
    }
    var nodes = [this.facts(context), el("p", { "class": "fp-why", text: text })];
    var coverage = this.manifest.coverage[name.target];
    if (coverage) {
      nodes.push(el("p", {}, ["See the ", el("a", { href: coverage, text: "coverage of " + name.target }),
        " for the kernels that have probes."]));
    }
    return { state: /too old/.test(text) ? "too-old" : "missing", title: "No probe for this node", nodes: nodes };
  };

  /* Render an answer; data-seq tells which input state it answers (tests wait on it). */
  Finder.prototype.show = function (answer, sequence) {
    var box = this.result;
    box.setAttribute("data-state", answer.state);
    box.setAttribute("data-seq", String(sequence));
    while (box.firstChild) { box.removeChild(box.firstChild); }
    if (answer.title) { box.appendChild(el("p", { "class": "fp-answer-title" }, [el("strong", { text: answer.title })])); }
    if (answer.text) { box.appendChild(el("p", { "class": "fp-why", text: answer.text })); }
    if (answer.name && answer.state === "none") {
      box.appendChild(el("p", { text: "(It would have named the file " + answer.name.file + ".)" }));
    }
    (answer.nodes || []).forEach(function (node) { box.appendChild(node); });
    this.form.dispatchEvent(new CustomEvent("fp-answer", { detail: { state: answer.state } }));
  };

  Finder.prototype.loadState = function () {
    var params = new URLSearchParams(window.location.search);
    var form = this.form;
    FIELDS.forEach(function (name) {
      var field = form.elements.namedItem(name);
      if (field && params.has(name)) { field.value = params.get(name); }
    });
    if (params.has("etc") || params.has("fallback")) {
      var more = form.querySelector("details");
      if (more) { more.open = true; }
    }
  };

  Finder.prototype.saveState = function () {
    var params = new URLSearchParams(window.location.search);
    var self = this;
    FIELDS.forEach(function (name) {
      var value = self.value(name);
      if (value) { params.set(name, value); } else { params.delete(name); }
    });
    var search = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (search ? "?" + search : "") +
      window.location.hash);
  };

  function init() {
    var form = document.getElementById("fp-find");
    var data = document.getElementById("fp-find-data");
    if (!form || !data || !N) { return; }
    var finder = new Finder(form, JSON.parse(data.textContent));
    finder.loadState();
    form.addEventListener("input", function () { finder.update(); });
    form.addEventListener("change", function () { finder.update(); });
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    window.FalcoProbesFinder = finder;
    if (finder.value("r").trim()) { finder.update(); }
    form.setAttribute("data-fp-ready", "1");
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
