/*
 * "Find my probe" on the home page: one box for everything.
 *
 * - A kernel release alone (or its start, like 5.10.135) lists every probe built for
 *   it, across targets, arches and driver versions, grouped by driver version with
 *   the Falco releases that load each (api/kernels/, see lookup.js).
 * - With /etc/os-release and uname -v too, naming.js (the port of builder/core/naming.py)
 *   gives the exact file the chosen Falco release requests, looked up by its name;
 *   the answer says where it is and how to point the loader at it, or, when it is
 *   not built, what is close: other names and driver versions of the same kernel,
 *   the newest kernel built in its series, a failed build with its log, whether it
 *   is planned at all.
 * - Pasting the output of `cat /etc/os-release; uname -r; uname -v; uname -m` into
 *   any box fills every field.
 *
 * Every value from the catalog or the user is inserted as text, never as HTML, and
 * only http(s) URLs become links. The inputs are mirrored in the query string. Each
 * rendered answer fires an "fp-answer" event on the form (detail: state) and sets
 * data-seq on the answer box (the tests wait on it).
 */
(function () {
  "use strict";

  var N = window.FalcoNaming;
  var L = window.FalcoProbesLookup;
  var compareNatural = L && L.compareNatural;
  var FIELDS = ["r", "os", "v", "m", "falco", "driver", "etc", "fallback"];
  var MIRROR = "/srv/falco-probes";
  var MIRROR_URL = "http://<mirror host>:8080";
  var SHOW_PROBES = 60;       // probes listed for a kernel release before "type more"
  var SHOW_RELEASES = 24;     // matching kernel releases listed as links
  var GITHUB_REPO = /^https:\/\/github\.com\/([A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+)\/(?:actions\/runs\/|releases\/download\/|attestations\/)/;

  // --- small helpers ---------------------------------------------------------------------

  function has(object, key) { return Object.prototype.hasOwnProperty.call(object, key); }

  function httpUrl(url) {
    return typeof url === "string" && /^https?:\/\/[^\s<>"'`\\]+$/i.test(url) ? url : "";
  }

  function shellQuote(text) {
    return /^[A-Za-z0-9._+~\/:%=@-]+$/.test(text) ? text : "'" + text.replace(/'/g, "'\\''") + "'";
  }

  /* A name the catalog could hold (builder.core.records' checks): anything else is the user's
     text, never shown as if it were a file name. */
  function validName(name) {
    var part = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$/;
    return part.test(name.kernel_release || "") && part.test(name.kernel_version || "") &&
      /^[a-z0-9][a-z0-9._-]*$/.test(name.target || "");
  }

  function number(n) { return Number(n).toLocaleString("en-US"); }

  function kB(size) { return number(Math.round(size / 1000)) + " kB"; }

  function when(stamp) {
    return (stamp || "(unknown)").replace("T", " ").replace("Z", " UTC");
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
      if (child !== null && child !== undefined && child !== "") {
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return node;
  }

  function link(url, text) {
    var href = httpUrl(url);
    return href ? el("a", { href: href, text: text }) : el("span", { text: text });
  }

  function copyButton(text, label, shown) {
    return el("button", { type: "button", "class": "fp-copy", "data-copy": text,
                          title: "Copy " + label, text: shown || "copy" });
  }

  /* A command or value on its own line, with a copy button. */
  function copyable(text, label) {
    return el("div", { "class": "fp-copyline" }, [
      el("code", { text: text }), copyButton(text, label)
    ]);
  }

  function sentence(parts) { return el("p", {}, parts); }

  /* A load test (an object, or its status alone in kernel lists) as a badge. */
  function loadtestBadge(lt) {
    if (!lt) { return null; }
    var status = typeof lt === "string" ? lt : lt.status;
    if (status === "passed") { return el("span", { "class": "fp-lt fp-lt-passed", text: "✓ loads" }); }
    if (status === "rejected") { return el("span", { "class": "fp-lt fp-lt-rejected", text: "✗ rejected" }); }
    return el("span", { "class": "fp-lt fp-lt-untested", text: "– not tested" });
  }

  function loadtestText(lt) {
    if (!lt) { return "not load-tested"; }
    var where = lt.kernel ? " in " + lt.kernel : "";
    var programs = number(lt.accepted) + " of " + number(lt.total) + " programs accepted";
    if (lt.status === "passed") {
      return "loaded" + where + ": " + programs +
        (lt.events ? ", " + number(lt.events) + " events captured" : "") +
        (lt.date ? ", " + lt.date.slice(0, 10) : "");
    }
    if (lt.status === "rejected") {
      return "rejected by the verifier" + where + " (" + programs + "): " + (lt.reason || "no reason recorded");
    }
    return "not load-tested" + (lt.reason ? ": " + lt.reason : "");
  }

  // --- the whole output of the suggested command ------------------------------------------

  /* {os, r, v, m} from the output of `cat /etc/os-release; uname -r; uname -v; uname -m`,
     or null when `text` is not that (a single value, or os-release lines only). */
  function splitCommandOutput(text) {
    var lines = text.split(/\r\n|\r|\n/);
    if (lines.length < 2) { return null; }
    var os = [];
    var out = {};
    lines.forEach(function (raw) {
      var line = raw.replace(/\s+$/, "");
      var bare = line.trim();
      if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(bare)) { os.push(line); return; }
      if (/^#\d/.test(bare)) { out.v = out.v || bare; return; }
      if (!out.r && /^\d+\.\d+[^\s]*$/.test(bare)) { out.r = bare; return; }
      if (out.r && !out.m && /^[A-Za-z0-9_]{2,32}$/.test(bare)) { out.m = bare; }
    });
    if (!out.r || (!os.length && !out.v)) { return null; }
    if (os.length) { out.os = os.join("\n") + "\n"; }
    return out;
  }

  // --- the finder ------------------------------------------------------------------------

  function Finder(form, manifest) {
    this.form = form;
    this.manifest = manifest;
    this.lookup = new L.Lookup(form.getAttribute("data-api") || "api/", manifest);
    this.result = document.getElementById("fp-result");
    this.sequence = 0;
    this.answered = null;
  }

  Finder.prototype.value = function (name) {
    var field = this.form.elements.namedItem(name);
    return field ? field.value : "";
  };

  Finder.prototype.setValue = function (name, value) {
    var field = this.form.elements.namedItem(name);
    if (field) { field.value = value; }
  };

  /* Fill every field from a pasted command output; true when it was one. */
  Finder.prototype.distribute = function (text) {
    var parts = splitCommandOutput(text);
    if (!parts) { return false; }
    var self = this;
    ["os", "r", "v", "m"].forEach(function (name) {
      if (parts[name] !== undefined) { self.setValue(name, parts[name]); }
    });
    if (parts.os) { this.setValue("fallback", ""); }
    this.openExact();
    return true;
  };

  /* The driver version a Falco release loads: the site's own table (api.find_manifest),
     the same answer `falco-probes find` gives; no rules re-derived here. */
  Finder.prototype.driverForFalco = function (falco) {
    var table = this.manifest.falco;
    var key = String(falco);
    return has(table, key) ? table[key] : null;
  };

  Finder.prototype.falcoFor = function (driver) {
    var info = this.manifest.drivers[driver];
    return info ? info.falco : [];
  };

  /* What to compute: {falco, driver, override} or {error}. */
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
      var served = this.falcoFor(driver);
      return { falco: null, driver: driver, served: (served.length ? served : N.OVERRIDE_RELEASES.map(String))
        .map(N.parseVersion) };
    }
    return { error: "Pick a Falco version or a driver version." };
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
    Promise.resolve().then(function () { return self.answer(); }).then(function (final) {
      if (sequence === self.sequence) { self.show(final, sequence); }
    }, function (err) {
      if (sequence === self.sequence) {
        self.show({ state: "error", title: "The lookup failed", text: String(err.message || err) },
          sequence);
      }
    });
  };

  /* An answer object, or a promise of one. */
  Finder.prototype.answer = function () {
    var release = this.value("r").trim();
    if (!release) {
      return { state: "idle", text: "Type a kernel release to see its probes." };
    }
    var osText = this.value("os");
    var fallback = this.value("fallback");
    if (!osText.trim() && !fallback && !this.value("etc").trim()) {
      return this.byKernel(release, null);
    }
    var choice = this.choice();
    if (choice.error) { return { state: "error", title: "Which Falco?", text: choice.error }; }
    var host;
    try {
      host = N.hostFromInputs(osText.trim() ? osText : null, this.value("r"),
        this.value("v").replace(/[\r\n]+$/, ""), this.value("m"),
        this.value("etc").trim() ? this.value("etc") : null, fallback === "none" ? "" : fallback);
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
      return this.notRequested(err, falco);
    }
    var context = { name: name, falco: falco, choice: choice, driver: choice.driver, host: host };
    if (!this.value("v").trim()) {
      return this.byKernel(release, context);
    }
    if (!name.kernel_release) {
      return this.missing(context, "falcoctl cannot parse this kernel release: it requests " +
        name.file + ", which names no kernel, so no probe can match.");
    }
    if (!has(N.MIN_KERNEL, name.arch)) {
      return this.missing(context, "Legacy eBPF probes exist for x86_64 and aarch64 only, " +
        "not " + name.arch + ".");
    }
    if (!validName(name)) {
      return this.missing(context, "The name this loader would build from these inputs holds " +
        "characters no probe name can have (a kernel release and version are letters, digits " +
        "and . _ + ~ - only), so no probe can match: check that uname -r and uname -v were " +
        "pasted whole, as the node prints them.");
    }
    var self = this;
    return this.lookup.byName(choice.driver, name.arch, name.file,
                              this.releasesOf(host, choice, name), release).then(function (got) {
      if (got.probe) { return self.found(context, got.probe); }
      return self.missing(context, null, got.failure);
    });
  };

  /* The kernel releases a probe for this node may be filed under: the one in the requested
     name, and those of the names the other Falco releases of its driver version request
     (a record is filed under its own name; the others are its aliases). */
  Finder.prototype.releasesOf = function (host, choice, name) {
    var releases = [name.kernel_release];
    var served = choice.served || this.falcoFor(choice.driver).map(N.parseVersion);
    served.forEach(function (falco) {
      try {
        var other = N.probeName(host, falco).kernel_release;
        if (other && releases.indexOf(other) < 0) { releases.push(other); }
      } catch (err) {
        if (!(err instanceof N.NoRequest)) { throw err; }
      }
    });
    return releases;
  };

  /* The loader refuses: no file is requested at all. */
  Finder.prototype.notRequested = function (err, falco) {
    var nodes = [el("p", { "class": "fp-why", text: err.reason })];
    if (/refuses eBPF below kernel/.test(err.reason)) {
      nodes.push(sentence(["Legacy eBPF needs a newer kernel. Use Falco's kernel module ",
        "instead (", el("code", { text: "falcoctl driver install --type kmod" }),
        "; Helm: ", el("code", { text: "driver.kind: kmod" }), ")."]));
    }
    if (err.probeName) {
      if (validName(err.probeName)) {
        nodes.push(el("p", { text: "(It would have named the file " + err.probeName.file + ".)" }));
      }
    }
    return { state: "none", title: "The loader requests no probe for this node", nodes: nodes };
  };

  // --- a kernel release alone: every probe for it ------------------------------------------

  Finder.prototype.byKernel = function (prefix, context) {
    var self = this;
    if (!/^[A-Za-z0-9][A-Za-z0-9._+~-]*$/.test(prefix)) {
      return { state: "error", title: "Check the kernel release",
               text: "A kernel release has letters, digits and . _ + ~ - only, as uname -r prints it." };
    }
    return this.lookup.byKernel(prefix).then(function (found) {
      return self.kernelAnswer(prefix, found, context);
    });
  };

  Finder.prototype.kernelAnswer = function (prefix, found, context) {
    var nodes = [];
    if (context) {
      nodes.push(el("p", { "class": "fp-why" }, ["Fill in ", el("code", { text: "uname -v" }),
        " to get the exact file: the last part of the name (the kernel version) comes from it" +
        (context.host.os_id === "debian" ? ", and on Debian the kernel release too" : "") +
        ". Meanwhile, the " + context.name.target + " probes built for this kernel release:"]));
    }
    if (found.broad) {
      nodes.push(el("p", { "class": "fp-why", text: "About " + number(found.releases) +
        " kernel releases (" + number(found.probes) + " probes) start with \u201c" + prefix +
        "\u201d: keep typing, for example 5.10.135 or the whole uname -r." }));
      return { state: "kernels", title: "Keep typing", nodes: nodes };
    }
    var target = context ? context.name.target : null;
    var probes = found.probes.filter(function (p) { return !target || p.target === target; });
    var failures = found.failures.filter(function (f) { return !target || f.target === target; });
    var exact = found.releases.indexOf(prefix) >= 0;
    var count = number(probes.length) + (probes.length === 1 ? " probe" : " probes");
    var title = exact && found.releases.length === 1 ?
      count + " for kernel " + prefix :
      count + " for kernel releases starting with " + prefix;
    if (!probes.length && !failures.length) {
      var self = this;
      nodes.push(el("p", { "class": "fp-why", text: this.noKernel(prefix) }));
      return this.planOfRelease(prefix).then(function (said) {
        said.forEach(function (text) { nodes.push(el("p", { "class": "fp-why fp-plan", text: text })); });
        nodes.push(self.pasteHint());
        return { state: said.length ? "not-planned" : "missing", nodes: nodes,
                 title: "No probe for this kernel release" + (said.length ? ", and none planned" : "") };
      });
    }
    if (found.releases.length > 1) { nodes.push(this.releaseLinks(found.releases, prefix)); }
    nodes.push(this.probeGroups(probes, failures));
    if (!context) { nodes.push(this.pasteHint()); }
    return { state: "kernels", title: title, nodes: nodes };
  };

  Finder.prototype.noKernel = function (prefix) {
    var text = "The catalog has no probe and no failed build for a kernel release starting with \u201c" +
      prefix + "\u201d.";
    if (/-(amd64|arm64)$/.test(prefix)) {
      text += " Debian hosts: from Falco 0.35 the loader names the probe after the package " +
        "version in uname -v (5.10.0-22-amd64 with \u201cDebian 5.10.178-3\u201d in uname -v " +
        "becomes 5.10.178-3-amd64), and records written before the catalog kept uname -r are " +
        "found by that name only: fill in os-release and uname -v.";
    }
    return text;
  };

  Finder.prototype.pasteHint = function () {
    return el("p", { "class": "fp-hint" }, ["Which file your node requests depends on its " +
      "distribution and uname -v: paste the output of ",
      el("code", { text: "cat /etc/os-release; uname -r; uname -v; uname -m" }),
      " into the box for the exact answer."]);
  };

  Finder.prototype.releaseLinks = function (releases, prefix) {
    var sorted = releases.slice().sort(compareNatural);
    var list = el("ul", { "class": "fp-releases" });
    sorted.slice(0, SHOW_RELEASES).forEach(function (release) {
      list.appendChild(el("li", {}, [el("a", { href: "?r=" + encodeURIComponent(release),
                                               "data-release": release, text: release })]));
    });
    var more = sorted.length - SHOW_RELEASES;
    return el("div", {}, [
      el("p", { text: number(sorted.length) + " kernel releases start with \u201c" + prefix + "\u201d" +
        (more > 0 ? " (the first " + SHOW_RELEASES + " below; type more to narrow):" : ":") }),
      list]);
  };

  /* Probes (and failed builds) grouped by driver version, newest first. */
  Finder.prototype.probeGroups = function (probes, failures) {
    var self = this;
    var order = this.manifest.order || [];
    var rank = function (d) { var i = order.indexOf(d); return i < 0 ? order.length : i; };
    var drivers = [];
    probes.concat(failures).forEach(function (row) {
      if (drivers.indexOf(row.driver_version) < 0) { drivers.push(row.driver_version); }
    });
    drivers.sort(function (a, b) { return rank(a) - rank(b); });
    var box = el("div", { "class": "fp-groups" });
    var shown = 0;
    drivers.forEach(function (driver) {
      var mine = probes.filter(function (p) { return p.driver_version === driver; });
      var failed = failures.filter(function (f) { return f.driver_version === driver; });
      var falco = self.falcoFor(driver);
      var info = self.manifest.drivers[driver];
      var heading = el("h3", { "class": "fp-group" }, [
        info ? el("a", { href: info.page, text: driver }) : driver,
        el("small", { text: falco.length ? " loaded by Falco " + falco.join(", ") :
          " (no Falco release loads it by default)" })]);
      box.appendChild(heading);
      var list = el("ul", { "class": "fp-probes" });
      mine.forEach(function (probe) {
        if (shown >= SHOW_PROBES) { return; }
        shown += 1;
        list.appendChild(self.probeItem(probe));
      });
      failed.forEach(function (failure) {
        var log = httpUrl(failure.log);
        list.appendChild(el("li", { "class": "fp-failed-item" }, [
          el("span", { "class": "fp-file", text: N.probeFileName(failure.target, failure.kernel_release,
            failure.kernel_version, failure.driver_type) }),
          el("span", { "class": "fp-meta", text: "build failed at " + failure.step +
            (failure.category ? " (" + failure.category + ")" : "") + ", " + failure.arch + " " }),
          log ? el("a", { href: log, text: "log" }) : null]));
      });
      box.appendChild(list);
    });
    var hidden = probes.length - shown;
    if (hidden > 0) {
      box.appendChild(el("p", { "class": "fp-why", text: "And " + number(hidden) +
        " more: type more of the kernel release, or paste os-release and uname -v." }));
    }
    return box;
  };

  Finder.prototype.probeItem = function (probe) {
    // A kernel module is a .ko of the same name: the name shown and saved says which.
    var file = N.probeFileName(probe.target, probe.kernel_release, probe.kernel_version,
      probe.driver_type);
    var curl = "curl -fLo " + shellQuote(file) + " " + shellQuote(probe.url) + " && echo \"" +
      probe.sha256 + "  " + file + "\" | sha256sum -c";
    return el("li", { "class": "fp-probe" }, [
      el("span", { "class": "fp-file" }, [link(probe.url, file)]),
      el("span", { "class": "fp-meta" }, [probe.target + " \u00b7 " + probe.arch + " \u00b7 " +
        kB(probe.size) + " ", loadtestBadge(probe.loadtest)]),
      el("span", { "class": "fp-actions" }, [
        copyButton(probe.sha256, "the sha256 " + probe.sha256, "sha256 " + probe.sha256.slice(0, 12) + "\u2026"),
        copyButton(curl, "the download and check command", "curl + check")])
    ]);
  };

  // --- the exact file ----------------------------------------------------------------------

  Finder.prototype.facts = function (context, extra) {
    var n = context.name;
    var info = this.manifest.drivers[context.driver];
    var rows = [
      ["File the loader requests", validName(n) ? el("code", { "class": "fp-file", text: n.file }) :
        el("em", { text: "no valid file name (see below)" })],
      ["Driver version", info ? el("a", { href: info.page, text: context.driver }) : context.driver],
      ["Target, kernel release, kernel version, arch", validName(n) ?
        [n.target, n.kernel_release, n.kernel_version, n.arch].join(", ") :
        el("em", { text: "not shown: the inputs hold characters no kernel name has" })],
      ["Rules of", (N.clientFor(context.falco) === N.CLIENT_SHELL ? "falco-driver-loader" :
        "falcoctl") + " of Falco " + context.falco]
    ].concat(extra || []);
    var list = el("dl", { "class": "fp-facts" });
    rows.forEach(function (row) {
      list.appendChild(el("dt", { text: row[0] }));
      list.appendChild(el("dd", {}, Array.isArray(row[1]) ? row[1] : [row[1]]));
    });
    return list;
  };

  Finder.prototype.found = function (context, probe) {
    var file = context.name.file;
    var curl = "curl -fLo " + shellQuote(file) + " " + shellQuote(probe.url) + " && echo \"" +
      probe.sha256 + "  " + file + "\" | sha256sum -c";
    var built = [when(probe.built)];
    [[probe.log, "build log"], [probe.job, "CI job"], [probe.attestation, "attestation"]]
      .forEach(function (pair) {
        if (httpUrl(pair[0])) { built.push(", ", link(pair[0], pair[1])); }
      });
    var extra = [["Built", built], ["Load test", [loadtestText(probe.loadtest)]]];
    if (probe.source) { extra.splice(0, 0, ["Compiled from", probe.source]); }
    var nodes = [
      this.facts(context, extra),
      el("h3", { text: "Download" }),
      el("p", { "class": "fp-url" }, [link(probe.url, probe.url), " (" + kB(probe.size) + ")"]),
      el("p", { text: "sha256:" }), copyable(probe.sha256, "the sha256"),
      el("p", { text: "Download and check in one line:" }), copyable(curl, "the command")
    ];
    if (probe.file !== file) {
      nodes.push(el("p", { text: "Published as " + probe.file + ", which this Falco release " +
        "requests under the name above (same bytes, same digest)." }));
    }
    var repository = this.repositoryOf(probe);
    if (httpUrl(probe.attestation) && repository) {
      nodes.push(el("p", { text: "Check its build provenance (GitHub CLI), online or with the " +
        "downloaded attestation bundle:" }));
      nodes.push(copyable("gh attestation verify " + shellQuote(file) + " --repo " + repository,
        "the command"));
      var bundle = probe.attestation.split("/").pop();
      nodes.push(copyable("gh attestation verify " + shellQuote(file) + " --repo " + repository +
        " --bundle " + shellQuote(decodeURIComponent(bundle)), "the command"));
    }
    nodes = nodes.concat(this.settings(context, probe));
    var badge = loadtestBadge(probe.loadtest);
    return { state: "found", title: "Probe found", badge: badge, nodes: nodes };
  };

  Finder.prototype.repositoryOf = function (probe) {
    var urls = [probe.job, probe.attestation, probe.url];
    for (var i = 0; i < urls.length; i += 1) {
      var match = GITHUB_REPO.exec(urls[i] || "");
      if (match) { return match[1]; }
    }
    return this.manifest.repository || "";
  };

  /* How to point the loader at it: the store itself when it has the loader's layout
     (or the site's drivers_repo), else a mirror, made and served in three commands. */
  Finder.prototype.settings = function (context, probe) {
    var name = context.name;
    var shell = N.clientFor(context.falco) === N.CLIENT_SHELL;
    var base = storeBase(probe.url, context.driver, name.arch, probe.file) ||
      httpUrl(this.manifest.drivers_repo || "");
    var path = N.requestPath(context.driver, name, context.falco);
    var repo = base || MIRROR_URL;
    var repoVar = shell ? "DRIVERS_REPO" : "FALCOCTL_DRIVER_REPOS";
    var versionVar = shell ? "DRIVER_VERSION" : "FALCOCTL_DRIVER_VERSION";
    var command = repoVar + "=" + shellQuote(repo) +
      (context.choice.override ? " " + versionVar + "=" + shellQuote(context.driver) : "") +
      (shell ? " falco-driver-loader bpf" : " falcoctl driver install --type ebpf");
    var nodes = [el("h3", { text: "Let the loader fetch it" })];
    if (base) {
      nodes.push(el("p", { text: "This probe is in a store with the loader's layout, so the " +
        "loader can fetch it from there (it requests " + base + "/" + path + "):" }));
    } else {
      var folder = decodeURIComponent(path);
      var dir = folder.split("/").slice(0, -1).join("/");
      nodes.push(el("p", { text: "The loader cannot fetch it from where it is published " +
        "(its layout differs), so serve it from a mirror: a folder in the loader's layout on " +
        "any web server. 1. Make the mirror, with this probe only:" }));
      nodes.push(copyable("mkdir -p " + MIRROR + "/" + shellQuote(dir) + " && curl -fLo " +
        MIRROR + "/" + shellQuote(folder) + " " + shellQuote(probe.url), "the command"));
      nodes.push(el("p", { text: "or with every " + name.target + " probe of this driver version " +
        "(in a clone of this site's repository; it checks every digest):" }));
      nodes.push(copyable("falco-probes mirror " + MIRROR + " --driver-version " +
        shellQuote(context.driver) + " --target " + name.target + " --arch " + name.arch,
        "the command"));
      nodes.push(el("p", { text: "2. Serve it, on a machine the nodes can reach:" }));
      nodes.push(copyable("python3 -m http.server --directory " + MIRROR + " 8080", "the command"));
      nodes.push(el("p", { text: "3. On the node (it requests " + repo + "/" + path + "):" }));
    }
    nodes.push(copyable(command, "the setting"));
    nodes.push(el("p", { text: "In Kubernetes, the Falco Helm chart's values (charts that set " +
      "the driver with driver.kind):" }));
    var env = [[repoVar, repo]];
    if (context.choice.override) { env.push([versionVar, context.driver]); }
    nodes.push(copyable(["driver:", "  kind: ebpf", "  loader:", "    initContainer:", "      env:"]
      .concat(env.map(function (pair) {
        return "        - name: " + pair[0] + "\n          value: " + JSON.stringify(pair[1]);
      })).join("\n"), "the Helm values"));
    return nodes;
  };

  /* Not built: why, and what is close to it. */
  Finder.prototype.missing = function (context, reason, failure) {
    var self = this;
    var name = context.name;
    var nodes = [this.facts(context)];
    var state = "missing";
    var title = "No probe for this node";
    if (failure) {
      state = "failed";
      title = "The build of this probe failed";
      nodes.push(sentence(["Step ", el("strong", { text: failure.step }),
        failure.category ? " (" + failure.category + ")" : "", ": ",
        el("span", { "class": "fp-reason", text: failure.reason })]));
      var links = [number(failure.attempts) + " attempt(s), last " + when(failure.last_attempt) + ". "];
      if (httpUrl(failure.log)) { links.push(link(failure.log, "Build log"), ". "); }
      if (httpUrl(failure.job) && failure.job !== failure.log) { links.push(link(failure.job, "CI job"), ". "); }
      links.push("The nightly build retries it with a backoff.");
      nodes.push(sentence(links));
    }
    var fixed = reason || (failure ? "" : this.tooOld(name));
    if (/^Kernel too old/.test(fixed)) { state = "too-old"; }
    var why = failure || fixed ? Promise.resolve(fixed) : this.notBuilt(context);
    return why.then(function (text) {
      if (text) {
        if (/Not planned|Older than the kernels/.test(text)) {
          state = "not-planned";
          title = "No probe for this node, and none planned";
        }
        nodes.push(el("p", { "class": "fp-why", text: text }));
      }
      var coverage = self.manifest.coverage[name.target];
      if (coverage) {
        nodes.push(sentence(["See the ", el("a", { href: coverage, text: "coverage of " + name.target }),
          " for every kernel that has probes."]));
      }
      if (!name.kernel_release || state === "too-old" || !has(N.MIN_KERNEL, name.arch)) {
        return { state: state, title: title, nodes: nodes };
      }
      return self.nearMisses(context).then(function (close) {
        return { state: state, title: title, nodes: nodes.concat(close) };
      }, function () {
        return { state: state, title: title, nodes: nodes };
      });
    });
  };

  Finder.prototype.tooOld = function (name) {
    var numbers = /^(\d+)\.(\d+)/.exec(name.kernel_release) || /^(\d+)\.(\d+)/.exec(this.value("r").trim());
    var minimum = N.MIN_KERNEL[name.arch];
    if (!numbers || !minimum) { return ""; }
    var major = parseInt(numbers[1], 10);
    var minor = parseInt(numbers[2], 10);
    if (major > minimum[0] || (major === minimum[0] && minor >= minimum[1])) { return ""; }
    return "Kernel too old: legacy eBPF probes need Linux " + minimum.slice(0, 2).join(".") +
      " or newer on " + name.arch + ", so none is built (and falcoctl of Falco 0.38 and newer " +
      "refuses eBPF there). Use Falco's kernel module: falcoctl driver install --type kmod, " +
      "or driver.kind: kmod in the Helm chart.";
  };

  /* Planned or not, by probes.yaml (when the site was built with one): a promise of the
     sentence. Never "it will come" unless the plan's rules would take this kernel. */
  Finder.prototype.notBuilt = function (context) {
    var plan = this.manifest.plan;
    var name = context.name;
    var driver = context.driver;
    if (!this.manifest.drivers[driver]) {
      return Promise.resolve("This index has no probes for driver version " + driver + " yet" +
        (plan && plan.drivers.indexOf(driver) < 0 ? ", and probes.yaml does not list it: not planned." : "."));
    }
    var nothing = "The catalog has no probe and no failed build for this file with driver " +
      "version " + driver + ".";
    if (!plan) { return Promise.resolve(nothing); }
    if (plan.drivers.indexOf(driver) < 0) {
      return Promise.resolve(nothing + " Not planned: probes.yaml no longer lists driver version " +
        driver + ", so no new probe is built for it.");
    }
    var families = familiesOf(plan, name.target);
    if (!families.length) {
      return Promise.resolve("Not planned: probes.yaml builds no " + name.target + " kernels, so " +
        "this probe will not appear unless that target is added.");
    }
    var unameR = this.value("r").trim() || name.kernel_release;
    var refusals = families.map(function (f) { return ruleRefusal(f, plan.targets[f], unameR, name.arch); });
    if (refusals.every(Boolean)) { return Promise.resolve(nothing + " " + refusals[0]); }
    var self = this;
    return this.lookup.target(name.target).then(function (doc) {
      var newest = newestEntry(doc, driver, name.driver_type, name.arch, name.kernel_release);
      var older = families.map(function (f) {
        return olderThanKept(f, plan.targets[f], unameR, name.kernel_release, newest);
      }).filter(Boolean);
      if (older.length) { return nothing + " " + older[0]; }
      return nothing + " Its target's rules in probes.yaml take this kernel, so the nightly " +
        "build picks it up once its headers are published.";
    }, function () { return nothing; });
  };

  /* The plan's target families a catalog target belongs to (ubuntu for ubuntu-aws). */
  function familiesOf(plan, target) {
    return Object.keys(plan.targets).filter(function (family) {
      return target === family || target.indexOf(family + "-") === 0;
    });
  }

  function compiled(pattern) {
    try { return new RegExp(pattern); } catch (err) { return null; }
  }

  function below(release, minimum) {
    var mine = L.releaseNumbers(release);
    var floor = L.releaseNumbers(String(minimum));
    if (!mine || !floor) { return false; }
    for (var i = 0; i < 3; i += 1) {
      if (mine[i] !== floor[i]) { return mine[i] < floor[i]; }
    }
    return false;
  }

  /* Why the rules of one target family leave the kernel `unameR` on `arch` out, in the order
     builder/kernels/select.py applies them (arch, minimum kernel, include, exclude), or "".
     `arch` may be unknown (a bare uname -r): then it is not checked. */
  function ruleRefusal(family, rule, unameR, arch) {
    if (arch && rule.arch.indexOf(arch) < 0) {
      return "Not planned: probes.yaml builds " + family + " kernels for " + rule.arch.join(" and ") +
        " only, not " + arch + ".";
    }
    var minimum = arch && (rule.min_kernel[arch] || rule.min_kernel[{ x86_64: "amd64", aarch64: "arm64" }[arch]]);
    if (minimum && below(unameR, minimum)) {
      return "Not planned: probes.yaml builds " + family + " kernels from " + minimum + " on (" +
        arch + "), and " + unameR + " is older.";
    }
    var include = rule.include && compiled(rule.include);
    if (include && !include.test(unameR)) {
      return "Not planned: excluded by this target's filter. probes.yaml builds only " + family +
        " kernels whose uname -r matches " + rule.include + ", and " + unameR + " does not, so no " +
        "probe will be built for it.";
    }
    var exclude = rule.exclude && compiled(rule.exclude);
    if (exclude && exclude.test(unameR)) {
      return "Not planned: excluded by this target's filter. probes.yaml leaves out " + family +
        " kernels whose uname -r matches " + rule.exclude + ", as " + unameR + " does, so no " +
        "probe will be built for it.";
    }
    return "";
  }

  /* The newest kernel built of the same series and flavour (api/targets/), or null. */
  function newestEntry(doc, driver, driverType, arch, release) {
    if (!doc) { return null; }
    var kinds = driver ? [doc.newest[driver] || {}] : Object.keys(doc.newest).map(function (d) {
      return doc.newest[d];
    });
    var key = L.seriesKey(release);
    var best = null;
    kinds.forEach(function (kind) {
      var of = ((kind[driverType || "ebpf"] || {})[arch] || {})[key];
      if (of && (!best || compareNatural(of[0], best[0]) > 0)) { best = of; }
    });
    return best;
  }

  /* `latest: N`: a kernel older than the newest one built of its series and flavour is one
     the plan no longer takes (nothing is built for kernels that were superseded). */
  function olderThanKept(family, rule, unameR, release, newest) {
    if (!rule.latest || !newest) { return ""; }
    var theirs = newest[3] && unameR ? newest[3] : newest[0];
    var mine = newest[3] && unameR ? unameR : release;
    if (compareNatural(theirs, mine) <= 0) { return ""; }
    if (rule.latest === 1) {
      return "Older than the kernels this repository keeps: probes.yaml builds only the newest " +
        family + " kernel of each series and flavour (" + L.seriesKey(release) + "), and " + theirs +
        " is newer, so no probe will be built for this one. Nodes on " + theirs + " are covered.";
    }
    // Among the N newest or not: the catalog says only which is the newest, so no promise.
    return "probes.yaml builds only the " + rule.latest + " newest " + family + " kernels of each " +
      "series and flavour (" + L.seriesKey(release) + "; the newest built is " + theirs + "): this " +
      "one is built only if it is among them, and older kernels never are.";
  }

  /* A bare uname -r with nothing in the catalog: what the plan says of it, if anything (a
     promise of sentences). Only the target families whose rules can be read from the
     release alone: a filter on uname -r, or `latest` in a series the catalog has. */
  Finder.prototype.planOfRelease = function (release) {
    var plan = this.manifest.plan;
    if (!plan) { return Promise.resolve([]); }
    var self = this;
    var said = [];
    var ask = [];
    Object.keys(plan.targets).forEach(function (family) {
      var rule = plan.targets[family];
      var include = rule.include && compiled(rule.include);
      var refusal = ruleRefusal(family, rule, release, "");
      if (refusal && (rule.include || rule.exclude)) {
        said.push("A " + family + " kernel with this uname -r: " + refusal.charAt(0).toLowerCase() +
          refusal.slice(1));
      } else if (!refusal && rule.latest && include) {
        Object.keys(self.manifest.coverage || {}).forEach(function (target) {
          if (familiesOf(plan, target).indexOf(family) >= 0 && ask.length < 4) {
            ask.push([family, rule, target]);
          }
        });
      }
    });
    return Promise.all(ask.map(function (item) {
      return self.lookup.target(item[2]).then(function (doc) {
        var arches = ["x86_64", "aarch64"];
        for (var i = 0; i < arches.length; i += 1) {
          var older = olderThanKept(item[0], item[1], release, release,
            newestEntry(doc, "", "ebpf", arches[i], release));
          if (older) { return "A " + item[0] + " kernel with this uname -r: " + older.charAt(0).toLowerCase() + older.slice(1); }
        }
        return "";
      }, function () { return ""; });
    })).then(function (more) { return said.concat(more.filter(Boolean)); });
  };

  /* What is close: the same kernel under other names or driver versions, the newest
     kernel built in the series. */
  Finder.prototype.nearMisses = function (context) {
    var self = this;
    var name = context.name;
    var typed = this.value("r").trim();
    var releases = [name.kernel_release];
    if (typed && typed !== name.kernel_release) { releases.push(typed); }
    return Promise.all(releases.map(function (r) { return self.lookup.byKernel(r); }).concat(
      [this.lookup.target(name.target)])).then(function (docs) {
      var rows = [];
      docs.slice(0, releases.length).forEach(function (found) {
        if (found.broad) { return; }
        found.probes.forEach(function (p) {
          if (releases.indexOf(p.kernel_release) >= 0) { rows.push(p); }
        });
      });
      var sameFile = rows.filter(function (p) {
        return p.target === name.target && p.kernel_release === name.kernel_release &&
          p.kernel_version === name.kernel_version && p.arch === name.arch &&
          p.driver_version !== context.driver;
      });
      // A probe loads only in the kernel it was built for (libscap compares its release
      // with uname -r): another name is offered only when it was built for this very
      // kernel (its uname -r, or a name that is this uname -r), never another flavour.
      var sameKernel = function (p) {
        return typed && (p.uname_r ? p.uname_r === typed : p.kernel_release === typed);
      };
      var otherName = rows.filter(function (p) {
        return p.driver_version === context.driver && p.arch === name.arch && sameKernel(p) &&
          p.file !== name.file;
      });
      var nodes = [];
      if (otherName.length) {
        nodes.push(el("h3", { text: "The same kernel under another name" }));
        nodes.push(el("p", { text: "Built for driver version " + context.driver + " and for this " +
          "very kernel (" + typed + "), but named for another target or kernel version than " +
          "this Falco release requests:" }));
        nodes.push(self.probeList(otherName));
      }
      if (sameFile.length) {
        nodes.push(el("h3", { text: "Built for other driver versions" }));
        nodes.push(el("p", { text: "A probe only loads with the driver version it was built " +
          "from: these serve the Falco releases listed." }));
        nodes.push(self.probeGroups(sameFile, []));
      }
      var newest = self.newestInSeries(docs[releases.length], context);
      if (newest) { nodes.push(newest); }
      return nodes;
    });
  };

  Finder.prototype.probeList = function (probes) {
    var self = this;
    var list = el("ul", { "class": "fp-probes" });
    probes.slice(0, 12).forEach(function (p) { list.appendChild(self.probeItem(p)); });
    return list;
  };

  Finder.prototype.newestInSeries = function (doc, context) {
    var name = context.name;
    // Only a kernel of the same series, flavour and arch: a cloud-amd64 probe is no use
    // to an amd64 node.
    var of = newestEntry(doc, context.driver, name.driver_type, name.arch, name.kernel_release);
    if (!of) { return null; }
    var key = L.seriesKey(name.kernel_release);
    return sentence(["Newest " + name.target + " kernel of the " + key + " series with a probe for " +
      context.driver + " (" + name.arch + "): ",
      el("a", { href: "?r=" + encodeURIComponent(of[0]), text: of[0] }),
      " (" + number(of[2]) + " kernels of this series have one). Nodes on that kernel are covered."]);
  };

  // --- rendering and state -----------------------------------------------------------------

  /* Render an answer; data-seq tells which input state it answers (tests wait on it). */
  Finder.prototype.show = function (answer, sequence) {
    var box = this.result;
    box.setAttribute("data-state", answer.state);
    box.setAttribute("data-seq", String(sequence));
    while (box.firstChild) { box.removeChild(box.firstChild); }
    if (answer.title) {
      box.appendChild(el("p", { "class": "fp-answer-title" }, [
        el("strong", { text: answer.title }), answer.badge ? " " : null, answer.badge || null]));
    }
    if (answer.text) { box.appendChild(el("p", { "class": "fp-why", text: answer.text })); }
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
    if (["os", "v", "falco", "driver", "etc", "fallback"].some(function (k) { return params.has(k); })) {
      this.openExact();
    }
    if (params.has("etc") || params.has("fallback")) {
      var more = form.querySelector(".fp-more");
      if (more) { more.open = true; }
    }
  };

  /* Show the fields that narrow the answer to one file. */
  Finder.prototype.openExact = function () {
    var exact = this.form.querySelector(".fp-exact");
    if (exact) { exact.open = true; }
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
    if (!form || !data || !N || !L) { return; }
    var manifest = JSON.parse(data.textContent);
    N.configure(manifest.naming);
    var finder = new Finder(form, manifest);
    finder.loadState();
    form.addEventListener("input", function () { finder.update(); });
    form.addEventListener("change", function () { finder.update(); });
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    form.addEventListener("paste", function (event) {
      var text = event.clipboardData ? event.clipboardData.getData("text") : "";
      if (finder.distribute(text)) {
        event.preventDefault();
        finder.update();
      }
    });
    // A kernel release in the answer opens its own answer in place.
    document.getElementById("fp-result").addEventListener("click", function (event) {
      var target = event.target.closest ? event.target.closest("a[data-release]") : null;
      if (!target || event.ctrlKey || event.metaKey || event.shiftKey) { return; }
      event.preventDefault();
      finder.setValue("r", target.getAttribute("data-release"));
      finder.update();
      form.elements.namedItem("r").focus();
    });
    window.FalcoProbesFinder = finder;
    window.FalcoProbesFinder.splitCommandOutput = splitCommandOutput;
    if (finder.value("r").trim()) { finder.update(); }
    form.setAttribute("data-fp-ready", "1");
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
