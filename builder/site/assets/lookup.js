/*
 * The site's JSON API as the browser reads it (builder/site/api.py and chunks.py write it).
 *
 * Every probe and failed build is in api/kernels/: api/kernels/index.json lists chunks of
 * consecutive kernel releases (string order) by their first release, so the releases
 * starting with a prefix are in a run of chunks, and maps each `uname -r` that is not the
 * release its records are filed under (Debian's 6.1.0-57-amd64, filed as 6.1.192-3-amd64)
 * to those releases. api/kernels/<n>.json holds the records as compact rows (chunks.py:
 * field names once, texts as numbers into the chunk's strings, `{file}` in a URL standing
 * for the record's own file name), which decodeRows() reads back into objects with every
 * field of the catalog record, `kernel_release` and `file` included.
 *
 * A kernel release, a `uname -r` or a prefix of either is answered from the index and one
 * or two chunks; the exact file a node requests is found among the records of its kernel
 * (by its file name or one of its other names). api/targets/<target>.json: the newest
 * kernel built per series and flavour. Every document is fetched once and cached.
 * Exposed as window.FalcoProbesLookup.
 */
(function () {
  "use strict";

  // A prefix reaching more chunks than this is too broad to list: type more.
  var MAX_CHUNKS = 3;
  var EXTENSIONS = { ebpf: ".o", kmod: ".ko" };
  var NUMBERS = { size: true, attempts: true, accepted: true, total: true, events: true };
  var URL_FIELDS = { url: true, log: true, attestation: true, job: true };

  function naturalParts(text) {
    return (text.match(/\d+|\D+/g) || []).map(function (p) {
      return /^\d+$/.test(p) ? [parseInt(p, 10), ""] : [-1, p];
    });
  }

  /* builder.core.catalog.natural_key's order: 5.10.9 before 5.10.10 (find.js, tables.js). */
  function compareNatural(a, b) {
    var pa = naturalParts(a);
    var pb = naturalParts(b);
    for (var i = 0; i < Math.min(pa.length, pb.length); i += 1) {
      if (pa[i][0] !== pb[i][0]) { return pa[i][0] - pb[i][0]; }
      if (pa[i][1] !== pb[i][1]) { return pa[i][1] < pb[i][1] ? -1 : 1; }
    }
    if (pa.length !== pb.length) { return pa.length - pb.length; }
    return a < b ? -1 : (a > b ? 1 : 0);
  }

  function has(object, key) { return Object.prototype.hasOwnProperty.call(object, key); }

  /* builder.core.records.release_numbers: [major, minor, patch] a release starts with, or null. */
  function releaseNumbers(release) {
    var m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release || "");
    return m ? [parseInt(m[1], 10), parseInt(m[2], 10), parseInt(m[3] || "0", 10)] : null;
  }

  /* builder.site.api.kernel_flavour: 6.1.0-57-cloud-amd64 -> cloud-amd64 (a node loads only
     probes of its own flavour). */
  function kernelFlavour(release) {
    return release.split("-").slice(1).filter(function (part) { return /^[A-Za-z]/.test(part); })
      .join("-");
  }

  /* builder.site.api.series_key: where api/targets/ files a kernel ("6.1 amd64"). */
  function seriesKey(release) {
    var numbers = releaseNumbers(release);
    var series = numbers ? numbers[0] + "." + numbers[1] : "other";
    var flavour = kernelFlavour(release);
    return flavour ? series + " " + flavour : series;
  }

  function fileName(target, release, version, driverType) {
    return "falco_" + target + "_" + release + "_" + version + (EXTENSIONS[driverType] || ".o");
  }

  /* Rows of a chunk (kind "probes" or "failures") back into records, as chunks.decode_rows. */
  function decodeRows(doc, kind) {
    var names = doc[kind === "probes" ? "probe_fields" : "failure_fields"];
    var strings = doc.strings;
    var text = function (value) { return typeof value === "number" ? strings[value] : (value || ""); };
    var out = [];
    Object.keys(doc[kind] || {}).forEach(function (release) {
      doc[kind][release].forEach(function (row) {
        var record = { kernel_release: release };
        var templated = {};
        names.forEach(function (name, i) {
          var value = i < row.length ? row[i] : null;
          if (name === "loadtest") {
            record.loadtest = value ? decodeLoadtest(value, doc.loadtest_fields, text) : null;
          } else if (name === "twins") {
            record.twins = (value || []).map(function (t) {
              var twin = { uname_r: text(t[0]) };
              if (t.length > 1 && t[1]) { twin.root = text(t[1]); }
              return twin;
            });
          } else if (name === "aliases") {
            record.aliases = value || [];
          } else if (NUMBERS[name]) {
            record[name] = value || 0;
          } else {
            if (URL_FIELDS[name] && typeof value === "number") { templated[name] = true; }
            record[name] = text(value);
          }
        });
        record.driver_type = record.driver_type || "ebpf";
        record.file = fileName(record.target, release, record.kernel_version, record.driver_type);
        Object.keys(templated).forEach(function (name) {
          record[name] = record[name].replace("{file}", record.file)
            .replace("{qfile}", encodeURIComponent(record.file));
        });
        out.push(record);
      });
    });
    return out;
  }

  function decodeLoadtest(row, fields, text) {
    var out = {};
    fields.forEach(function (field, i) {
      var value = i < row.length ? row[i] : null;
      out[field] = NUMBERS[field] ? (value || 0) : text(value);
    });
    return out;
  }

  /* `api`: the URL of api/ as seen from this page; `manifest`: the home page's find data. */
  function Lookup(api, manifest) {
    this.api = api;
    this.manifest = manifest || {};
    this.documents = new Map();
    this.requests = 0;
  }

  /* A document under api/, fetched once; null when it does not exist (404). */
  Lookup.prototype.json = function (path) {
    var url = this.api + path;
    var self = this;
    if (!this.documents.has(url)) {
      this.requests += 1;
      this.documents.set(url, fetch(url, { credentials: "same-origin" }).then(function (response) {
        if (response.status === 404) { return null; }
        if (!response.ok) { throw new Error(url + ": HTTP " + response.status); }
        return response.json();
      }).then(function (doc) {
        if (doc && doc.strings && !doc.decoded) {
          doc.decoded = { probes: decodeRows(doc, "probes"), failures: decodeRows(doc, "failures") };
        }
        return doc;
      }, function (err) { self.documents.delete(url); throw err; }));
    }
    return this.documents.get(url);
  };

  Lookup.prototype.kernelsPath = function () {
    return this.manifest.kernels || "kernels/";
  };

  /* The chunks holding the releases that start with `prefix`, from the index. */
  function chunksFor(chunks, prefix) {
    var lo = 0;
    var hi = chunks.length - 1;
    var start = 0;
    while (lo <= hi) {               // the last chunk starting at or before the prefix
      var mid = (lo + hi) >> 1;
      if (chunks[mid][0] <= prefix) { start = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    var upper = prefix + "\uffff";
    var picked = [];
    for (var i = start; i < chunks.length && chunks[i][0] < upper; i += 1) { picked.push(i); }
    return picked;
  }

  /* Every record filed under a kernel release starting with `prefix`, or built for a
     `uname -r` starting with it: {releases: [the matching releases and uname -r, sorted],
     probes: [records], failures: [records], broad: false}; or {broad: true, releases: n,
     probes: n} when the prefix spans too many chunks to fetch. Each record is an object
     with every field of its catalog record (decodeRows), and `matched`: what it was
     found by (its kernel release or its uname -r). */
  Lookup.prototype.byKernel = function (prefix) {
    var self = this;
    var base = this.kernelsPath();
    return this.json(base + "index.json").then(function (index) {
      var chunks = index ? index.chunks : [];
      var see = (index && index.see) || {};
      var picked = chunksFor(chunks, prefix);
      var unames = Object.keys(see).filter(function (u) { return u.slice(0, prefix.length) === prefix; });
      unames.forEach(function (u) {
        see[u].forEach(function (release) {
          chunksFor(chunks, release).forEach(function (n) { if (picked.indexOf(n) < 0) { picked.push(n); } });
        });
      });
      if (picked.length > MAX_CHUNKS) {
        var within = chunksFor(chunks, prefix);
        return {
          broad: true,
          releases: within.reduce(function (n, k) { return n + chunks[k][1]; }, 0) + unames.length,
          probes: within.reduce(function (n, k) { return n + chunks[k][2]; }, 0)
        };
      }
      return Promise.all(picked.map(function (k) { return self.json(base + k + ".json"); }))
        .then(function (docs) { return collect(docs, prefix, unames, see); });
    });
  };

  function collect(docs, prefix, unames, see) {
    var out = { broad: false, releases: [], probes: [], failures: [] };
    var seen = {};
    var note = function (key) { if (!seen[key]) { seen[key] = true; out.releases.push(key); } };
    docs.forEach(function (doc) {
      if (!doc) { return; }
      ["probes", "failures"].forEach(function (kind) {
        doc.decoded[kind].forEach(function (record) {
          var byRelease = record.kernel_release.slice(0, prefix.length) === prefix;
          var byUname = record.uname_r && unames.indexOf(record.uname_r) >= 0 &&
            see[record.uname_r].indexOf(record.kernel_release) >= 0;
          if (!byRelease && !byUname) { return; }
          var copy = Object.assign({}, record, { matched: byUname ? record.uname_r : record.kernel_release });
          note(copy.matched);
          out[kind].push(copy);
        });
      });
    });
    out.releases.sort();
    return out;
  }

  /* {probe, failure} for the file `name` a loader requests of `driver` and `arch`: among
     the records of the kernel the node runs (`unameR`) and of the `releases` the records
     may be filed under (the release in the name, those of its aliases),
     the one published under that name or answering it as another name; the node's own
     kernel's file first (a twin kernel's file has the same name). Either may be null;
     `others`: the other records under that name (twins). */
  Lookup.prototype.byName = function (driver, arch, name, releases, unameR) {
    var keys = releases.slice();
    if (unameR && keys.indexOf(unameR) < 0) { keys.push(unameR); }
    var self = this;
    return Promise.all(keys.map(function (key) { return self.byKernel(key); })).then(function (found) {
      var probes = [];
      var failures = [];
      var seen = {};
      found.forEach(function (f) {
        if (f.broad) { return; }
        [[f.probes, probes], [f.failures, failures]].forEach(function (pair) {
          pair[0].forEach(function (r) {
            var id = [r.driver_version, r.arch, r.target, r.kernel_release, r.kernel_version,
                      r.driver_type, r.root].join("\u0000");
            if (seen[id] || r.driver_version !== driver || r.arch !== arch) { return; }
            if (r.file !== name && r.aliases.indexOf(name) < 0) { return; }
            seen[id] = true;
            pair[1].push(r);
          });
        });
      });
      var mine = function (r) { return unameR && (r.uname_r === unameR) ? 0 : (r.root ? 2 : 1); };
      probes.sort(function (a, b) { return mine(a) - mine(b); });
      return { probe: probes[0] || null, others: probes.slice(1), failure: failures[0] || null };
    });
  };

  /* api/targets/<target>.json: the newest kernel built per driver, type, arch and series. */
  Lookup.prototype.target = function (target) {
    var known = this.manifest.coverage;    // the targets the catalog has: no 404s
    if (known && !has(known, target)) { return Promise.resolve(null); }
    return this.json("targets/" + encodeURIComponent(target) + ".json");
  };

  window.FalcoProbesLookup = { Lookup: Lookup, decodeRows: decodeRows, compareNatural: compareNatural,
                               fileName: fileName, releaseNumbers: releaseNumbers,
                               kernelFlavour: kernelFlavour, seriesKey: seriesKey };
}());
