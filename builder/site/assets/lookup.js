/*
 * The site's JSON API as the browser reads it (builder/site/api.py writes it).
 *
 * - by file name: api/<driver version>/<arch>/find/<n>.json, the shard picked by the
 *   32-bit FNV-1a hash of the name (every probe name, alias and failed build);
 * - by kernel release: api/kernels/index.json lists chunks of consecutive releases
 *   (string order) by their first release, so the releases starting with a prefix
 *   are in a run of chunks; api/kernels/<n>.json holds their probes and failures;
 * - per target: api/targets/<target>.json, the newest kernel built per series.
 *
 * Every document is fetched once and cached. Rows come as arrays with their field
 * names beside them; rowObject() turns one into an object.
 * Exposed as window.FalcoProbesLookup.
 */
(function () {
  "use strict";

  // A prefix reaching more chunks than this is too broad to list: type more.
  var MAX_CHUNKS = 3;

  function fnv1a(text) {
    var bytes = new TextEncoder().encode(text);
    var hash = 0x811c9dc5;
    for (var i = 0; i < bytes.length; i += 1) {
      hash = Math.imul(hash ^ bytes[i], 0x01000193) >>> 0;
    }
    return hash >>> 0;
  }

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

  /* {field: value} from a row and its field names; a load test row becomes an object too. */
  function rowObject(fields, row, loadtestFields) {
    var out = {};
    fields.forEach(function (field, i) { out[field] = row[i]; });
    if (out.loadtest && loadtestFields) { out.loadtest = rowObject(loadtestFields, out.loadtest); }
    return out;
  }

  /* `api`: the URL of api/ as seen from this page; `manifest`: the home page's find data. */
  function Lookup(api, manifest) {
    this.api = api;
    this.manifest = manifest || {};
    this.documents = new Map();
  }

  /* A document under api/, fetched once; null when it does not exist (404). */
  Lookup.prototype.json = function (path) {
    var url = this.api + path;
    if (!this.documents.has(url)) {
      this.documents.set(url, fetch(url, { credentials: "same-origin" }).then(function (response) {
        if (response.status === 404) { return null; }
        if (!response.ok) { throw new Error(url + ": HTTP " + response.status); }
        return response.json();
      }));
    }
    return this.documents.get(url);
  };

  /* {probe, failure} for a file name a loader requests (either may be null). */
  Lookup.prototype.byName = function (driver, arch, name) {
    var info = this.manifest.drivers && this.manifest.drivers[driver];
    var shards = info && info.arches[arch];
    if (!shards) { return Promise.resolve({ probe: null, failure: null }); }
    return this.json(info.api + arch + "/find/" + (fnv1a(name) % shards) + ".json")
      .then(function (doc) {
        var lt = doc.loadtest_fields;
        return {
          probe: has(doc.probes, name) ? rowObject(doc.probe_fields, doc.probes[name], lt) : null,
          failure: has(doc.failures, name) ?
            rowObject(doc.failure_fields, doc.failures[name], lt) : null
        };
      });
  };

  Lookup.prototype.kernelsPath = function () {
    return this.manifest.kernels || "kernels/";
  };

  /* The kernel releases starting with `prefix` and their probes and failures:
     {releases: [sorted], probes: [rows], failures: [rows], broad: false}, each row an
     object with its kernel_release; or {broad: true, releases: n, probes: n} when the
     prefix spans too many chunks to fetch. */
  Lookup.prototype.byKernel = function (prefix) {
    var self = this;
    var base = this.kernelsPath();
    return this.json(base + "index.json").then(function (index) {
      var chunks = index ? index.chunks : [];
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
      if (picked.length > MAX_CHUNKS) {
        return {
          broad: true,
          releases: picked.reduce(function (n, k) { return n + chunks[k][1]; }, 0),
          probes: picked.reduce(function (n, k) { return n + chunks[k][2]; }, 0)
        };
      }
      return Promise.all(picked.map(function (k) { return self.json(base + k + ".json"); }))
        .then(function (docs) { return collect(docs, prefix); });
    });
  };

  function collect(docs, prefix) {
    var out = { broad: false, releases: [], probes: [], failures: [] };
    var seen = {};
    docs.forEach(function (doc) {
      if (!doc) { return; }
      [["probes", doc.probe_fields], ["failures", doc.failure_fields]].forEach(function (kind) {
        Object.keys(doc[kind[0]]).forEach(function (release) {
          if (release.slice(0, prefix.length) !== prefix) { return; }
          if (!seen[release]) { seen[release] = true; out.releases.push(release); }
          doc[kind[0]][release].forEach(function (row) {
            var item = rowObject(kind[1], row, doc.loadtest_fields);
            item.kernel_release = release;
            out[kind[0]].push(item);
          });
        });
      });
    });
    out.releases.sort();
    return out;
  }

  /* api/targets/<target>.json: the newest kernel built per driver, arch and series. */
  Lookup.prototype.target = function (target) {
    var known = this.manifest.coverage;    // the targets the catalog has: no 404s
    if (known && !has(known, target)) { return Promise.resolve(null); }
    return this.json("targets/" + encodeURIComponent(target) + ".json");
  };

  window.FalcoProbesLookup = { Lookup: Lookup, fnv1a: fnv1a, rowObject: rowObject,
                               compareNatural: compareNatural };
}());
