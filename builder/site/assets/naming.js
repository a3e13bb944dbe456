/*
 * What falco-driver-loader (Falco 0.26-0.36) and falcoctl (0.37-0.43) request:
 * a line-by-line port of builder/core/naming.py for the site's "find my probe" box.
 *
 * builder/core/naming.py is the source of truth. Every function here keeps its name
 * (in camelCase) and its order of checks; tests/site/test_naming_js.py runs every case
 * of tests/data/naming_cases.yaml, and randomised variations of them, through both
 * and fails on any difference. Python's regular expressions, str.strip(),
 * str.splitlines() and shlex.split() are reproduced where JavaScript differs.
 * Exposed as window.FalcoNaming (and module.exports under Node).
 */
(function (root) {
  "use strict";

  // --- Python string semantics ---------------------------------------------------------

  // Characters for which Python's str.isspace() is true (JavaScript's \s differs:
  // it has U+FEFF and lacks U+001C-U+001F and U+0085).
  var PY_SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a" +
    "\\u2028\\u2029\\u202f\\u205f\\u3000";
  var STRIP_RE = new RegExp("^[" + PY_SPACE + "]+|[" + PY_SPACE + "]+$", "g");
  // str.splitlines() boundaries.
  var LINES_RE = /\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]/;

  function pyStrip(text) { return text.replace(STRIP_RE, ""); }

  function stripChars(text, chars) {
    var start = 0;
    var end = text.length;
    while (start < end && chars.indexOf(text.charAt(start)) >= 0) { start += 1; }
    while (end > start && chars.indexOf(text.charAt(end - 1)) >= 0) { end -= 1; }
    return text.slice(start, end);
  }

  function splitLines(text) {
    var lines = text.split(LINES_RE);
    if (lines.length && lines[lines.length - 1] === "") { lines.pop(); }
    return lines;
  }

  // --- errors --------------------------------------------------------------------------

  function InputError(message, hint) {
    this.name = "InputError";
    this.message = message;
    this.hint = hint || "";
  }
  InputError.prototype = Object.create(Error.prototype);
  InputError.prototype.constructor = InputError;

  /* The loader computes no download for this host; `reason` says why. */
  function NoRequest(reason, name) {
    this.name = "NoRequest";
    this.message = reason;
    this.reason = reason;
    this.probeName = name || null;
  }
  NoRequest.prototype = Object.create(Error.prototype);
  NoRequest.prototype.constructor = NoRequest;

  // --- Falco versions (builder/core/versions.py) --------------------------------------------

  var VERSION_RE = /^v?([0-9]+)\.([0-9]+)(?:\.([0-9]+))?$/;

  function FalcoVersion(major, minor, patch) {
    this.major = major;
    this.minor = minor;
    this.patch = patch || 0;
  }
  FalcoVersion.prototype.toString = function () {
    return this.major + "." + this.minor + "." + this.patch;
  };

  function parseVersion(text, what) {
    var match = VERSION_RE.exec(pyStrip(String(text)));
    if (match === null) {
      throw new InputError((what || "Falco version") + " '" + text + "' is not a version " +
        "like 0.35.1", "give MAJOR.MINOR.PATCH, for example 0.36.2");
    }
    return new FalcoVersion(parseInt(match[1], 10), parseInt(match[2], 10),
      match[3] === undefined ? 0 : parseInt(match[3], 10));
  }

  function v(text) { return parseVersion(text); }

  function cmp(a, b) {
    return (a.major - b.major) || (a.minor - b.minor) || (a.patch - b.patch);
  }
  function ge(a, b) { return cmp(a, b) >= 0; }
  function lt(a, b) { return cmp(a, b) < 0; }

  var FIRST_SUPPORTED = v("0.26.0");
  var LAST_SUPPORTED = v("0.43.99");
  var FIRST_FALCOCTL = v("0.37.0");
  var LATEST_RULES = v("0.43.0");
  // Facts builder/core/naming.py owns, handed over by the site's JSON (configure()):
  // the releases that can be pointed at a driver version no release loads by default
  // (one per naming era from 0.33), and the minimum kernel per arch for eBPF.
  var OVERRIDE_RELEASES = null;
  var MIN_KERNEL = null;
  var CLIENT_SHELL = "falco-driver-loader";
  var CLIENT_FALCOCTL = "falcoctl";

  /* facts: {override_releases: ["0.33.0", ...], min_kernel: {x86_64: [4, 14, 0], ...}},
     as builder.site.api.naming_constants() writes them. */
  function configure(facts) {
    OVERRIDE_RELEASES = facts.override_releases.map(v);
    MIN_KERNEL = {};
    Object.keys(facts.min_kernel).forEach(function (arch) {
      MIN_KERNEL[arch] = facts.min_kernel[arch].slice();
    });
    api.OVERRIDE_RELEASES = OVERRIDE_RELEASES;
    api.MIN_KERNEL = MIN_KERNEL;
  }

  function minKernel() {
    if (MIN_KERNEL === null) { throw new Error("FalcoNaming.configure() was not called"); }
    return MIN_KERNEL;
  }

  function checkSupported(falco) {
    if (lt(falco, FIRST_SUPPORTED) || cmp(falco, LAST_SUPPORTED) > 0) {
      throw new InputError("Falco " + falco + " is outside the supported range 0.26 to 0.43",
        "legacy eBPF probes were removed in Falco 0.44; older loaders are not modelled");
    }
  }

  // --- names ---------------------------------------------------------------------------

  // The types of driver a loader requests (builder/core/drivertypes.py): the same name and
  // path but for the extension; the shell loader put the arch folder in the module's URL
  // one release before the eBPF probe's (builder/core/naming.py SHELL_ARCH_FOLDER).
  var DRIVER_TYPES = {
    ebpf: { extension: ".o", shellArchFolder: "0.32.2" },
    kmod: { extension: ".ko", shellArchFolder: "0.32.1" }
  };
  var DEFAULT_TYPE = "ebpf";

  function driverTypeOf(driverType) {
    var found = DRIVER_TYPES[driverType || DEFAULT_TYPE];
    if (!found) { throw new InputError("unknown driver type " + JSON.stringify(driverType), "ebpf or kmod"); }
    return found;
  }

  function probeFileName(target, kernelRelease, kernelVersion, driverType) {
    return "falco_" + target + "_" + kernelRelease + "_" + kernelVersion +
      driverTypeOf(driverType).extension;
  }

  function ProbeName(target, kernelRelease, kernelVersion, arch, driverType) {
    this.target = target;
    this.kernel_release = kernelRelease;
    this.kernel_version = kernelVersion;
    this.arch = arch;
    this.driver_type = driverType || DEFAULT_TYPE;
    this.file = probeFileName(target, kernelRelease, kernelVersion, this.driver_type);
  }

  function withType(name, driverType) {
    return new ProbeName(name.target, name.kernel_release, name.kernel_version, name.arch,
      driverType);
  }

  // --- os-release ----------------------------------------------------------------------

  var ASSIGN = new RegExp("^[" + PY_SPACE + "]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$");

  /* shlex.split(text, comments=True) in POSIX mode; throws Error like shlex's ValueError. */
  function shlexSplit(text) {
    var WHITESPACE = " \t\r\n";
    var WORDCHARS = "abcdfeghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_" +
      "\u00df\u00e0\u00e1\u00e2\u00e3\u00e4\u00e5\u00e6\u00e7\u00e8\u00e9\u00ea\u00eb\u00ec" +
      "\u00ed\u00ee\u00ef\u00f0\u00f1\u00f2\u00f3\u00f4\u00f5\u00f6\u00f8\u00f9\u00fa\u00fb" +
      "\u00fc\u00fd\u00fe\u00ff\u00c0\u00c1\u00c2\u00c3\u00c4\u00c5\u00c6\u00c7\u00c8\u00c9" +
      "\u00ca\u00cb\u00cc\u00cd\u00ce\u00cf\u00d0\u00d1\u00d2\u00d3\u00d4\u00d5\u00d6\u00d8" +
      "\u00d9\u00da\u00db\u00dc\u00dd\u00de";
    var QUOTES = "'\"";
    var pos = 0;
    var state = " ";
    var words = [];

    function read() {
      if (pos >= text.length) { return ""; }
      pos += 1;
      return text.charAt(pos - 1);
    }
    function readline() {
      var nl = text.indexOf("\n", pos);
      pos = nl < 0 ? text.length : nl + 1;
    }
    function has(set, ch) { return ch !== "" && set.indexOf(ch) >= 0; }

    function readToken() {
      var quoted = false;
      var escapedstate = " ";
      var token = "";
      for (;;) {
        var ch = read();
        if (state === null) {
          token = "";
          break;
        } else if (state === " ") {
          if (!ch) { state = null; break; }
          if (has(WHITESPACE, ch)) {
            if (token || quoted) { break; }
            continue;
          } else if (ch === "#") {
            readline();
          } else if (ch === "\\") {
            escapedstate = "a";
            state = ch;
          } else if (has(WORDCHARS, ch)) {
            token = ch;
            state = "a";
          } else if (has(QUOTES, ch)) {
            state = ch;
          } else {
            token = ch;  // whitespace_split: any other character starts a word
            state = "a";
          }
        } else if (has(QUOTES, state)) {
          quoted = true;
          if (!ch) { throw new Error("No closing quotation"); }
          if (ch === state) {
            state = "a";
          } else if (ch === "\\" && state === "\"") {
            escapedstate = state;
            state = ch;
          } else {
            token += ch;
          }
        } else if (state === "\\") {
          if (!ch) { throw new Error("No escaped character"); }
          // Within quotes only the quote itself or the escape character may be escaped.
          if (has(QUOTES, escapedstate) && ch !== state && ch !== escapedstate) {
            token += state;
          }
          token += ch;
          state = escapedstate;
        } else if (state === "a") {
          if (!ch) { state = null; break; }
          if (has(WHITESPACE, ch)) {
            state = " ";
            if (token || quoted) { break; }
            continue;
          } else if (ch === "#") {
            readline();
            state = " ";
            if (token || quoted) { break; }
            continue;
          } else if (has(QUOTES, ch)) {
            state = ch;
          } else if (ch === "\\") {
            escapedstate = "a";
            state = ch;
          } else {
            token += ch;
          }
        }
      }
      if (!quoted && token === "") { return null; }
      return token;
    }

    for (;;) {
      var word = readToken();
      if (word === null) { break; }
      words.push(word);
    }
    return words;
  }

  /* KEY=value pairs as a shell `source` (the loader) and go-ini (falcoctl) read them. */
  function parseOsRelease(text) {
    var values = new Map();
    splitLines(text).forEach(function (line) {
      var match = ASSIGN.exec(line);
      if (match === null) { return; }
      var words;
      try {
        words = shlexSplit(match[2]);
      } catch (err) {  // unbalanced quotes: keep the raw text, as go-ini would
        words = [stripChars(pyStrip(match[2]), "\"'")];
      }
      values.set(match[1], words.length ? words[0] : "");
    });
    return values;
  }

  function get(values, key) { return values.has(key) ? values.get(key) : ""; }

  // --- input checks (builder/core/records.py check_kernel_release, builder/core/schema.py) --------

  var KERNEL_RELEASE_RE = /^[A-Za-z0-9][A-Za-z0-9._+~\-]*$/;
  var UNAME_M_RE = /^[A-Za-z0-9_]{1,32}$/;
  // Not printable for Python's str.isprintable(): every "Other" and "Separator"
  // character but the ASCII space.
  var UNPRINTABLE_RE = /(?! )[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

  function codePoints(text) { return Array.from(text).length; }

  /* Python's repr() of a str, for messages. */
  function pyRepr(text) {
    var quote = text.indexOf("'") >= 0 && text.indexOf("\"") < 0 ? "\"" : "'";
    var out = "";
    Array.from(text).forEach(function (ch) {
      var code = ch.codePointAt(0);
      if (ch === quote || ch === "\\") { out += "\\" + ch; }
      else if (ch === "\n") { out += "\\n"; }
      else if (ch === "\r") { out += "\\r"; }
      else if (ch === "\t") { out += "\\t"; }
      else if (ch !== " " && UNPRINTABLE_RE.test(ch)) {
        var hex = code.toString(16);
        out += code < 0x100 ? "\\x" + ("0" + hex).slice(-2) :
          (code < 0x10000 ? "\\u" + ("000" + hex).slice(-4) : "\\U" + ("0000000" + hex).slice(-8));
      } else { out += ch; }
    });
    return quote + out + quote;
  }

  function shortRepr(value) {
    var text = pyRepr(value);
    return text.length > 60 ? text.slice(0, 57) + "..." : text;
  }

  function checkKernelRelease(value) {
    var what = "letters, digits and . _ + ~ - (as `uname -r` prints)";
    if (!value) { return "must not be empty (" + what + ")"; }
    var length = codePoints(value);
    if (length > 128) { return "is " + length + " characters long; at most 128 allowed"; }
    if (!KERNEL_RELEASE_RE.test(value)) { return shortRepr(value) + " is not allowed: " + what; }
    if (value.indexOf("..") >= 0) {
      return pyRepr(value) + " is not allowed: must not contain '..'";
    }
    return null;
  }

  /* HostFacts from the texts the loader reads (osRelease null: the file is missing). */
  function hostFromInputs(osRelease, unameR, unameV, unameM, etcVersion, fallback) {
    var checks = [
      ["uname -r", unameR, checkKernelRelease(pyStrip(unameR))],
      ["uname -m", unameM, UNAME_M_RE.test(pyStrip(unameM)) ? null : "not allowed"],
      ["uname -v", unameV, !UNPRINTABLE_RE.test(unameV) && codePoints(unameV) < 512 ?
        null : "must be one printable line"]
    ];
    for (var i = 0; i < checks.length; i += 1) {
      if (checks[i][2]) {
        throw new InputError(checks[i][0] + " " + pyRepr(checks[i][1]) + ": " + checks[i][2],
          "pass the exact output of uname on the node");
      }
    }
    var values = osRelease !== null && osRelease !== undefined ?
      parseOsRelease(osRelease) : new Map();
    if (osRelease !== null && osRelease !== undefined && !get(values, "ID")) {
      throw new InputError("os-release has no ID= line",
        "pass the whole /etc/os-release, or at least ID= and VERSION_ID=");
    }
    return {
      os_id: get(values, "ID"),
      uname_r: pyStrip(unameR),
      uname_v: stripChars(unameV, "\n"),
      uname_m: pyStrip(unameM),
      version_id: get(values, "VERSION_ID"),
      variant_id: get(values, "VARIANT_ID"),
      build_id: get(values, "BUILD_ID"),
      etc_version: etcVersion === undefined ? null : etcVersion,
      fallback: fallback || ""
    };
  }

  // --- pieces shared by both loaders ---------------------------------------------------

  var KV_SHELL = /#([0-9]+)[\s\S]*/;
  // Python's "." excludes only \n, and its "$" also matches before a final \n.
  var UBUNTU_FLAVOR = /-([a-zA-Z]+)(-[^\n]*)?(?=\n?$)/;
  var UBUNTU_TILDE = /^#[0-9]+~[^-]*-Ubuntu [\s\S]*$/;
  var UBUNTU_TILDE_KV = /#([^\-\\ ]*)[\s\S]*/;
  var DEBIAN_VERSION = /[0-9]+\.[0-9]+\.[0-9]+-[0-9]+/;
  var DEBIAN_FLAVOR_0350 = /-(amd64|arm64)/;
  var DEBIAN_FLAVOR = /-?(rt-|cloud-|)(amd64|arm64)/;
  var MINIKUBE_VERSION = /[0-9]+(\.[0-9]+){2}/;

  /* `uname -v | sed 's/#\([[:digit:]]\+\).*\/\1/'`: the digits after the first #. */
  function shellKernelVersion(unameV) {
    return unameV.replace(KV_SHELL, "$1");
  }

  function minikubeVersion(etcVersion) {
    var match = MINIKUBE_VERSION.exec(etcVersion);
    return match ? match[0] : null;
  }

  function amznTarget(versionId, falco) {
    if (versionId === "2") { return "amazonlinux2"; }
    if (ge(falco, v("0.35.0")) && (versionId === "2022" || versionId === "2023")) {
      return "amazonlinux" + versionId;
    }
    return "amazonlinux";
  }

  /* Debian (0.35+): rebuild the release from the package version in uname -v. */
  function debianRelease(unameR, unameV, keepRtCloud) {
    var version = DEBIAN_VERSION.exec(unameV);
    if (version === null) { return null; }
    var flavor;
    var extra;
    if (keepRtCloud) {
      flavor = DEBIAN_FLAVOR.exec(unameR);
      extra = flavor ? "-" + flavor[1] + flavor[2] : "";
    } else {
      flavor = DEBIAN_FLAVOR_0350.exec(unameR);
      extra = flavor ? "-" + flavor[1] : "";
    }
    return version[0] + extra;
  }

  // --- falco-driver-loader (shell), Falco 0.26.0 - 0.36.2 ------------------------------

  function shellName(host, falco) {
    var osId = shellOsId(host, falco);
    var release = host.uname_r;
    var version = shellKernelVersion(host.uname_v);
    var target = osId;
    if (osId === "amzn") {
      target = amznTarget(host.version_id, falco);
    } else if (osId === "ubuntu") {
      var ubuntu = shellUbuntu(host, falco, version);
      target = ubuntu[0];
      version = ubuntu[1];
    } else if (osId === "debian" && ge(falco, v("0.35.0"))) {
      var rebuilt = debianRelease(host.uname_r, host.uname_v, ge(falco, v("0.35.1")));
      release = rebuilt || release;
    } else if (osId === "flatcar" && ge(falco, v("0.32.1"))) {
      release = host.version_id;
    } else if (osId === "bottlerocket" && ge(falco, v("0.34.0"))) {
      var variant = host.variant_id ? host.variant_id.split("-")[0] : "";
      version = "1_" + host.version_id + "-" + variant;
    } else if (osId === "talos" && ge(falco, v("0.35.0"))) {
      version = "1_" + host.version_id;
    } else if (osId === "minikube" && ge(falco, v("0.33.0"))) {
      var mk = minikubeVersion(host.etc_version || "");
      if (mk === null) {
        throw new NoRequest("Falco " + falco + " exits: /etc/VERSION has no minikube " +
          "version x.y.z");
      }
      version = "1_" + mk;
    } else if (osId !== "minikube") {
      target = osId.toLowerCase();  // only the default branch lowercases (0.26 FDL:137)
    }
    return new ProbeName(target, release, version, host.uname_m);
  }

  function shellOsId(host, falco) {
    var osId = host.os_id;
    if (!osId) { osId = shellFallback(host, falco); }
    if (ge(falco, v("0.33.0")) && host.etc_version !== null) {
      return "minikube";  // /etc/VERSION overrides os-release from 0.33
    }
    return osId;
  }

  /* No os-release: /etc/debian_version, centos-release, redhat-release (0.34+), VERSION. */
  function shellFallback(host, falco) {
    if (host.fallback === "debian" || host.fallback === "centos") { return host.fallback; }
    if (host.fallback === "rhel" && ge(falco, v("0.34.0"))) { return "rhel"; }
    if (ge(falco, v("0.28.0")) && lt(falco, v("0.33.0")) && host.etc_version !== null) {
      return "minikube";
    }
    throw new NoRequest("Falco " + falco + "'s loader finds no /etc/os-release and cannot " +
      "tell the distribution (target undetermined): it downloads nothing");
  }

  function shellUbuntu(host, falco, version) {
    var release = host.uname_r;
    if (lt(falco, v("0.33.0"))) {
      return [release.indexOf("aws") >= 0 ? "ubuntu-aws" : "ubuntu-generic", version];
    }
    var flavor = UBUNTU_FLAVOR.exec(release);
    var target;
    if (flavor === null) {
      target = "ubuntu-generic";
    } else if (lt(falco, v("0.35.1"))) {
      target = "ubuntu-" + flavor[1] + (flavor[2] || "");
    } else {
      target = "ubuntu-" + flavor[1];
    }
    if (ge(falco, v("0.35.1")) && UBUNTU_TILDE.test(host.uname_v)) {
      version = host.uname_v.replace(UBUNTU_TILDE_KV, "$1");
    }
    return [target, version];
  }

  /* The path after DRIVERS_REPO; the loader rewrites every + in the URL to %2B. */
  function shellRequestPath(driverVersion, name, falco) {
    var parts = [driverVersion, name.file];
    if (ge(falco, v(driverTypeOf(name.driver_type).shellArchFolder))) { parts.splice(1, 0, name.arch); }
    return parts.join("/").replace(/\+/g, "%2B");
  }

  // --- falcoctl, Falco 0.37 - 0.43 -----------------------------------------------------

  // driverkit's kernel release pattern, in the three forms falcoctl releases link.
  var KR_HEAD = "(?<fullversion>^(?<version>0|[1-9][0-9]*)\\.(?<patchlevel>0|[1-9][0-9]*)" +
    "[.+]?(?<sublevel>0|[1-9][0-9]*)?)";
  var KR_TAIL = "(\\+[0-9a-zA-Z\\-]+(\\.[0-9a-zA-Z\\-]+)*)?(?=\\n?$)";
  var KR_R1 = new RegExp(KR_HEAD + "(?<fullextraversion>[\\-.+](?<extraversion>0|[1-9][0-9]*|" +
    "[0-9]*[a-zA-Z\\-][0-9a-zA-Z\\-]*)([.+~](0|[1-9][0-9]*|" +
    "[0-9]*[a-zA-Z\\-][0-9a-zA-Z_\\-]*))*)?" + KR_TAIL);
  var KR_R2 = new RegExp(KR_HEAD + "(?<fullextraversion>[\\-.+](?<extraversion>[0-9]+|" +
    "[0-9]*[a-zA-Z\\-][0-9a-zA-Z\\-]*)([.+~]([0-9]+|" +
    "[0-9]*[a-zA-Z\\-][0-9a-zA-Z_\\-]*))*)?" + KR_TAIL);
  var KR_R3 = new RegExp(KR_HEAD + "(?<fullextraversion>[\\-.+](?<extraversion>[0-9]+|" +
    "[0-9]*[a-zA-Z\\-][0-9a-zA-Z\\-]*)?([.+~]([0-9]+|" +
    "[0-9]*[a-zA-Z\\-][0-9a-zA-Z_\\-]*))*)?" + KR_TAIL);
  var FLATCAR_SEMVER = /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.\-]+)?(\+[0-9A-Za-z.\-]+)?$/;

  function falcoctlPattern(falco) {
    if (lt(falco, v("0.38.0"))) { return KR_R1; }  // falcoctl 0.7.x
    if (lt(falco, v("0.39.0"))) { return KR_R2; }  // falcoctl 0.8.0 / 0.9.0
    return KR_R3;                                   // falcoctl 0.10.0+
  }

  /* driverkit's kernelrelease: empty when its pattern does not match. */
  function parseRelease(release, falco) {
    var match = falcoctlPattern(falco).exec(release);
    if (match === null) {
      return { full: "", fullextraversion: "", numbers: [0, 0, 0] };
    }
    var g = match.groups;
    var extra = g.fullextraversion || "";
    return {
      full: g.fullversion + extra,
      fullextraversion: extra,
      numbers: [parseInt(g.version, 10), parseInt(g.patchlevel, 10),
        g.sublevel ? parseInt(g.sublevel, 10) : 0]
    };
  }

  function falcoctlGenericVersion(unameV, falco) {
    if (lt(falco, v("0.37.1"))) {  // falcoctl 0.7.1: strip '#', first word
      return unameV.replace(/^#+/, "").split(" ")[0];
    }
    var match = /#([0-9]+)/.exec(unameV);
    return match ? match[1] : unameV;
  }

  function tupleLess(a, b) {
    for (var i = 0; i < a.length; i += 1) {
      if (a[i] !== b[i]) { return a[i] < b[i]; }
    }
    return false;
  }

  function falcoctlName(host, falco, driverType) {
    var arch = host.uname_m;
    if (!Object.prototype.hasOwnProperty.call(minKernel(), arch)) {
      throw new NoRequest("falcoctl is built only for x86_64 and aarch64, not '" + arch + "'");
    }
    var parsed = parseRelease(host.uname_r, falco);
    var osId = falcoctlOsId(host);
    var release = parsed.full;
    var version = falcoctlGenericVersion(host.uname_v, falco);
    var target = osId;
    if (osId === "ubuntu") {
      var flavor = UBUNTU_FLAVOR.exec(parsed.fullextraversion);
      target = "ubuntu-" + (flavor ? flavor[1] : "generic");
      version = host.uname_v.replace(/^#+/, "").split(" ")[0];
      if (version.endsWith("-Ubuntu")) { version = version.slice(0, -"-Ubuntu".length); }
    } else if (osId === "debian") {
      var deb = falcoctlDebian(host, parsed, falco, release, version);
      release = deb[0];
      version = deb[1];
    } else if (osId === "amzn") {
      require_(host.version_id, "VERSION_ID", osId);
      target = amznTarget(host.version_id, falco);
    } else if (osId === "minikube") {
      // Python formats a missing version as "None"; kept so both give the same name.
      var mk = minikubeVersion(host.etc_version || "");
      version = "1_" + (mk === null ? "None" : mk);
    } else if (osId === "bottlerocket") {
      require_(host.version_id, "VERSION_ID", osId);
      require_(host.variant_id, "VARIANT_ID", osId);
      version = "1_" + host.version_id + "-" + host.variant_id.split("-")[0];
    } else if (osId === "talos") {
      require_(host.version_id, "VERSION_ID", osId);
      version = "1_" + host.version_id;
    } else if (osId === "flatcar") {
      require_(host.version_id, "VERSION_ID", osId);
      if (!FLATCAR_SEMVER.test(host.version_id)) {
        throw new NoRequest("falcoctl crashes: flatcar VERSION_ID '" + host.version_id +
          "' is not a semantic version");
      }
      release = host.version_id;
    } else if (osId === "cos") {
      require_(host.build_id, "BUILD_ID", osId);
    }
    if ((driverType || DEFAULT_TYPE) === "ebpf" && ge(falco, v("0.38.0")) &&
        tupleLess(parsed.numbers, MIN_KERNEL[arch])) {
      var minimum = MIN_KERNEL[arch].slice(0, 2).join(".");
      throw new NoRequest("falcoctl (Falco " + falco + ") refuses eBPF below kernel " +
        minimum + " on " + arch + ": no supported driver",
        new ProbeName(target, release, version, arch, driverType));
    }
    // An unparsable release gives an empty one: falcoctl really requests
    // falco_<target>__<version>.o, which names no kernel (callers say so).
    return new ProbeName(target, release, version, arch, driverType);
  }

  function falcoctlOsId(host) {
    var mk = host.etc_version !== null && minikubeVersion(host.etc_version) !== null;
    if (host.os_id) { return mk ? "minikube" : host.os_id.toLowerCase(); }
    var fallbacks = [];
    if (host.fallback) { fallbacks.push(host.fallback); }
    if (mk && fallbacks.indexOf("minikube") < 0) { fallbacks.push("minikube"); }
    fallbacks.sort();
    if (fallbacks.length === 1) { return fallbacks[0]; }
    if (fallbacks.length) {
      throw new NoRequest("falcoctl finds no os-release and several legacy files (" +
        fallbacks.join(", ") + "); it picks one at random");
    }
    throw new NoRequest("falcoctl finds no /etc/os-release: target undetermined, " +
      "download disabled");
  }

  function require_(value, key, osId) {
    if (!value) {
      throw new NoRequest("falcoctl needs " + key + " in os-release for " + osId +
        "; without it the target is undetermined and nothing is downloaded");
    }
  }

  function falcoctlDebian(host, parsed, falco, release, version) {
    var debian = DEBIAN_VERSION.exec(host.uname_v);
    if (debian === null) { return [release, version]; }
    var flavor = DEBIAN_FLAVOR.exec(parsed.fullextraversion);
    var extra = flavor ? "-" + flavor[1] + flavor[2] : "";
    return [parseRelease(debian[0] + extra, falco).full, "1"];  // falcoctl forces 1
  }

  /* falcoctl: QueryEscape(driver version)/arch/file, the file name sent raw. */
  function falcoctlRequestPath(driverVersion, name) {
    return driverVersion.replace(/\+/g, "%2B") + "/" + name.arch + "/" + name.file;
  }

  // --- one entry point -----------------------------------------------------------------

  function clientFor(falco) { return ge(falco, FIRST_FALCOCTL) ? CLIENT_FALCOCTL : CLIENT_SHELL; }

  /* The name parts Falco `falco`'s loader computes for a driver of `driverType` (ebpf, kmod);
     throws NoRequest if it requests nothing. */
  function probeName(host, falco, driverType) {
    if (ge(falco, FIRST_FALCOCTL)) { return falcoctlName(host, falco, driverType); }
    return withType(shellName(host, falco), driverType);
  }

  function requestPath(driverVersion, name, falco) {
    if (ge(falco, FIRST_FALCOCTL)) { return falcoctlRequestPath(driverVersion, name); }
    return shellRequestPath(driverVersion, name, falco);
  }

  /* The canonical name (newest Falco release served) and every other name requested. */
  function namesForDriver(host, falcoVersions, driverType) {
    var seen = {};
    var versions = [];
    falcoVersions.forEach(function (f) {
      var key = String(f);
      if (!seen[key]) { seen[key] = true; versions.push(f); }
    });
    versions.sort(cmp);
    if (!versions.length) {
      if (OVERRIDE_RELEASES === null) { throw new Error("FalcoNaming.configure() was not called"); }
      versions = OVERRIDE_RELEASES.slice();
    }
    var names = [];
    for (var i = versions.length - 1; i >= 0; i -= 1) {
      try {
        names.push(probeName(host, versions[i], driverType));
      } catch (err) {
        if (!(err instanceof NoRequest)) { throw err; }
      }
    }
    if (!names.length) {  // fall back to the newest shell rules, which always name something
      var last = versions[versions.length - 1];
      names.push(withType(shellName(host, lt(last, v("0.36.2")) ? last : v("0.36.2")), driverType));
    }
    var canonical = names[0];
    var aliasSet = {};
    names.slice(1).forEach(function (n) {
      if (n.kernel_release && n.file !== canonical.file) { aliasSet[n.file] = true; }
    });
    var aliases = Object.keys(aliasSet).sort(function (a, b) {
      return a < b ? -1 : (a > b ? 1 : 0);
    });
    return { name: canonical, aliases: aliases };
  }

  var api = {
    InputError: InputError,
    NoRequest: NoRequest,
    FalcoVersion: FalcoVersion,
    ProbeName: ProbeName,
    parseVersion: parseVersion,
    compareVersions: cmp,
    checkSupported: checkSupported,
    probeFileName: probeFileName,
    DRIVER_TYPES: DRIVER_TYPES,
    parseOsRelease: parseOsRelease,
    shlexSplit: shlexSplit,
    hostFromInputs: hostFromInputs,
    shellKernelVersion: shellKernelVersion,
    minikubeVersion: minikubeVersion,
    shellName: shellName,
    shellRequestPath: shellRequestPath,
    parseRelease: parseRelease,
    falcoctlName: falcoctlName,
    falcoctlRequestPath: falcoctlRequestPath,
    clientFor: clientFor,
    probeName: probeName,
    requestPath: requestPath,
    namesForDriver: namesForDriver,
    FIRST_FALCOCTL: FIRST_FALCOCTL,
    LATEST_RULES: LATEST_RULES,
    configure: configure,
    OVERRIDE_RELEASES: OVERRIDE_RELEASES,
    checkKernelRelease: checkKernelRelease,
    MIN_KERNEL: MIN_KERNEL,
    CLIENT_SHELL: CLIENT_SHELL,
    CLIENT_FALCOCTL: CLIENT_FALCOCTL
  };
  if (typeof module === "object" && module.exports) { module.exports = api; }
  root.FalcoNaming = api;
}(typeof window !== "undefined" ? window : this));
