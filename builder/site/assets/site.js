/*
 * On every page: the header search also finds kernel releases, and its dialog has a name.
 *
 * Material's search indexes the documentation and the index pages, not the 100,000
 * probe rows (that index would be tens of megabytes). When the query looks like a
 * kernel release (5.10.135-122.509.amzn2.x86_64, or its start 5.10.135), a line above
 * the results says how many probes the catalog has for it (api/kernels/, the same
 * lookup as the home page's find box) and links to that answer.
 */
(function () {
  "use strict";

  var KERNEL = /^\d+\.\d+[A-Za-z0-9._+~-]*$/;

  function root() {
    var config = document.getElementById("__config");
    var base = ".";
    try { base = JSON.parse(config.textContent).base || "."; } catch (err) { base = "."; }
    return base.replace(/\/$/, "") + "/";
  }

  function nameTheDialog() {
    var dialog = document.querySelector(".md-search[role=dialog]");
    if (dialog && !dialog.hasAttribute("aria-label")) { dialog.setAttribute("aria-label", "Search"); }
  }

  function kernelSearch() {
    var input = document.querySelector(".md-search__input");
    var result = document.querySelector(".md-search-result");
    var Lookup = window.FalcoProbesLookup;
    if (!input || !result || !Lookup) { return; }
    var base = root();
    var lookup = new Lookup.Lookup(base + "api/", null);
    var box = document.createElement("div");
    box.className = "fp-search-kernel";
    box.hidden = true;
    // Beside Material's result list, not in it: its first child is Material's own.
    result.parentNode.insertBefore(box, result);
    var asked = "";

    function show(query, found) {
      if (query !== asked) { return; }
      var href = base + "?r=" + encodeURIComponent(query);
      var text;
      if (found.broad) {
        text = "About " + found.probes.toLocaleString("en-US") + " probes for kernel releases starting with " + query;
      } else {
        var n = found.probes.length;
        text = n ? n.toLocaleString("en-US") + (n === 1 ? " probe" : " probes") + " for kernel release" +
          (found.releases.length === 1 && found.releases[0] === query ? " " : "s starting with ") + query :
          "No probe for a kernel release starting with " + query + ": see why";
      }
      box.textContent = "";
      var link = document.createElement("a");
      link.href = href;
      link.textContent = text + " \u2192";
      box.appendChild(link);
      box.hidden = false;
    }

    function update() {
      var query = input.value.trim();
      asked = query;
      if (!KERNEL.test(query)) { box.hidden = true; return; }
      lookup.byKernel(query).then(function (found) { show(query, found); }, function () {
        box.hidden = true;
      });
    }
    input.addEventListener("input", update);
    input.addEventListener("focus", update);
  }

  function init() {
    nameTheDialog();
    kernelSearch();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
